/** The audit subsystem's metrics and tracing, through a real gateway. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startTestGateway, httpRequest } from '../../testing/harness.js';
import { startReceiver } from '../../testing/siem-receiver.js';
import { issueCertificate } from '../workload-identity/certificates.js';
import { verifyJournal, loadPublicKey } from './verify.js';
import { auditSchema } from './schema.js';
function tmp(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'kycgate-audit-gw-'));
}

test('metrics: requests by route and status class, refusals, events, certificate expiry; cursors survive a restart', async () => {
  const dataDir = tmp();
  const certDir = tmp();
  const notAfter = new Date(Date.UTC(2031, 0, 2, 3, 4, 5));
  const cert = await issueCertificate({ subject: 'localhost', dns: ['localhost'], ips: ['127.0.0.1'], notAfter });
  fs.writeFileSync(path.join(certDir, 'c.pem'), cert.certPem);
  fs.writeFileSync(path.join(certDir, 'k.pem'), cert.keyPem, { mode: 0o600 });
  const config = {
    listeners: [
      { name: 'main', port: 0 },
      { name: 'secure', port: 0, tls: { cert: path.join(certDir, 'c.pem'), key: path.join(certDir, 'k.pem') } },
    ],
    routes: [
      { name: 'ok', match: { path: '/ok' }, policies: [{ 'static-response': { status: 200, body: 'ok' } }] },
      { name: 'teapot', match: { path: '/tea' }, policies: [{ 'static-response': { status: 418, body: 'no' } }] },
    ],
    audit: { enabled: true, sinks: [{ name: 'archive', type: 'file', path: 'siem/audit.jsonl' }] },
  };
  let gw = await startTestGateway(config, { dataDir });
  try {
    for (let i = 0; i < 3; i++) await httpRequest(`${gw.url}/ok`);
    await httpRequest(`${gw.url}/tea`);
    await httpRequest(`${gw.url}/missing`);
    gw.gateway.services.events.emit({ type: 'auth.failure', outcome: 'expired_token' });
    gw.gateway.services.events.emit({
      type: 'provider.call',
      outcome: 'error',
      data: { provider: 'didit', latency_ms: 12 },
    });
    gw.gateway.services.events.emit({ type: 'provider.breaker', data: { provider: 'didit', state: 'open' } });
    gw.gateway.services.events.emit({ type: 'webhook.accepted', outcome: 'status_updated' });
    gw.gateway.services.events.emit({ type: 'ratelimit.rejected', route: 'ok' });
    const m = (await httpRequest(`${gw.adminUrl}/metrics`)).body;
    assert.match(m, /kycgate_requests_total\{route="ok",status_class="2xx"\} 3/);
    assert.match(m, /kycgate_requests_total\{route="teapot",status_class="4xx"\} 1/);
    assert.match(m, /kycgate_request_duration_seconds_count\{route="ok",status_class="2xx"\} 3/);
    assert.match(m, /kycgate_requests_refused_total\{problem="not-found"\} 1/);
    assert.match(m, /kycgate_auth_failures_total\{reason="expired_token"\} 1/);
    assert.match(m, /kycgate_provider_requests_total\{provider="didit",outcome="error"\} 1/);
    assert.match(m, /kycgate_provider_breaker_state\{provider="didit"\} 2/);
    assert.match(m, /kycgate_webhooks_total\{result="accepted",outcome="status_updated"\} 1/);
    assert.match(m, /kycgate_ratelimit_rejections_total\{route="ok"\} 1/);
    assert.match(
      m,
      new RegExp(`kycgate_tls_certificate_not_after_seconds\\{listener="secure"\\} ${notAfter.getTime() / 1000}`),
    );
    assert.match(m, /kycgate_audit_journal_bytes \d+/);
    // Counts since start are counters (rate() and increase() then read a restart as a reset), with their _total names.
    for (const name of [
      'kycgate_audit_records_written_total',
      'kycgate_audit_commits_total',
      'kycgate_audit_records_dropped_total',
      'kycgate_audit_journal_write_errors_total',
      'kycgate_tls_certificate_rotations_total',
    ]) {
      assert.match(m, new RegExp(`^# TYPE ${name} counter$`, 'm'), name);
    }
    assert.match(m, /^kycgate_tls_certificate_rotations_total\{listener="secure"\} 0$/m);
    assert.match(m, /^kycgate_audit_records_dropped_total 0$/m);
    // Every metric the audit config documentation names is one that is served.
    const named = new Set(JSON.stringify(auditSchema).match(/kycgate_[a-z_]+/g) ?? []);
    assert.ok(named.size >= 2, `names found: ${[...named].join(', ')}`);
    for (const name of named)
      assert.match(m, new RegExp(`^# TYPE ${name} `, 'm'), `${name} (named in the audit schema) is served`);
    assert.ok(!/^nodejs_|^process_/m.test(m), 'own registry, not the global default metrics');
  } finally {
    await gw.close();
  }
  const archive = path.join(dataDir, 'siem/audit.jsonl');
  const firstRun = fs.readFileSync(archive, 'utf8').trim().split('\n');
  // Restart: the file sink resumes from its cursor and does not send the old records again.
  gw = await startTestGateway(config, { dataDir });
  try {
    await httpRequest(`${gw.url}/ok`);
  } finally {
    await gw.close();
  }
  const all = fs
    .readFileSync(archive, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { seq: number });
  assert.ok(all.length > firstRun.length);
  assert.deepEqual(
    all.map((r) => r.seq),
    all.map((_, i) => i + 1),
    'contiguous, no repeats after restart',
  );
  const v = verifyJournal(path.join(dataDir, 'audit'), loadPublicKey(path.join(dataDir, 'audit')));
  assert.equal(v.ok, true, v.problem?.message);
  fs.rmSync(dataDir, { recursive: true, force: true });
  fs.rmSync(certDir, { recursive: true, force: true });
});

test('tracing: off creates nothing; on exports a server span under the incoming trace', async () => {
  const receiver = await startReceiver();
  const routes = [
    { name: 'ok', match: { path: '/ok' }, policies: [{ 'static-response': { status: 200, body: 'ok' } }] },
  ];
  const off = await startTestGateway({ routes });
  await httpRequest(`${off.url}/ok`, {
    headers: { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' },
  });
  await off.close();
  assert.equal(receiver.state.records.length, 0);
  const on = await startTestGateway({
    routes,
    audit: { tracing: { enabled: true, endpoint: `${receiver.url}/v1/traces` } },
  });
  try {
    // A provider call made on behalf of the request becomes a child span of the request's span.
    on.gateway.services.events.emit({
      type: 'provider.call',
      requestId: 'traced-1',
      outcome: 'ok',
      data: { provider: 'didit', latency_ms: 7 },
    });
    await httpRequest(`${on.url}/ok`, {
      headers: { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', 'x-request-id': 'traced-1' },
    });
  } finally {
    await on.close(); // shutdown flushes the batch processor
  }
  await receiver.until(() => receiver.state.records.length > 0, 5000);
  const body = String(receiver.state.records[0]!.otlp);
  assert.match(body, /4bf92f3577b34da6a3ce929d0e0e4736/);
  assert.match(body, /GET ok/);
  const spans = (
    JSON.parse(body) as {
      resourceSpans: Array<{
        scopeSpans: Array<{ spans: Array<{ name: string; traceId: string; spanId: string; parentSpanId?: string }> }>;
      }>;
    }
  ).resourceSpans.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans));
  const server = spans.find((s) => s.name === 'GET ok')!;
  const provider = spans.find((s) => s.name === 'provider didit')!;
  assert.equal(server.parentSpanId, '00f067aa0ba902b7');
  assert.equal(provider.parentSpanId, server.spanId);
  assert.equal(provider.traceId, server.traceId);
  await receiver.close();
});
