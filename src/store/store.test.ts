/**
 * One contract, run against both stores: what every module relies on (migrations once and in order, placeholders,
 * upserts with RETURNING, transactions that roll back, durability of a commit).
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SqliteStore } from './sqlite.js';
import type { Migration, Store } from './store.js';
import { freshPostgresStore } from '../../testing/services.js';

const migrations: Migration[] = [
  { version: 1, name: 'items', sql: 'CREATE TABLE items (id TEXT PRIMARY KEY, n INTEGER NOT NULL, updated_at BIGINT NOT NULL)' },
  {
    version: 2,
    name: 'items note',
    sql: { sqlite: 'ALTER TABLE items ADD COLUMN note TEXT', postgres: 'ALTER TABLE items ADD COLUMN note TEXT' },
  },
];

async function sqliteStore(t: TestContext): Promise<Store> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kycgate-store-'));
  const store = new SqliteStore(path.join(dir, 'db.sqlite'));
  t.after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return store;
}

const engines: Array<[string, (t: TestContext) => Promise<Store | undefined>]> = [
  ['sqlite', sqliteStore],
  ['postgres', freshPostgresStore],
];

for (const [engine, make] of engines) {
  test(`store contract (${engine}): migrations apply once, in order`, async (t) => {
    const store = await make(t);
    if (!store) return;
    await store.migrate('contract', migrations);
    await store.migrate('contract', migrations); // second run is a no-op
    const rows = await store.query<{ version: number }>('SELECT version FROM kycgate_migrations WHERE module = $1 ORDER BY version', ['contract']);
    assert.deepEqual(rows.map((r) => Number(r.version)), [1, 2]);
    await assert.rejects(store.migrate('bad', [{ version: 2, name: 'x', sql: 'SELECT 1' }]), /numbered/);
  });

  test(`store contract (${engine}): upsert with RETURNING, repeated placeholders, newest wins`, async (t) => {
    const store = await make(t);
    if (!store) return;
    await store.migrate('contract', migrations);
    const upsert = 'INSERT INTO items (id, n, updated_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET n = $2, updated_at = $3 WHERE items.updated_at < $3 RETURNING n';
    assert.deepEqual(await store.query(upsert, ['a', 1, 100]), [{ n: 1 }]);
    assert.deepEqual(await store.query(upsert, ['a', 2, 200]), [{ n: 2 }]);
    assert.deepEqual(await store.query(upsert, ['a', 3, 150]), [], 'an older write does not overwrite a newer one');
    const [row] = await store.query<{ n: number; updated_at: number }>('SELECT n, updated_at FROM items WHERE id = $1', ['a']);
    assert.equal(Number(row!.n), 2);
    assert.equal(row!.updated_at, 200);
  });

  test(`store contract (${engine}): a failing transaction leaves nothing behind`, async (t) => {
    const store = await make(t);
    if (!store) return;
    await store.migrate('contract', migrations);
    await assert.rejects(
      store.transaction(async (tx) => {
        await tx.query('INSERT INTO items (id, n, updated_at) VALUES ($1, $2, $3)', ['b', 1, 1]);
        throw new Error('boom');
      }),
      /boom/,
    );
    assert.deepEqual(await store.query('SELECT id FROM items WHERE id = $1', ['b']), []);
    const committed = await store.transaction(async (tx) => {
      await tx.query('INSERT INTO items (id, n, updated_at) VALUES ($1, $2, $3)', ['c', 1, 1]);
      return 'ok';
    });
    assert.equal(committed, 'ok');
    assert.equal((await store.query('SELECT id FROM items WHERE id = $1', ['c'])).length, 1);
  });
}

test('store contract (sqlite): a commit is on disk for the next process', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kycgate-store-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'db.sqlite');
  const a = new SqliteStore(file);
  await a.migrate('contract', migrations);
  await a.query('INSERT INTO items (id, n, updated_at) VALUES ($1, $2, $3)', ['d', 7, 1]);
  await a.close();
  const b = new SqliteStore(file);
  const rows = await b.query<{ n: number }>('SELECT n FROM items WHERE id = $1', ['d']);
  await b.close();
  assert.equal(Number(rows[0]!.n), 7);
});
