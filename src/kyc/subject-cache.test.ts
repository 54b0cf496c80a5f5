import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SubjectCache, SubjectEntry } from './subject-cache.js';
import type { VerificationRow } from './verification-store.js';
import { memoryLogger } from '../../testing/harness.js';
import { FlakyStore } from '../../testing/flaky-store.js';
import { StoreOutage } from '../store/outage.js';
import { StoreUnavailable } from '../store/store.js';

function row(over: Partial<VerificationRow>): VerificationRow {
  return {
    subject: 'sub_x',
    provider: 'p',
    workflow: 'full',
    workflow_id: 'wf',
    session_id: 's1',
    session_url: null,
    session_started_at: 1,
    lease_owner: null,
    lease_until: 0,
    provider_status: 'Approved',
    state: 'approved',
    claims: 'kyc_basic kyc_full',
    status_seq: 1,
    verified_at: 1,
    expires_at: null,
    personal: null,
    key_id: null,
    ...over,
  };
}
const ttl = { verifiedMs: 60_000, unverifiedMs: 5_000 };

test('verification past max age grants nothing and reads as expired; a cached entry never outlives the expiry', () => {
  const now = 1_000_000;
  const expired = new SubjectEntry('sub_x', [row({ expires_at: now - 1 })], now, ttl);
  assert.equal(expired.claims.size, 0);
  assert.equal(expired.status, 'expired');
  assert.equal(expired.workflows.get('full')!.state, 'expired');
  const soon = new SubjectEntry('sub_x', [row({ expires_at: now + 1000 })], now, ttl);
  assert.equal(soon.claimsHeader, 'kyc_basic,kyc_full');
  assert.equal(soon.status, 'verified');
  assert.equal(soon.freshUntil, now + 1000, 'served from memory only until the verification expires');
  const pending = new SubjectEntry('sub_x', [row({ state: 'in_review', claims: '' })], now, ttl);
  assert.equal(pending.status, 'in_review');
  assert.equal(pending.freshUntil, now + 5_000);
});

test('subject cache: one load for concurrent misses; invalidation drops the entry and discards a load that overlapped it', async () => {
  let loads = 0;
  let release: (() => void) | undefined;
  const cache = new SubjectCache(
    async () => {
      loads++;
      await new Promise<void>((r) => (release = r));
      return [row({})];
    },
    ttl,
    1000,
  );
  const a = cache.fetch('sub_x');
  const b = cache.fetch('sub_x');
  release!();
  assert.equal(await a, await b);
  assert.equal(loads, 1);
  assert.ok(cache.peek('sub_x', Date.now()));
  cache.invalidate('sub_x');
  assert.equal(cache.peek('sub_x', Date.now()), undefined);
  const overlapping = cache.fetch('sub_x');
  cache.invalidate('sub_x');
  release!();
  await overlapping;
  assert.equal(cache.peek('sub_x', Date.now()), undefined, 'a load that started before an invalidation is not kept');
});

test("subject cache: invalidating one subject keeps other subjects' loads; a stale load never replaces a newer one", async () => {
  const releases = new Map<string, Array<() => void>>();
  let loads = 0;
  const cache = new SubjectCache(
    async (subject) => {
      loads++;
      await new Promise<void>((r) => (releases.get(subject) ?? releases.set(subject, []).get(subject)!).push(r));
      return [row({})];
    },
    ttl,
    1000,
  );
  const other = cache.fetch('sub_other');
  const first = cache.fetch('sub_x');
  cache.invalidate('sub_x');
  const second = cache.fetch('sub_x');
  assert.notEqual(first, second, 'a load after the invalidation is a new one');
  // The overlapped load finishes first: it must neither be kept nor remove the newer load in flight.
  releases.get('sub_x')![0]!();
  await first;
  assert.equal(cache.fetch('sub_x'), second, 'the newer load is still the one concurrent callers share');
  assert.equal(cache.peek('sub_x', Date.now()), undefined);
  releases.get('sub_x')![1]!();
  await second;
  assert.ok(cache.peek('sub_x', Date.now()), 'the load that started after the invalidation is kept');
  releases.get('sub_other')![0]!();
  await other;
  assert.ok(cache.peek('sub_other', Date.now()), "another subject's invalidation did not discard this load");
  assert.equal(loads, 3);
});

