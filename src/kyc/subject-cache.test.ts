import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SubjectCache, SubjectEntry } from './subject-cache.js';
import type { VerificationRow } from './verification-store.js';

function row(over: Partial<VerificationRow>): VerificationRow {
  return {
    subject: 'sub_x', provider: 'p', workflow: 'full', workflow_id: 'wf', session_id: 's1', session_url: null, session_started_at: 1, lease_owner: null, lease_until: 0,
    provider_status: 'Approved', state: 'approved', claims: 'kyc_basic kyc_full', status_seq: 1, verified_at: 1, expires_at: null, personal: null, key_id: null,
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

test('subject cache: invalidating one subject keeps other subjects\' loads; a stale load never replaces a newer one', async () => {
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
  assert.ok(cache.peek('sub_other', Date.now()), 'another subject\'s invalidation did not discard this load');
  assert.equal(loads, 3);
});
