/**
 * Provider metrics through a real gateway: the embedded sandbox's API calls count in
 * kycgate_provider_requests_total and _duration_seconds, and the breaker gauge is there from the start and
 * follows the breaker (a Didit provider whose API is unreachable opens it).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { httpRequest, startTestGateway } from '../../testing/harness.js';
import { freePort } from '../../testing/ports.js';

const gate = { 'kyc-gate': { subject: { from: 'header', header: 'x-user-id', trust_unauthenticated_header: true }, required_claims: ['kyc_full'] } };
const as = { headers: { 'x-user-id': 'mia', accept: 'application/json' } };

test('a session created through the sandbox provider shows as a provider request, with its latency and the breaker gauge', async (t) => {
  const gw = await startTestGateway({
    log: { level: 'warn', access: false },
    kyc: {
      providers: { sandbox: { type: 'sandbox', port: 0 } },
      workflows: { kyc: { provider: 'sandbox', workflow_id: '0b6f3f0e-6c1d-4c55-9d9e-0e6f2f1d2a3b', claims: { kyc_full: 'facts.status == "Approved"' } } },
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
  assert.match((await httpRequest(`${gw.adminUrl}/metrics`)).body, /kycgate_provider_breaker_state\{provider="didit"\} 0\n/);
  assert.equal((await httpRequest(`${gw.url}/api/x`, as)).status, 503);
  assert.equal((await httpRequest(`${gw.url}/api/x`, { headers: { ...as.headers, 'x-user-id': 'noa' } })).status, 503, 'refused by the open breaker, without a call');
  const m = (await httpRequest(`${gw.adminUrl}/metrics`)).body;
  assert.match(m, /kycgate_provider_requests_total\{provider="didit",outcome="error"\} 1\n/);
  assert.match(m, /kycgate_provider_breaker_state\{provider="didit"\} 2\n/);
});
