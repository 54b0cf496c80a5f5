/**
 * One contract, run against both stores: what every subsystem relies on (migrations once and in order, placeholders,
 * upserts with RETURNING, transactions that roll back, durability of a commit); and how each says it cannot be
 * used right now (locked, full, unreachable) so that requests answer 503 instead of 500.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import { SqliteStore } from './sqlite.js';
import { unavailableFromPg } from './postgres.js';
import { StoreUnavailable, type Migration, type Store } from './store.js';
import { freshPostgresStore } from '../../testing/services.js';

const migrations: Migration[] = [
  {
    version: 1,
    name: 'items',
    sql: 'CREATE TABLE items (id TEXT PRIMARY KEY, n INTEGER NOT NULL, updated_at BIGINT NOT NULL)',
  },
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
    const rows = await store.query<{ version: number }>(
      'SELECT version FROM kycgate_migrations WHERE module = $1 ORDER BY version',
      ['contract'],
    );
    assert.deepEqual(
      rows.map((r) => Number(r.version)),
      [1, 2],
    );
    await assert.rejects(store.migrate('bad', [{ version: 2, name: 'x', sql: 'SELECT 1' }]), /numbered/);
  });

  test(`store contract (${engine}): upsert with RETURNING, repeated placeholders, newest wins`, async (t) => {
    const store = await make(t);
    if (!store) return;
    await store.migrate('contract', migrations);
    const upsert =
      'INSERT INTO items (id, n, updated_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET n = $2, ' +
      'updated_at = $3 WHERE items.updated_at < $3 RETURNING n';
    assert.deepEqual(await store.query(upsert, ['a', 1, 100]), [{ n: 1 }]);
    assert.deepEqual(await store.query(upsert, ['a', 2, 200]), [{ n: 2 }]);
    assert.deepEqual(await store.query(upsert, ['a', 3, 150]), [], 'an older write does not overwrite a newer one');
    const [row] = await store.query<{ n: number; updated_at: number }>(
      'SELECT n, updated_at FROM items WHERE id = $1',
      ['a'],
    );
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

test(
  'store (sqlite): a database locked by another process fails a write with StoreUnavailable (busy) ' +
    'after busy_timeout, without blocking the event loop',
  async (t) => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kycgate-store-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'db.sqlite');
    const store = new SqliteStore(file, { busyTimeoutMs: 400 });
    t.after(() => store.close());
    await store.migrate('contract', migrations);
    const other = new Database(file);
    t.after(() => other.close());
    other.exec('BEGIN IMMEDIATE');

    // Timers keep firing while the write waits: the process is not stuck in SQLite's busy handler.
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 20);
    const started = performance.now();
    const write = store.query('INSERT INTO items (id, n, updated_at) VALUES ($1, $2, $3)', ['e', 1, 1]);
    await assert.rejects(
      write,
      (err: unknown) => err instanceof StoreUnavailable && err.reason === 'busy' && !err.unreachable,
    );
    const waited = performance.now() - started;
    clearInterval(ticker);
    assert.ok(waited >= 350 && waited < 2000, `waited ${Math.round(waited)} ms for the lock (busy_timeout 400 ms)`);
    assert.ok(ticks >= 5, `the event loop ran during the wait (${ticks} ticks)`);
    await assert.rejects(
      store.transaction(async (tx) =>
        tx.query('INSERT INTO items (id, n, updated_at) VALUES ($1, $2, $3)', ['f', 1, 1]),
      ),
      StoreUnavailable,
    );
    assert.equal(
      (await store.query('SELECT COUNT(*) AS n FROM items'))[0]!.n,
      0,
      'reads go on while another process writes',
    );
    assert.equal(store.availability.down, false, 'a locked database is no outage: it answers');

    // The lock is released during a wait: the write goes through.
    const pending = store.query('INSERT INTO items (id, n, updated_at) VALUES ($1, $2, $3)', ['g', 1, 1]);
    setTimeout(() => other.exec('COMMIT'), 100);
    await pending;
    assert.equal((await store.query('SELECT id FROM items')).length, 1);
  },
);

test('store (sqlite): a full database fails writes with StoreUnavailable (full), not a generic error', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kycgate-store-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const store = new SqliteStore(path.join(dir, 'db.sqlite'));
  t.after(() => store.close());
  await store.migrate('contract', migrations);
  // A page limit reached is what a full disk looks like to SQLite (SQLITE_FULL).
  const [{ page_count: pages }] = store.runSync<{ page_count: number }>('PRAGMA page_count');
  store.runSync(`PRAGMA max_page_count = ${pages}`);
  const big = 'x'.repeat(64 * 1024);
  const fill = async () => {
    for (let i = 0; i < 100; i++)
      await store.query('INSERT INTO items (id, n, updated_at, note) VALUES ($1, $2, $3, $4)', [`big${i}`, i, i, big]);
  };
  await assert.rejects(fill(), (err: unknown) => err instanceof StoreUnavailable && err.reason === 'full');
  await assert.rejects(
    store.transaction(async (tx) =>
      tx.query('INSERT INTO items (id, n, updated_at, note) VALUES ($1, $2, $3, $4)', ['tx', 1, 1, big]),
    ),
    (err: unknown) => err instanceof StoreUnavailable && err.reason === 'full',
  );
});

test('store (postgres): errors without an answer from the database are StoreUnavailable; SQL errors are not', () => {
  const socket = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
  assert.equal(unavailableFromPg(socket)?.reason, 'unreachable');
  assert.equal(unavailableFromPg(new Error('Query read timeout'))?.reason, 'timeout');
  assert.equal(unavailableFromPg(new Error('timeout exceeded when trying to connect'))?.reason, 'timeout');
  assert.equal(unavailableFromPg(new Error('Connection terminated unexpectedly'))?.reason, 'unreachable');
  assert.equal(
    unavailableFromPg(Object.assign(new Error('the database system is starting up'), { code: '57P03' }))?.reason,
    'unreachable',
  );
  assert.equal(unavailableFromPg(Object.assign(new Error('could not extend file'), { code: '53100' }))?.reason, 'full');
  assert.equal(
    unavailableFromPg(Object.assign(new Error('cannot execute INSERT in a read-only transaction'), { code: '25006' }))
      ?.reason,
    'read_only',
  );
  assert.equal(
    unavailableFromPg(Object.assign(new Error('duplicate key value violates unique constraint'), { code: '23505' })),
    undefined,
  );
  assert.equal(
    unavailableFromPg(Object.assign(new Error('relation "x" does not exist'), { code: '42P01' })),
    undefined,
  );
  assert.equal(unavailableFromPg(new Error('boom')), undefined);
});
