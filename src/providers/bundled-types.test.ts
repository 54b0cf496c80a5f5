/**
 * Provider metrics through a real gateway: the embedded sandbox's API calls count in
 * kycgate_provider_requests_total and _duration_seconds, and the breaker gauge is there from the start and
 * follows the breaker (a Didit provider whose API is unreachable opens it). The kyc section's webhook tolerance
 * reaches providers that do not set their own.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { httpRequest, startTestGateway } from '../../testing/harness.js';
import { freePort } from '../../testing/ports.js';
import { signDiditWebhook } from './didit/signature.js';

const gate = {
  'kyc-gate': {
    subject: { from: 'header', header: 'x-user-id', trust_unauthenticated_header: true },
    required_claims: ['kyc_full'],
  },
};
const as = { headers: { 'x-user-id': 'mia', accept: 'application/json' } };

test('a session created through the sandbox provider shows as a provider request, with its latency and the breaker gauge', async (t) => {
  const gw = await startTestGateway({
    log: { level: 'warn', access: false },
    kyc: {
      providers: { sandbox: { type: 'sandbox', port: 0 } },
      workflows: {
        kyc: {
          provider: 'sandbox',
          workflow_id: '0b6f3f0e-6c1d-4c55-9d9e-0e6f2f1d2a3b',
          claims: { kyc_full: 'facts.status == "Approved"' },
        },
      },
    },
    routes: [{ name: 'api', match: { prefix: '/api' }, policies: [gate] }],
  });
  t.after(() => gw.close());
  const challenge = await httpRequest(`${gw.url}/api/x`, as);
  assert.equal(challenge.status, 403);
  assert.match((JSON.parse(challenge.body) as { verification_url: string }).verification_url, /\/verify\//);
  const m = (await httpRequest(`${gw.adminUrl}/metrics`)).body;
  assert.match(m, /kycgate_provider_requests_total\{provider="sandbox",outcome="ok"\} 1\n/);
  assert.match(m, /kycgate_provider_duration_seconds_count\{provider="sandbox"\} 1\n/);
  assert.match(m, /kycgate_provider_breaker_state\{provider="sandbox"\} 0\n/);
});

test('calls to an unreachable Didit API count as errors and the opened breaker shows in the gauge', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kycgate-provider-metrics-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(path.join(dir, 'api-key'), 'key');
  writeFileSync(path.join(dir, 'webhook-secret'), 'secret-0123456789');
  const port = await freePort();
  const gw = await startTestGateway({
    log: { level: 'error', access: false },
    kyc: {
      providers: {
        didit: {
          type: 'didit',
          base_url: `http://127.0.0.1:${port}`,
          api_key: { file: path.join(dir, 'api-key') },
          webhook_secret: { file: path.join(dir, 'webhook-secret') },
          breaker: { failure_threshold: 1, cooldown_ms: 60000 },
        },
      },
      workflows: { kyc: { provider: 'didit', workflow_id: 'wf', claims: { kyc_full: 'true' } } },
    },
    routes: [{ name: 'api', match: { prefix: '/api' }, policies: [gate] }],
  });
  t.after(() => gw.close());
  assert.match(
    (await httpRequest(`${gw.adminUrl}/metrics`)).body,
    /kycgate_provider_breaker_state\{provider="didit"\} 0\n/,
  );
  assert.equal((await httpRequest(`${gw.url}/api/x`, as)).status, 503);
  assert.equal(
    (await httpRequest(`${gw.url}/api/x`, { headers: { ...as.headers, 'x-user-id': 'noa' } })).status,
    503,
    'refused by the open breaker, without a call',
  );
  const m = (await httpRequest(`${gw.adminUrl}/metrics`)).body;
  assert.match(m, /kycgate_provider_requests_total\{provider="didit",outcome="error"\} 1\n/);
  assert.match(m, /kycgate_provider_breaker_state\{provider="didit"\} 2\n/);
});

test('kyc.webhook_tolerance_seconds applies to a provider whose webhook section does not set tolerance_s', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kycgate-provider-tolerance-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const secretFile = path.join(dir, 'webhook-secret');
  writeFileSync(secretFile, 'secret-0123456789');
  const gw = await startTestGateway({
    log: { level: 'error', access: false },
    kyc: {
      webhook_tolerance_seconds: 30,
      providers: {
        // Only the signature list is set: the tolerance comes from the kyc section.
        strict: { type: 'didit', webhook_secret: { file: secretFile }, webhook: { signatures: ['v2', 'raw'] } },
        // Its own tolerance wins.
        lenient: { type: 'didit', webhook_secret: { file: secretFile }, webhook: { tolerance_s: 600 } },
      },
      workflows: { kyc: { provider: 'strict', workflow_id: 'wf', claims: { kyc_full: 'true' } } },
    },
    routes: [{ name: 'api', match: { prefix: '/api' }, policies: [gate] }],
  });
  t.after(() => gw.close());
  let n = 0;
  const webhook = (timestamp: number) =>
    signDiditWebhook('secret-0123456789', {
      event_id: `evt-${++n}`,
      session_id: '11111111-2222-3333-4444-555555555555',
      status: 'Approved',
      webhook_type: 'status.updated',
      timestamp,
      created_at: timestamp,
    });
  const post = (provider: string, hook: { body: string; headers: Record<string, string> }) =>
    httpRequest(`${gw.url}/webhooks/${provider}`, {
      method: 'POST',
      headers: { ...hook.headers, 'content-type': 'application/json' },
      body: hook.body,
    });
  const now = Math.floor(Date.now() / 1000);

  const old = await post('strict', webhook(now - 120));
  assert.equal(old.status, 401);
  assert.equal(
    (JSON.parse(old.body) as { detail: string }).detail,
    'The webhook timestamp is outside the accepted window.',
  );
  assert.equal((await post('strict', webhook(now - 5))).status, 200, 'within kyc.webhook_tolerance_seconds');
  assert.equal((await post('lenient', webhook(now - 120))).status, 200, "the provider entry's own tolerance_s wins");
});
