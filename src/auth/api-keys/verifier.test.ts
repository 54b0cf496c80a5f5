/**
 * Cached API keys across a store outage, on a clock the test drives: with the default refresh (30 s) and stale
 * period (15 min), a valid key keeps passing through a 90-second outage and until the stale period ends, marked
 * stale; a revoked key stays refused; what the store answers always wins; and after the outage keys are read again.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { memoryLogger } from '../../../testing/harness.js';
import { FlakyStore } from '../../../testing/flaky-store.js';
import { StoreOutage } from '../../store/outage.js';
import { StoreUnavailable } from '../../store/store.js';
import { ConsumerDirectory } from '../consumers.js';
import { migrateAuth } from '../migrations.js';
import { KeyRepository } from './repository.js';
import { ApiKeyVerifier, type KeyCheck } from './verifier.js';
import { lookupIdOf } from './format.js';

const SECOND = 1000;
const TTL_MS = 30 * SECOND;
const STALE_PERIOD_S = 900;

async function setup(stalePeriodSeconds: number) {
  const store = new FlakyStore();
  await migrateAuth(store);
  const { logger, lines } = memoryLogger('info');
  const outage = new StoreOutage(store, logger, stalePeriodSeconds);
  const directory = new ConsumerDirectory();
  directory.replace([
    {
      name: 'billing',
      scopes: ['payments:read'],
      groups: [],
      plan: undefined,
      metadata: {},
      source: 'config',
      disabled: false,
      createdAt: 0,
      updatedAt: 0,
    },
  ]);
  const repository = new KeyRepository(store);
  let now = 1_000_000;
  const clock = { now: () => now, advanceTo: (ms: number) => (now = 1_000_000 + ms) };
  const verifier = new ApiKeyVerifier(repository, directory, {
    ttlMs: TTL_MS,
    maxEntries: 1000,
    stale: outage,
    clock: clock.now,
  });
  const check = async (key: string): Promise<KeyCheck> => verifier.check(lookupIdOf(key)!, key);
  return {
    store,
    outage,
    repository,
    verifier,
    clock,
    check,
    lines,
    /** Moves the clock and lets the sweep mark or drop entries, as its timer would. */
    at(ms: number) {
      clock.advanceTo(ms);
      verifier.sweep();
    },
    close() {
      verifier.close();
      outage.close();
      return store.close();
    },
  };
}

test(
  'a cached key passes a 90-second store outage and the rest of the stale period, marked stale; a ' +
    'revoked key stays refused; then it is read again',
  async (t) => {
    const s = await setup(STALE_PERIOD_S);
    t.after(() => s.close());
    const valid = await s.repository.create({ consumer: 'billing' });
    const revoked = await s.repository.create({ consumer: 'billing' });
    await s.repository.revoke(revoked.record.id);

    s.at(0);
    const first = await s.check(valid.key);
    assert.equal(first.ok, true);
    assert.equal(first.stale, undefined, 'read from the store');
    assert.equal((await s.check(revoked.key)).ok, false);

    s.at(10 * SECOND);
    s.store.down = true;

    // Due for a re-read at 30 s: the read gets no answer, the cached record stands in.
    s.at(31 * SECOND);
    const afterRefresh = await s.check(valid.key);
    assert.equal(afterRefresh.ok, true, 'the key passes although its refresh failed');
    assert.equal(afterRefresh.stale, true, 'and the check says it was decided on stale state');
    assert.equal(s.outage.down, true);
    const failuresSoFar = s.store.failures;

    // 90 s into the outage: the store is known to be down, the cached record is used at once (no wait on the store).
    s.at(100 * SECOND);
    const during = s.verifier.check(lookupIdOf(valid.key)!, valid.key);
    assert.ok(!(during instanceof Promise), 'decided synchronously while the store is known to be down');
    assert.equal(during.ok, true);
    assert.equal(during.stale, true);
    assert.equal(
      s.verifier.checkCached(lookupIdOf(valid.key)!, valid.key),
      undefined,
      'the hot path does not serve a due entry',
    );
    const refused = await s.check(revoked.key);
    assert.equal(refused.ok, false);
    assert.equal(!refused.ok && refused.reason, 'revoked_key', 'a revocation seen before the outage is kept');
    assert.equal(refused.stale, true);
    assert.equal(s.store.failures, failuresSoFar, 'no store round trip per request while it is known to be down');

    // Up to the end of the stale period (15 min after the entry was due)...
    s.at(TTL_MS + STALE_PERIOD_S * SECOND - SECOND);
    assert.equal((await s.check(valid.key)).ok, true);
    // ... and not after: the key cannot be checked (503 at the edge).
    s.at(TTL_MS + STALE_PERIOD_S * SECOND + 30 * SECOND);
    await assert.rejects(s.check(valid.key), StoreUnavailable);

    // Logged once per outage, not per request.
    const warnings = s.lines.filter((l) => l.level === 40);
    assert.equal(
      warnings.filter((l) => String(l.msg).startsWith('store unreachable: requests')).length,
      1,
      JSON.stringify(warnings),
    );
    assert.equal(
      warnings.filter((l) => String(l.msg).startsWith('store unreachable: deciding on cached API keys')).length,
      1,
    );

    // The store is back: the key is read again and decided fresh.
    s.store.down = false;
    const after = await s.check(valid.key);
    assert.equal(after.ok, true);
    assert.equal(after.stale, undefined);
    assert.equal(s.outage.down, false);
    assert.ok(s.lines.some((l) => l.msg === 'store reachable again: cached state is re-read from it as it comes due'));
  },
);

test('a store that answers always wins over a cached key; without a stale period a due key is not served', async (t) => {
  const s = await setup(STALE_PERIOD_S);
  t.after(() => s.close());
  const gone = await s.repository.create({ consumer: 'billing' });
  s.at(0);
  assert.equal((await s.check(gone.key)).ok, true);
  await s.store.inner.query('DELETE FROM api_keys WHERE id = $1', [gone.record.id]);
  s.at(TTL_MS + SECOND);
  const answered = await s.check(gone.key);
  assert.equal(!answered.ok && answered.reason, 'unknown_key', 'the store said the key does not exist');
  assert.equal(answered.stale, undefined);

  const off = await setup(0);
  t.after(() => off.close());
  const key = await off.repository.create({ consumer: 'billing' });
  off.at(0);
  assert.equal((await off.check(key.key)).ok, true);
  off.store.down = true;
  off.at(TTL_MS + SECOND);
  await assert.rejects(
    off.check(key.key),
    StoreUnavailable,
    'stale_period_seconds 0: nothing is served past its refresh time',
  );
});

test('an invalidation during an outage drops the cached key: it is not served stale', async (t) => {
  const s = await setup(STALE_PERIOD_S);
  t.after(() => s.close());
  const key = await s.repository.create({ consumer: 'billing' });
  s.at(0);
  assert.equal((await s.check(key.key)).ok, true);
  s.store.down = true;
  s.at(TTL_MS + SECOND);
  assert.equal((await s.check(key.key)).stale, true);
  // Another instance revoked it and said so over Redis.
  s.verifier.invalidate(key.record.id);
  await assert.rejects(s.check(key.key), StoreUnavailable);
});
