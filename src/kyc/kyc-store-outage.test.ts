/**
 * PostgreSQL lost while a user's verification session is being created (a real server behind a relay that the test
 * freezes or cuts at the moment the provider creates the session): the user gets 503 with Retry-After, the provider
 * session is not orphaned (exactly one exists at the provider, it is offered on the next attempt and recorded as soon
 * as the database is back), and the user is challenged at once after recovery, not locked out by the lease of the
 * failed attempt. Also: a rule that reads the history does not fail open when the history cannot be read.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { startTestGateway, httpRequest, type TestGateway } from '../../testing/harness.js';
import { requirePostgres, uniqueName, POSTGRES_URL } from '../../testing/services.js';
import { startTcpRelay, type TcpRelay } from '../../testing/tcp-relay.js';
import { kycTestbed, postWebhook, eventually, type KycTestbed } from '../../testing/kyc-testbed.js';
import { watchLoopLag } from '../../testing/loop-lag.js';
import { PostgresStore } from '../store/postgres.js';
import type { KycService } from './service.js';

const DEADLINE_MS = 1000;
/** Deadline + 100 ms, and what a loaded 2-core machine may add to it (the provider's own answer included). */
const BOUND_MS = DEADLINE_MS + 100 + 400;

async function outageBed(
  t: TestContext,
  extra: Record<string, unknown> = {},
): Promise<{ bed: KycTestbed; relay: TcpRelay; gw: TestGateway; direct: PostgresStore; kyc: KycService } | undefined> {
  if (!(await requirePostgres(t))) return undefined;
  const bed = await kycTestbed(t);
  const relay = await startTcpRelay(5432);
  const schema = uniqueName('kycdown');
  const direct = new PostgresStore({ connectionString: POSTGRES_URL, schema, poolSize: 2 });
  t.after(async () => {
    await relay.close();
    await direct.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => undefined);
    await direct.close();
  });
  const gw = await startTestGateway(
    bed.config(
      {},
      {
        store: {
          driver: 'postgres',
          postgres: {
            url: `postgres://postgres@127.0.0.1:${relay.port}/test`,
            schema,
            pool_size: 4,
            query_timeout_ms: DEADLINE_MS,
          },
        },
        kyc: bed.sharedKeys(),
        ...extra,
      },
    ),
    { baseDir: bed.dir },
  );
  t.after(() => gw.close());
  return { bed, relay, gw, direct, kyc: gw.gateway.services.get<KycService>('kyc') };
}

const as = (user: string) => ({ headers: { 'x-user-id': user, accept: 'application/json' } });

test('store frozen while the session is created: 503 with Retry-After, one provider session, offered ' +
  'again, recorded when the store is back, and the user challenged at once', {
  timeout: 60_000,
}, async (t) => {
  const ctx = await outageBed(t);
  if (!ctx) return;
  const { bed, relay, gw, direct, kyc } = ctx;
  const lag = watchLoopLag();
  t.after(() => lag.stop());
  let frozenAt = 0;
  let lateAtFreeze = 0;
  bed.provider.beforeAnswer = async () => {
    bed.provider.beforeAnswer = undefined;
    relay.freeze();
    frozenAt = performance.now();
    lateAtFreeze = lag.totalMs();
  };

  const first = await httpRequest(`${gw.url}/api/pay`, as('mia'));
  const waited = performance.now() - frozenAt;
  const lateSinceFreeze = lag.totalMs() - lateAtFreeze;
  assert.ok(frozenAt > 0, 'the database froze while the provider created the session');
  assert.equal(first.status, 503, first.body);
  assert.equal(first.headers['content-type'], 'application/problem+json');
  assert.equal(JSON.parse(first.body).type, 'https://kycgate.dev/problems/service-unavailable');
  assert.ok(Number(first.headers['retry-after']) >= 1, 'says when to try again');
  assert.ok(
    // The deadline from the freeze, plus every delay of this process's loop since (the gateway runs in it).
    waited < DEADLINE_MS + 100 + lateSinceFreeze,
    `answered ${Math.round(waited)} ms after the freeze (deadline ${DEADLINE_MS} ms, loop late ${Math.round(lateSinceFreeze)} ms)`,
  );
  assert.equal(bed.provider.created, 1);
  const [sessionId] = [...bed.provider.sessions.keys()];
  assert.equal(kyc.unrecordedSessions, 1, 'the session is kept, not orphaned');

  // The database is still hung: the next attempt offers the session that exists, without waiting for the store.
  const againStarted = performance.now();
  const lateBeforeAgain = lag.totalMs();
  const again = await httpRequest(`${gw.url}/api/pay`, as('mia'));
  const againWaited = performance.now() - againStarted;
  const lateAgain = lag.totalMs() - lateBeforeAgain;
  assert.equal(again.status, 403, again.body);
  assert.equal(JSON.parse(again.body).type, 'https://kycgate.dev/problems/kyc-required');
  assert.equal(JSON.parse(again.body).session_id, sessionId, 'the same provider session');
  assert.ok(
    againWaited < BOUND_MS + lateAgain,
    `answered after ${Math.round(againWaited)} ms (loop late ${Math.round(lateAgain)} ms)`,
  );
  assert.equal(bed.provider.created, 1);

  relay.thaw();
  const thawedAt = performance.now();
  const lateAtThaw = lag.totalMs();
  const afterRecovery = await httpRequest(`${gw.url}/api/pay`, as('mia'));
  const challengedAfter = performance.now() - thawedAt;
  const lateAfterThaw = lag.totalMs() - lateAtThaw;
  assert.equal(afterRecovery.status, 403);
  assert.equal(JSON.parse(afterRecovery.body).session_id, sessionId);
  assert.ok(
    challengedAfter < 1000 + lateAfterThaw,
    `challenged ${Math.round(challengedAfter)} ms after recovery (loop late ${Math.round(lateAfterThaw)} ms)`,
  );

  // Recorded as soon as the store answers (the failed attempt's lease does not stand in the way).
  assert.ok(
    await eventually(
      async () =>
        (await direct.query('SELECT session_id FROM kyc_sessions WHERE session_id = $1', [sessionId])).length === 1,
      3000,
      50,
    ),
    'the provider session is recorded once the store is back',
  );
  assert.equal(kyc.unrecordedSessions, 0);
  const [row] = await direct.query<{ lease_owner: string | null; session_id: string }>(
    'SELECT lease_owner, session_id FROM kyc_verifications',
  );
  assert.equal(row!.session_id, sessionId);
  assert.equal(row!.lease_owner, null, 'no lease left behind');

  // The provider reports on that session: it applies, and the user passes. Still one session at the provider.
  assert.equal((await postWebhook(gw.url, bed.provider.webhook(sessionId!, 'Approved'))).status, 200);
  assert.ok(await eventually(async () => (await httpRequest(`${gw.url}/api/pay`, as('mia'))).status === 200, 3000, 50));
  assert.equal(bed.provider.created, 1, 'exactly one provider session for this user');
  t.diagnostic(
    `503 ${Math.round(waited)} ms after the freeze (deadline ${DEADLINE_MS} ms, loop late ${Math.round(lateSinceFreeze)} ms); offered again after ` +
      `${Math.round(againWaited)} ms; challenged ${Math.round(challengedAfter)} ms after recovery`,
  );
});

