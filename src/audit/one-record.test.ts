/**
 * One audit record per request: an authenticated, KYC-gated, rate-limited request is written once, carrying who
 * the client was, how the KYC gate decided and what the answer was; the separate auth.success and kyc.decision
 * records come back only when asked for.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { httpRequest, startTestGateway } from '../../testing/harness.js';
import { eventually, kycTestbed, postWebhook } from '../../testing/kyc-testbed.js';
import type { AuthService } from '../auth/subsystem.js';
import { journalLines, loadPublicKey, verifyJournal } from './verify.js';

type AuditLine = Record<string, any>;

async function run(t: TestContext, separate: boolean) {
  // Local rate-limit counters are process-wide (they survive reloads): each run has its own consumer.
  const consumer = separate ? 'shop-separate' : 'shop';
  const bed = await kycTestbed(t);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kycgate-one-record-'));
  t.after(() => fs.rmSync(dataDir, { recursive: true, force: true }));
  const gw = await startTestGateway(
    bed.config(undefined, {
      consumers: { [consumer]: { scopes: ['orders:read'] } },
      audit: { enabled: true, group_commit_ms: 5, separate_request_events: separate },
      routes: [
        {
          name: 'chain',
          match: { prefix: '/chain' },
          upstream: 'api',
          policies: [
            { authenticate: { methods: [{ 'api-key': {} }] } },
            { authorize: { scopes: { all_of: ['orders:read'] } } },
            { 'kyc-gate': { subject: { from: 'header', header: 'x-user-id' }, required_claims: ['kyc_full'] } },
            { 'rate-limit': { limits: [{ name: 'per-shop', rate: 4, per: 'hour', key: ['consumer'] }] } },
            { 'fault-injection': {} },
          ],
        },
      ],
      resilience: {
        faults: {
          enabled: true,
          armed: [
            {
              route: 'chain',
              abort: { status: 503 },
              header: { name: 'x-drill', value: 'on' },
              until: new Date(Date.now() + 600_000).toISOString(),
            },
          ],
        },
      },
    }),
    { dataDir },
  );
  let closed = false;
  t.after(() => (closed ? undefined : gw.close()));
  const { key, record: keyRecord } = await gw.gateway.services.get<AuthService>('auth').createKey({ consumer });
  const call = (extra: Record<string, string> = {}) =>
    httpRequest(`${gw.url}/chain/orders`, {
      headers: { 'x-api-key': key, 'x-user-id': 'ola', accept: 'application/json', ...extra },
    });

  const challenged = await call();
  assert.equal(challenged.status, 403);
  const { session_id: sessionId } = JSON.parse(challenged.body) as { session_id: string };
  assert.equal((await postWebhook(gw.url, bed.provider.webhook(sessionId, 'Approved'))).status, 200);
  let passed: Awaited<ReturnType<typeof call>> | undefined;
  assert.ok(
    await eventually(async () => {
      passed = await call();
      return passed.status === 200;
    }, 20_000),
    'the approved user passes',
  );
  const faulted = await call({ 'x-drill': 'on' });
  assert.equal(faulted.status, 503);
  let limited = await call();
  while (limited.status === 200) limited = await call();
  assert.equal(limited.status, 429);
  await gw.close();
  closed = true;

  const auditDir = path.join(dataDir, 'audit');
  const verified = verifyJournal(auditDir, loadPublicKey(auditDir));
  assert.equal(verified.ok, true, verified.problem?.message);
  const records = [...journalLines(auditDir)].map((l) => JSON.parse(l.line) as AuditLine);
  const byRequest = (id: unknown) => records.filter((r) => r.request_id === id);
  return {
    records,
    keyId: keyRecord.id,
    challenged: byRequest(challenged.headers['x-request-id']),
    passed: byRequest(passed!.headers['x-request-id']),
    faulted: byRequest(faulted.headers['x-request-id']),
    limited: byRequest(limited.headers['x-request-id']),
  };
}

test('an authenticated, KYC-gated, rate-limited request leaves one record with its identity and decisions', async (t) => {
  const { records, keyId, challenged, passed, faulted, limited } = await run(t, false);
  assert.deepEqual(
    records.filter((r) => r.type === 'auth.success' || r.type === 'kyc.decision'),
    [],
    'no separate record for what the request record carries',
  );

  assert.equal(passed.length, 1, 'one record for a request that passed the whole chain');
  const ok = passed[0]!;
  assert.equal(ok.type, 'http.request');
  assert.equal(ok.status, 200);
  assert.equal(ok.consumer, 'shop');
  assert.equal(ok.auth_method, 'api-key');
  assert.equal(ok.credential_id, keyId);
  assert.match(ok.subject, /^sub_/, 'the subject is the pseudonym, never the user id');
  assert.deepEqual(ok.decision, { outcome: 'allow', policy: 'kyc-gate', rule: 'default' });
  assert.equal(ok.kyc, undefined, 'the KYC decision is the decision: not written twice');

  assert.equal(faulted.filter((r) => r.type === 'http.request').length, 1);
  const drill = faulted.find((r) => r.type === 'http.request')!;
  assert.equal(drill.status, 503);
  assert.equal(drill.decision.policy, 'fault-injection');
  assert.deepEqual(drill.kyc, ok.decision, 'the KYC gate let it through before the fault answered: both on record');

  // The rate limit (phase protect) refuses before the KYC gate (phase gate) is asked: no KYC outcome to carry.
  const limitedRecord = limited.find((r) => r.type === 'http.request')!;
  assert.equal(limitedRecord.status, 429);
  assert.equal(limitedRecord.decision.policy, 'rate-limit');
  assert.equal(limitedRecord.consumer, 'shop');
  assert.equal(limitedRecord.kyc, undefined);

  assert.equal(challenged.length, 1);
  assert.equal(challenged[0]!.status, 403);
  assert.equal(challenged[0]!.decision.policy, 'kyc-gate');
  assert.equal(challenged[0]!.decision.outcome, 'challenge');
  assert.match(challenged[0]!.decision.reason, /missing claims: kyc_full/);
  assert.equal(challenged[0]!.consumer, 'shop');
});

test('audit.separate_request_events writes auth.success and kyc.decision as records of their own', async (t) => {
  const { passed, faulted } = await run(t, true);
  assert.deepEqual(passed.map((r) => r.type).sort(), ['auth.success', 'http.request', 'kyc.decision']);
  const auth = passed.find((r) => r.type === 'auth.success')!;
  assert.equal(auth.outcome, 'api-key');
  assert.equal(auth.data.consumer, 'shop-separate');
  const kyc = passed.find((r) => r.type === 'kyc.decision')!;
  assert.equal(kyc.outcome, 'allow');
  assert.equal(kyc.data.subject, passed.find((r) => r.type === 'http.request')!.subject);
  assert.deepEqual(faulted.map((r) => r.type).sort(), [
    'auth.success',
    'fault.injected',
    'http.request',
    'kyc.decision',
  ]);
});