/** A store outage the test switches on and off, and a clock it drives. */
function outageBed(stalePeriodSeconds: number) {
  const store = new FlakyStore();
  const { logger, lines } = memoryLogger('info');
  const outage = new StoreOutage(store, logger, stalePeriodSeconds);
  let now = 1_000_000;
  let rows: VerificationRow[] = [row({ expires_at: null })];
  const cache = new SubjectCache(
    async () => {
      await store.ping(); // fails while the store is down, as the real read would
      return rows;
    },
    ttl,
    1000,
    outage,
    () => now,
  );
  return {
    store,
    outage,
    cache,
    lines,
    setRows: (r: VerificationRow[]) => (rows = r),
    at: (ms: number) => (now = 1_000_000 + ms),
    now: () => now,
    close: () => {
      outage.close();
      return store.close();
    },
  };
}

test(
  'subject cache: an approved subject passes a 90-second store outage and the rest of the stale ' +
    'period, past its refresh time; then the store decides again',
  async (t) => {
    const b = outageBed(900);
    t.after(() => b.close());
    b.at(0);
    const loaded = await b.cache.get('sub_x', b.now());
    assert.equal(loaded.status, 'verified');
    assert.equal(loaded.freshUntil, b.now() + 60_000);

    b.at(20_000);
    b.store.down = true;
    // Refresh due at 60 s: the re-read gets no answer and the cached entry stands in (past freshUntil: stale).
    b.at(61_000);
    assert.equal(
      b.cache.peek('sub_x', b.now()),
      undefined,
      'the store is not known to be down yet: a re-read is tried',
    );
    const standIn = await b.cache.fetch('sub_x');
    assert.equal(standIn, loaded);
    assert.ok(b.now() >= standIn.freshUntil, 'served past its refresh time');
    // 90 s into the outage: known down, served at once without trying the store.
    b.at(110_000);
    const failures = b.store.failures;
    assert.equal(b.cache.peek('sub_x', b.now()), loaded);
    assert.equal(b.store.failures, failures);
    // Until the stale period ends, 15 min after the refresh was due, and not after.
    b.at(60_000 + 900_000 - 1);
    assert.equal(b.cache.peek('sub_x', b.now()), loaded);
    b.at(60_000 + 900_000 + 1);
    assert.equal(b.cache.peek('sub_x', b.now()), undefined);
    await assert.rejects(b.cache.fetch('sub_x'), StoreUnavailable);
    assert.equal(
      b.lines.filter((l) => String(l.msg).startsWith('store unreachable: deciding on cached verification state'))
        .length,
      1,
      'logged once per outage',
    );

    // Back: the store's answer (declined meanwhile) replaces what was cached.
    b.store.down = false;
    b.setRows([row({ state: 'declined', claims: '', provider_status: 'Declined' })]);
    const fresh = await b.cache.fetch('sub_x');
    assert.equal(fresh.status, 'declined');
    assert.equal(fresh.claims.size, 0);
  },
);

test('subject cache: a verification is never served past its own expiry, not even during an outage; stale period 0 serves nothing stale', async (t) => {
  const b = outageBed(900);
  t.after(() => b.close());
  b.at(0);
  b.setRows([row({ expires_at: b.now() + 100_000 })]);
  await b.cache.get('sub_x', b.now());
  b.store.down = true;
  b.at(70_000);
  await b.cache.fetch('sub_x'); // stands in, and the store is now known to be down
  assert.ok(b.cache.peek('sub_x', b.now()));
  b.at(100_001);
  assert.equal(b.cache.peek('sub_x', b.now()), undefined, 'the approval expired at 100 s');
  await assert.rejects(b.cache.fetch('sub_x'), StoreUnavailable);

  const off = outageBed(0);
  t.after(() => off.close());
  off.at(0);
  await off.cache.get('sub_x', off.now());
  off.store.down = true;
  off.at(61_000);
  await assert.rejects(off.cache.fetch('sub_x'), StoreUnavailable);
  assert.equal(off.cache.peek('sub_x', off.now()), undefined);
});
