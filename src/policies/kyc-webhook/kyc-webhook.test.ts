/**
 * Webhook handling details: an event that arrives before its session is recorded is kept and applied once the
 * session is known; personal data a claim needs is kept sealed; the inbox forgets payloads once applied.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { httpRequest, startTestGateway } from '../../../testing/harness.js';
import { kycTestbed, postWebhook, eventually } from '../../../testing/kyc-testbed.js';
import type { Store } from '../../store/store.js';
import type { KycService } from '../../kyc/service.js';

test('an event for a session the gateway has not recorded yet is acknowledged, kept, and applied once the session is recorded', async (t) => {
  const bed = await kycTestbed(t);
  const gw = await startTestGateway(bed.config());
  t.after(() => gw.close());
  let early: number | undefined;
  bed.provider.beforeAnswer = async (sessionId) => {
    early = (await postWebhook(gw.url, bed.provider.webhook(sessionId, 'Approved', { eventId: 'evt-early' }))).status;
  };
  const as = { headers: { 'x-user-id': 'olga', accept: 'application/json' } };
  assert.equal((await httpRequest(`${gw.url}/api/x`, as)).status, 403);
  assert.equal(early, 200);
  assert.ok(await eventually(async () => (await httpRequest(`${gw.url}/api/x`, as)).status === 200, 1000));
  const store = gw.gateway.services.get<Store>('store');
  const [row] = await store.query<{ outcome: string; payload: string }>("SELECT outcome, payload FROM kyc_webhook_events WHERE event_id = 'evt-early'");
  assert.equal(row!.outcome, 'applied');
  assert.equal(row!.payload, '', 'the sealed payload is dropped once applied');
});

test('personal data is kept only when configured, sealed with the key id beside it; claims may use it (age)', async (t) => {
  const bed = await kycTestbed(t);
  const gw = await startTestGateway(
    bed.config(
      { required_claims: ['age_over_18'] },
      { kyc: { workflows: { full: { provider: 'testprov', workflow_id: 'wf-full', claims: { age_over_18: 'age(personal.date_of_birth) >= 18', kyc_full: 'true' }, retain_personal: ['date_of_birth'] } } } },
    ),
  );
  t.after(() => gw.close());
  const as = { headers: { 'x-user-id': 'petra', accept: 'application/json' } };
  const sessionId = (JSON.parse((await httpRequest(`${gw.url}/api/x`, as)).body) as { session_id: string }).session_id;
  const hook = bed.provider.webhook(sessionId, 'Approved', { personal: { firstName: 'Petra', lastName: 'Novak', dateOfBirth: '1990-04-01' } });
  assert.equal((await postWebhook(gw.url, hook)).status, 200);
  assert.ok(await eventually(async () => (await httpRequest(`${gw.url}/api/x`, as)).status === 200));
  const store = gw.gateway.services.get<Store>('store');
  const [row] = await store.query<{ personal: string; key_id: string; claims: string; subject: string; provider: string; workflow: string }>('SELECT * FROM kyc_verifications');
  assert.equal(row!.key_id, 'local');
  assert.match(row!.personal, /^v1\.local\./);
  const everything = JSON.stringify(await store.query('SELECT * FROM kyc_verifications')) + JSON.stringify(await store.query('SELECT * FROM kyc_webhook_events'));
  for (const clear of ['Petra', 'Novak', '1990-04-01', 'petra']) assert.ok(!everything.includes(clear), `${clear} is not stored in clear`);
  const sealer = gw.gateway.services.get<KycService>('kyc').setup.sealer;
  assert.deepEqual(JSON.parse(sealer.open(row!.personal, `personal:${row!.subject}:${row!.provider}:${row!.workflow}`)), { date_of_birth: '1990-04-01' }, 'names were not kept');
});
