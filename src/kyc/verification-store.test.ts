/**
 * The session lease, on both stores: one owner at a time; a lease this instance left behind (an attempt that failed
 * before it could release it, e.g. because the store went away) is taken over at once by the same instance, so the
 * user is not locked out until it expires; another instance's lease only once it expired.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { SqliteStore } from '../store/sqlite.js';
import type { Store } from '../store/store.js';
import { freshPostgresStore } from '../../testing/services.js';
import { VerificationStore, type RecordKey } from './verification-store.js';

async function sqliteStore(t: TestContext): Promise<Store> {
  const store = new SqliteStore(':memory:');
  t.after(() => store.close());
  return store;
}

const engines: Array<[string, (t: TestContext) => Promise<Store | undefined>]> = [
  ['sqlite', sqliteStore],
  ['postgres', freshPostgresStore],
];

const key: RecordKey = { subject: 'sub_lease', provider: 'p', workflow: 'full' };
const LEASE_MS = 15_000;

for (const [engine, make] of engines) {
  test(`session lease (${engine}): this instance takes over its own leftover lease at once, another instance waits for it to expire`, async (t) => {
    const store = await make(t);
    if (!store) return;
    const records = new VerificationStore(store);
    await records.migrate();
    const now = 1_000_000_000;
    const mine = 'instance-a';
    const other = 'instance-b';
    assert.equal(
      await records.acquireSessionLease(key, 'wf', `${mine}:attempt-1`, now, LEASE_MS, now - 1, mine),
      true,
      'a free lease is taken',
    );
    // attempt-1 failed without releasing it (the store was gone).
    assert.equal(
      await records.acquireSessionLease(key, 'wf', `${other}:attempt-1`, now + 100, LEASE_MS, now - 1, other),
      false,
      'another instance waits',
    );
    assert.equal(
      await records.acquireSessionLease(key, 'wf', `${mine}:attempt-2`, now + 200, LEASE_MS, now - 1, mine),
      true,
      'the same instance goes on at once',
    );
    assert.equal((await records.record(key))!.lease_owner, `${mine}:attempt-2`);
    assert.equal(
      await records.acquireSessionLease(
        key,
        'wf',
        `${other}:attempt-2`,
        now + 200 + LEASE_MS + 1,
        LEASE_MS,
        now - 1,
        other,
      ),
      true,
      'another instance after it expired',
    );

    // A recorded, reusable session is never replaced, not even by the instance that recorded it.
    await records.recordSession(
      key,
      `${other}:attempt-2`,
      { sessionId: 's1', sealedUrl: 'sealed', status: 'Not Started', state: 'pending' },
      now + 20_000,
      now + 16_000,
    );
    const row = (await records.record(key))!;
    assert.equal(row.session_id, 's1');
    assert.equal(Number(row.session_started_at), now + 16_000, 'a session recorded late keeps the time it was created');
    assert.equal(row.lease_owner, null);
    assert.equal(
      await records.acquireSessionLease(key, 'wf', `${other}:attempt-3`, now + 21_000, LEASE_MS, now, other),
      false,
    );
    assert.equal(
      await records.acquireSessionLease(key, 'wf', `${mine}:attempt-3`, now + 21_000, LEASE_MS, now, mine),
      false,
    );
  });
}