test('store refusing connections while the session is created: 503, one provider session, recorded after restore, no lockout', {
  timeout: 60_000,
}, async (t) => {
  const ctx = await outageBed(t);
  if (!ctx) return;
  const { bed, relay, gw, direct, kyc } = ctx;
  bed.provider.beforeAnswer = async () => {
    bed.provider.beforeAnswer = undefined;
    await relay.cut('refuse');
  };
  const started = performance.now();
  const first = await httpRequest(`${gw.url}/api/pay`, as('noah'));
  assert.equal(first.status, 503, first.body);
  assert.ok(Number(first.headers['retry-after']) >= 1);
  assert.ok(performance.now() - started < BOUND_MS);
  assert.equal(bed.provider.created, 1);
  const [sessionId] = [...bed.provider.sessions.keys()];

  await relay.restore();
  const restoredAt = performance.now();
  let challenged: { status: number; body: string } | undefined;
  assert.ok(
    await eventually(
      async () => {
        challenged = await httpRequest(`${gw.url}/api/pay`, as('noah'));
        return challenged.status === 403;
      },
      1000,
      20,
    ),
    `challenged within a second of recovery (last answer ${challenged?.status})`,
  );
  assert.ok(performance.now() - restoredAt < 1000);
  assert.equal(JSON.parse(challenged!.body).session_id, sessionId);
  assert.ok(await eventually(async () => kyc.unrecordedSessions === 0, 3000, 50));
  assert.equal((await direct.query('SELECT session_id FROM kyc_sessions')).length, 1);
  assert.equal(bed.provider.created, 1);
});

test('a rule reading the history does not fail open when the store hangs: 503 instead of skipping the rule', {
  timeout: 60_000,
}, async (t) => {
  const ctx = await outageBed(t, {
    routes: [
      {
        name: 'limits',
        match: { prefix: '/limits' },
        upstream: 'api',
        policies: [
          {
            'kyc-gate': {
              subject: { from: 'header', header: 'x-user-id', trust_unauthenticated_header: true },
              rules: [{ name: 'volume', when: 'subject.history_sum("amount", "24h") > 100.0', action: 'deny' }],
            },
          },
        ],
      },
    ],
  });
  if (!ctx) return;
  const { relay, gw, kyc } = ctx;
  assert.equal((await httpRequest(`${gw.url}/limits/x`, as('hana'))).status, 200, 'below the volume: allowed');
  const subject = kyc.pseudonymise('', 'hana');
  await kyc.records.recordHistory(subject, 'amount', 500, Date.now());
  assert.equal((await httpRequest(`${gw.url}/limits/x`, as('hana'))).status, 403, 'over the volume: the rule denies');

  relay.freeze();
  const started = performance.now();
  const during = await httpRequest(`${gw.url}/limits/x`, as('hana'));
  assert.equal(during.status, 503, 'the history cannot be read: not allowed by default');
  assert.ok(performance.now() - started < BOUND_MS);
  relay.thaw();
  assert.ok(
    await eventually(async () => (await httpRequest(`${gw.url}/limits/x`, as('hana'))).status === 403, 3000, 50),
  );
});
