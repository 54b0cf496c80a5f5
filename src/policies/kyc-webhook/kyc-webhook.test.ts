/**
 * Webhook handling details: an event that arrives before its session is recorded is kept and applied once the
 * session is known; personal data a claim needs is kept sealed; the inbox forgets payloads once applied; events
 * that keep failing are parked and never hold back newer ones; a body the signature check cannot handle is refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { httpRequest, startTestGateway } from '../../../testing/harness.js';
import { kycTestbed, postWebhook, eventually } from '../../../testing/kyc-testbed.js';
import type { Store } from '../../store/store.js';
import { MAX_EVENT_ATTEMPTS, type KycService } from '../../kyc/service.js';
import { SUBJECT_KEY_ID, existingSubjectSealer } from '../../kyc/subject-keys.js';

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
  const [row] = await store.query<{ outcome: string; payload: string }>(
    "SELECT outcome, payload FROM kyc_webhook_events WHERE event_id = 'evt-early'",
  );
  assert.equal(row!.outcome, 'applied');
  assert.equal(row!.payload, '', 'the sealed payload is dropped once applied');
});

test('personal data is kept only when configured, sealed with the key id beside it; claims may use it (age)', async (t) => {
  const bed = await kycTestbed(t);
  const gw = await startTestGateway(
    bed.config(
      { required_claims: ['age_over_18'] },
      {
        kyc: {
          workflows: {
            full: {
              provider: 'testprov',
              workflow_id: 'wf-full',
              claims: { age_over_18: 'age(personal.date_of_birth) >= 18', kyc_full: 'true' },
              retain_personal: ['date_of_birth'],
            },
          },
        },
      },
    ),
  );
  t.after(() => gw.close());
  const as = { headers: { 'x-user-id': 'petra', accept: 'application/json' } };
  const sessionId = (JSON.parse((await httpRequest(`${gw.url}/api/x`, as)).body) as { session_id: string }).session_id;
  const hook = bed.provider.webhook(sessionId, 'Approved', {
    personal: { firstName: 'Petra', lastName: 'Novak', dateOfBirth: '1990-04-01' },
  });
  assert.equal((await postWebhook(gw.url, hook)).status, 200);
  assert.ok(await eventually(async () => (await httpRequest(`${gw.url}/api/x`, as)).status === 200));
  const store = gw.gateway.services.get<Store>('store');
  const [row] = await store.query<{
    personal: string;
    key_id: string;
    claims: string;
    subject: string;
    provider: string;
    workflow: string;
  }>('SELECT * FROM kyc_verifications');
  // Sealed under the subject's own data key (crypto-shredding), itself wrapped by the configured key.
  assert.equal(row!.key_id, SUBJECT_KEY_ID);
  assert.match(row!.personal, /^v1\.sk\./);
  const everything =
    JSON.stringify(await store.query('SELECT * FROM kyc_verifications')) +
    JSON.stringify(await store.query('SELECT * FROM kyc_webhook_events'));
  for (const clear of ['Petra', 'Novak', '1990-04-01', 'petra'])
    assert.ok(!everything.includes(clear), `${clear} is not stored in clear`);
  const kyc = gw.gateway.services.get<KycService>('kyc');
  const sealer = (await existingSubjectSealer(store, kyc.setup.sealer, row!.subject))!;
  assert.deepEqual(
    JSON.parse(sealer.open(row!.personal, `personal:${row!.subject}:${row!.provider}:${row!.workflow}`)),
    { date_of_birth: '1990-04-01' },
    'names were not kept',
  );
});

test('stored events that keep failing are counted, parked after MAX_EVENT_ATTEMPTS with one error log, and never hold back newer events', async (t) => {
  const bed = await kycTestbed(t);
  const gw = await startTestGateway(bed.config());
  t.after(() => gw.close());
  const kyc = gw.gateway.services.get<KycService>('kyc');
  const store = gw.gateway.services.get<Store>('store');
  const as = { headers: { 'x-user-id': 'quinn', accept: 'application/json' } };
  const sessionId = (JSON.parse((await httpRequest(`${gw.url}/api/x`, as)).body) as { session_id: string }).session_id;
  // 200 older events whose payload cannot be opened (e.g. sealed with a key no longer configured): they can never apply.
  for (let i = 0; i < 200; i++) {
    await store.query(
      'INSERT INTO kyc_webhook_events (provider, event_id, session_id, event_seq, received_at, payload, ' +
        "key_id) VALUES ('testprov', $1, $2, 0, $3, 'v1.gone.unreadable', 'gone')",
      [`evt-bad-${i}`, sessionId, Date.now()],
    );
  }
  // A newer event that cannot apply at once (the decision must be fetched from a provider that is down).
  bed.provider.failWith = 503;
  assert.equal(
    (
      await postWebhook(
        gw.url,
        bed.provider.webhook(sessionId, 'Approved', { eventId: 'evt-good', withDecision: false }),
      )
    ).status,
    200,
  );
  assert.equal((await httpRequest(`${gw.url}/api/x`, as)).status, 403);
  bed.provider.failWith = undefined;

  const status = async () => (await httpRequest(`${gw.url}/api/x`, as)).status;
  assert.ok(
    await eventually(async () => {
      await kyc.reconcile();
      return (await status()) === 200;
    }, 5000),
    'the newer event is applied despite 200 failing ones before it',
  );

  const bad = () =>
    store.query<{ outcome: string | null; processed_at: number | null; attempts: number }>(
      "SELECT outcome, processed_at, attempts FROM kyc_webhook_events WHERE event_id LIKE 'evt-bad-%'",
    );
  assert.ok(
    await eventually(async () => {
      await kyc.reconcile();
      return (await bad()).every((r) => r.processed_at !== null);
    }, 20000),
    'every failing event is parked',
  );
  for (const row of await bad()) {
    assert.equal(row.outcome, 'failed');
    assert.equal(Number(row.attempts), MAX_EVENT_ATTEMPTS);
  }
  const givenUp = () => gw.logs.filter((l) => l.msg === 'webhook event could not be applied; given up');
  assert.equal(givenUp().length, 200, 'one error log per parked event');
  assert.ok(
    givenUp().every((l) => l.level === 50 && typeof l.event_id === 'string' && l.attempts === MAX_EVENT_ATTEMPTS),
  );
  await kyc.reconcile();
  assert.equal(givenUp().length, 200, 'parked events are not retried');
  assert.ok((await bad()).every((r) => Number(r.attempts) === MAX_EVENT_ATTEMPTS));
});

test(
  'a Didit webhook whose body cannot be canonicalised for X-Signature-V2 (nested too deeply, 1e400) is ' +
    'refused 401 as an invalid signature, not a 500',
  async (t) => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kycgate-webhook-deep-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(path.join(dir, 'webhook-secret'), 'secret-0123456789');
    const gw = await startTestGateway({
      log: { level: 'error', access: false },
      kyc: {
        providers: { didit: { type: 'didit', webhook_secret: { file: path.join(dir, 'webhook-secret') } } },
        workflows: { kyc: { provider: 'didit', workflow_id: 'wf', claims: { kyc_full: 'true' } } },
      },
      routes: [],
    });
    t.after(() => gw.close());
    const now = Math.floor(Date.now() / 1000);
    const envelope =
      '"event_id":"evt-1","session_id":"11111111-2222-3333-4444-555555555555","status":"Approved",' +
      `"webhook_type":"status.updated","timestamp":${now}`;
    const depth = 200_000; // 400 kB, within the 1 MiB body limit
    for (const body of [`{${envelope},"x":${'['.repeat(depth)}${']'.repeat(depth)}}`, `{${envelope},"x":1e400}`]) {
      const answer = await httpRequest(`${gw.url}/webhooks/didit`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-signature-v2': 'ab'.repeat(32) },
        body,
      });
      assert.equal(answer.status, 401);
      assert.equal(answer.headers['content-type'], 'application/problem+json');
      assert.equal(
        (JSON.parse(answer.body) as { type: string }).type,
        'https://kycgate.dev/problems/webhook-signature-invalid',
      );
    }
  },
);
