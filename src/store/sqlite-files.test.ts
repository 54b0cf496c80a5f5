/**
 * The embedded store's files hold pseudonymised subjects, key hashes and verification records: readable by the
 * gateway's user only, like the key files beside them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SqliteStore } from './sqlite.js';

test('the SQLite database and its WAL and shared-memory files are created 0600 in a 0700 directory', async (t) => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'kycgate-sqlite-mode-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const previous = process.umask(0o022);
  t.after(() => process.umask(previous));
  const file = path.join(root, 'data', 'kycgate.sqlite');
  const store = new SqliteStore(file);
  await store.query('CREATE TABLE t (n INTEGER)');
  await store.query('INSERT INTO t VALUES (1)');
  for (const f of [file, file + '-wal', file + '-shm'])
    assert.equal(statSync(f).mode & 0o777, 0o600, `${path.basename(f)} is owner-only`);
  assert.equal(statSync(path.dirname(file)).mode & 0o777, 0o700, 'the directory it made is owner-only');
  await store.close();
});
