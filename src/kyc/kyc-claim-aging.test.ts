/**
 * Claims that age, on two instances sharing PostgreSQL and Redis, under a mock clock: a claim's own max_age, the
 * verified document's expiry date and a revoking provider event each challenge the user again with a
 * re-verification session, on both instances at the same instant (each judges expiry from the stored decision
 * time with its clock; nothing has to be told), and exactly one new provider session is created.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { httpRequest, startTestGateway } from '../../testing/harness.js';
import { POSTGRES_URL, REDIS_URL, requirePostgres, requireRedis, uniqueName } from '../../testing/services.js';
import { kycTestbed, postWebhook, eventually } from '../../testing/kyc-testbed.js';
import { PostgresStore } from '../store/postgres.js';
import type { KycService } from './service.js';

const DAY = 86_400_000;

function isoDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

test('claims age: max_age, document expiry and a revoking event re-challenge on two instances at once (mock clock)', async (t) => {
  if (!(await requirePostgres(t)) || !(await requireRedis(t))) return;
  const bed = await kycTestbed(t);
  const schema = uniqueName('kycage');
  t.after(async () => {
    const admin = new PostgresStore({ connectionString: POSTGRES_URL, poolSize: 1 });
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => undefined);
    await admin.close();
  });
  const config = bed.config(
    { required_claims: ['kyc_full', 'aml_clear'] },
    {
      store: { driver: 'postgres', postgres: { url: POSTGRES_URL, schema, pool_size: 4 } },
      redis: { url: REDIS_URL, key_prefix: `${uniqueName('kycage')}:` },
      kyc: {
        ...bed.sharedKeys(),
        workflows: {
          full: {
            provider: 'testprov',
            workflow_id: 'wf-full',
            max_age: '365d',
            expire_with_document: true,
            claims: { kyc_full: 'true', aml_clear: { when: 'true', max_age: '30d' } },
          },
        },
      },
    },
  );
  const a = await startTestGateway(config, { baseDir: bed.dir });
  t.after(() => a.close());
  const b = await startTestGateway(config, { baseDir: bed.dir });
  t.after(() => b.close());
  const kycA = a.gateway.services.get<KycService>('kyc');
  const kycB = b.gateway.services.get<KycService>('kyc');
  const real = Date.now();
  const setClock = (offsetMs: number) => {
    kycA.now = () => Date.now() + offsetMs;
    kycB.now = () => Date.now() + offsetMs;
  };
  const as = (user: string) => ({ headers: { 'x-user-id': user, accept: 'application/json' } });
  const statusOn = async (gw: typeof a, user: string) => (await httpRequest(`${gw.url}/api/x`, as(user))).status;

  /** Verifies `user` with a document expiring `documentDays` from now; returns the session id. */
  const verify = async (user: string, documentDays: number) => {
    const challenge = await httpRequest(`${a.url}/api/x`, as(user));
    assert.equal(challenge.status, 403, challenge.body);
    const sessionId = (JSON.parse(challenge.body) as { session_id: string }).session_id;
    const facts = { status: 'Approved', document_expires: isoDay(real + documentDays * DAY) };
    assert.equal((await postWebhook(a.url, bed.provider.webhook(sessionId, 'Approved', { facts }))).status, 200);
    assert.ok(
      await eventually(async () => (await statusOn(a, user)) === 200 && (await statusOn(b, user)) === 200, 5000),
    );
    return sessionId;
  };
  const lena = await verify('lena', 200);
  const mark = await verify('mark', 10);
  const olga = await verify('olga', 200);
  const createdBefore = bed.provider.created;

  /** Both instances challenge `user` again with the same new session (one provider session), not a refusal. */
  const reChallenged = async (user: string, previous: string) => {
    const answers = await Promise.all([a, b, a, b].map((gw) => httpRequest(`${gw.url}/api/x`, as(user))));
    const sessions = new Set(
      answers.map((r) => {
        assert.equal(r.status, 403, r.body);
        const problem = JSON.parse(r.body) as { type: string; session_id: string; verification_url: string };
        assert.equal(problem.type, 'https://kycgate.dev/problems/kyc-required', r.body);
        assert.ok(problem.verification_url);
        return problem.session_id;
      }),
    );
    assert.equal(sessions.size, 1, 'one re-verification session for both instances');
    assert.notEqual([...sessions][0], previous);
  };

  // Day 9: everything holds.
  setClock(9 * DAY);
  for (const user of ['lena', 'mark', 'olga'])
    for (const gw of [a, b]) assert.equal(await statusOn(gw, user), 200, user);

  // Day 11: Mark's document expired (day 10): the whole verification lapsed, on both instances.
  setClock(11 * DAY);
  await reChallenged('mark', mark);
  assert.equal(bed.provider.created, createdBefore + 1);
  for (const gw of [a, b]) assert.equal(await statusOn(gw, 'lena'), 200, 'Lena is not affected');

  // A provider event revokes Olga (an AML monitoring hit reported as an expired KYC): challenged again everywhere.
  const revoke = bed.provider.webhook(olga, 'Kyc Expired', { createdAt: Math.floor(Date.now() / 1000) + 1 });
  assert.equal((await postWebhook(b.url, revoke)).status, 200);
  assert.ok(
    await eventually(async () => (await statusOn(a, 'olga')) === 403 && (await statusOn(b, 'olga')) === 403, 5000),
  );
  await reChallenged('olga', olga);

  // Day 31: Lena's aml_clear (max_age 30d) lapsed while kyc_full holds: she is asked to verify again.
  setClock(31 * DAY);
  await reChallenged('lena', lena);
  assert.equal(bed.provider.created, createdBefore + 3, 'one new session per re-challenged user');
});
