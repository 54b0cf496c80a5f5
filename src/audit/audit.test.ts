/**
 * The audit subsystem through a real gateway: records for requests, refusals and events, secret hygiene across
 * logs, journal and exports, a SIEM sink that is down for a while under load, metrics and tracing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import { startTestGateway, startUpstream, httpRequest, rawRequest } from '../../testing/harness.js';
import { startReceiver } from '../../testing/siem-receiver.js';
import { verifyJournal, loadPublicKey, journalLines } from './verify.js';
import { exportRecords } from './export.js';

function tmp(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'kycgate-audit-gw-'));
}

const SECRETS = {
  apiKey: 'kgk_live_9f8e7d6c5b4a39281706f5e4d3c2b1a0',
  bearer: 'eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LWJlYXJlci10b2tlbi12YWx1ZQ.Zm9v',
  cookie: 'session=sess_5c1a7e2b9d4f8e3a6b0c',
  sinkAuth: 'Bearer sink-secret-4e1d9a7c3b5f2e8d',
  webhookSecret: 'whsec_0a1b2c3d4e5f6a7b8c9d0e1f',
  name: 'Jane Quintessa Public',
  birth: '1984-07-23',
};

test('audit on: every request, refusal and event recorded; no secret or PII in logs, journal or exports', async () => {
  const dataDir = tmp();
  const receiver = await startReceiver();
  process.env.KYCGATE_TEST_SINK_AUTH = SECRETS.sinkAuth;
  process.env.KYCGATE_TEST_WEBHOOK_SECRET = SECRETS.webhookSecret;
  const upstream = await startUpstream((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'text/plain', 'set-cookie': SECRETS.cookie }).end('ok'));
  });
  const gw = await startTestGateway(
    {
      upstreams: { app: { targets: [{ url: upstream.url }] } },
      routes: [
        {
          name: 'kyc-api',
          match: { prefix: '/api' },
          upstream: 'app',
          policies: [{ 'request-headers': { response_set: { 'x-served-by': 'kycgate' } } }, { audit: {} }],
        },
      ],
      audit: {
        enabled: true,
        group_commit_ms: 5,
        request_headers: [
          'user-agent',
          'authorization',
          'x-api-key',
          'cookie',
          'proxy-authorization',
          'x-customer-name',
        ],
        response_headers: ['x-served-by', 'set-cookie'],
        redact_headers: ['x-customer-name'],
        sinks: [
          {
            name: 'siem',
            type: 'http',
            url: `${receiver.url}/ingest`,
            authorization: { env: 'KYCGATE_TEST_SINK_AUTH' },
            retry_initial_ms: 50,
          },
        ],
      },
    },
    { dataDir },
  );
  try {
    const headers = {
      'x-api-key': SECRETS.apiKey,
      authorization: `Bearer ${SECRETS.bearer}`,
      cookie: SECRETS.cookie,
      'proxy-authorization': `Basic ${Buffer.from('u:' + SECRETS.apiKey).toString('base64')}`,
      'x-customer-name': SECRETS.name,
      'user-agent': 'audit-test/1',
      traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      'content-type': 'application/json',
    };
    for (let i = 0; i < 5; i++) {
      const r = await httpRequest(`${gw.url}/api/customers?name=x`, {
        method: 'POST',
        headers: { ...headers, 'x-request-id': `req-${i}` },
        body: JSON.stringify({ name: SECRETS.name, birth_date: SECRETS.birth }),
      });
      assert.equal(r.status, 200);
    }
    assert.equal((await httpRequest(`${gw.url}/nowhere`, { headers })).status, 404);
    await rawRequest(gw.port, 'GET ftp://example/x HTTP/1.1\r\nHost: a\r\n\r\n', 500);
    // Events as other subsystems emit them; a careless emitter's secret-looking fields are scrubbed too.
    gw.gateway.services.events.emit({
      type: 'auth.failure',
      requestId: 'req-x',
      route: 'kyc-api',
      outcome: 'invalid_api_key',
      data: { credential_prefix: 'kgk_live', api_key: SECRETS.apiKey },
    });
    gw.gateway.services.events.emit({
      type: 'webhook.refused',
      route: 'webhooks',
      outcome: 'invalid_signature',
      data: { provider: 'didit', signature: SECRETS.webhookSecret },
    });
    await receiver.until(() => receiver.state.records.some((r) => r.type === 'webhook.refused'));
  } finally {
    await gw.close();
    await upstream.close();
  }
  await receiver.close();

  const auditDir = path.join(dataDir, 'audit');
  const result = verifyJournal(auditDir, loadPublicKey(auditDir));
  assert.equal(result.ok, true, result.problem?.message);
  const records = [...journalLines(auditDir)].map((l) => JSON.parse(l.line) as Record<string, any>);
  const requests = records.filter((r) => r.type === 'http.request');
  assert.equal(requests.length, 5);
  const first = requests.find((r) => r.request_id === 'req-0')!;
  assert.equal(first.trace_id, '4bf92f3577b34da6a3ce929d0e0e4736');
  assert.equal(first.route, 'kyc-api');
  assert.equal(first.listener, 'main');
  assert.equal(first.status, 200);
  assert.equal(first.client_ip, '127.0.0.1');
  assert.equal(first.upstream?.startsWith('http://127.0.0.1:'), true);
  assert.equal(typeof first.latency_ms, 'number');
  assert.equal(first.request_headers['user-agent'], 'audit-test/1');
  for (const h of ['authorization', 'x-api-key', 'cookie', 'proxy-authorization', 'x-customer-name'])
    assert.equal(first.request_headers[h], '[redacted]', h);
  assert.equal(first.response_headers['x-served-by'], 'kycgate');
  assert.equal(
    first.response_headers['set-cookie'],
    '[redacted]',
    'upstream Set-Cookie seen through the audit policy, redacted',
  );
  const refused = records.filter((r) => r.kind === 'refused');
  assert.deepEqual(refused.map((r) => r.problem).sort(), ['invalid-path', 'not-found']);
  assert.equal(records.find((r) => r.type === 'auth.failure')!.data.api_key, '[redacted]');
  assert.equal(records.find((r) => r.type === 'auth.failure')!.outcome, 'invalid_api_key');
  // Ids unique and sortable in journal order.
  const ids = records.map((r) => r.id as string);
  assert.equal(new Set(ids).size, ids.length);
  assert.deepEqual([...ids].sort(), ids);
  // Sink got everything, in order, with its Authorization header (the secret is for the receiver only).
  assert.deepEqual(
    receiver.state.records.map((r) => r.seq),
    records.map((r) => r.seq),
  );
  assert.ok(receiver.state.authorization.every((a) => a === SECRETS.sinkAuth));

  // Hygiene: not one planted value anywhere we write.
  const haystacks: Array<[string, string]> = [
    ['logs', JSON.stringify(gw.logs)],
    ['journal', [...journalLines(auditDir)].map((l) => l.line).join('\n')],
    ['checkpoints', fs.readFileSync(path.join(auditDir, 'checkpoints.jsonl'), 'utf8')],
    ['export jsonl', [...exportRecords(auditDir, { format: 'jsonl', version: '0' })].join('\n')],
    ['export cef', [...exportRecords(auditDir, { format: 'cef', version: '0' })].join('\n')],
    ['sink', JSON.stringify(receiver.state.records)],
  ];
  const planted = [
    SECRETS.apiKey,
    SECRETS.bearer,
    SECRETS.cookie,
    'sess_5c1a7e2b9d4f8e3a6b0c',
    SECRETS.sinkAuth,
    'sink-secret-4e1d9a7c3b5f2e8d',
    SECRETS.webhookSecret,
    SECRETS.name,
    'Quintessa',
    SECRETS.birth,
    Buffer.from('u:' + SECRETS.apiKey).toString('base64'),
  ];
  for (const [where, text] of haystacks) {
    assert.ok(text.length > 100, `${where} is not empty`);
    for (const secret of planted)
      assert.ok(!text.includes(secret), `${where} contains a planted secret or PII value (${secret.slice(0, 6)}...)`);
  }
  fs.rmSync(dataDir, { recursive: true, force: true });
});

test('a sink down for a while under load: every record delivered after it returns, in order, unique ids', async () => {
  const dataDir = tmp();
  const receiver = await startReceiver();
  receiver.state.failing = true;
  const gw = await startTestGateway(
    {
      routes: [
        { name: 'static', match: { path: '/s' }, policies: [{ 'static-response': { status: 200, body: 'ok' } }] },
      ],
      audit: {
        enabled: true,
        disk_alarm_bytes: 100000,
        sinks: [
          {
            name: 'siem',
            type: 'http',
            url: `${receiver.url}/ingest`,
            batch_records: 200,
            retry_initial_ms: 100,
            retry_max_ms: 800,
          },
        ],
      },
    },
    { dataDir },
  );
  let sent = 0;
  try {
    // Load for about 3 s while the receiver refuses everything (the 60 s outage runs the same retry loop, longer).
    const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
    const started = Date.now();
    while (Date.now() - started < 3000) {
      await Promise.all(
        Array.from({ length: 8 }, () => httpRequest(`${gw.url}/s`, { agent }).then((r) => assert.equal(r.status, 200))),
      );
      sent += 8;
    }
    agent.destroy();
    const metricsDown = await httpRequest(`${gw.adminUrl}/metrics`);
    const backlog = Number(/kycgate_audit_backlog_records\{sink="siem"\} (\d+)/.exec(metricsDown.body)?.[1]);
    const pending = Number(/kycgate_audit_records_pending (\d+)/.exec(metricsDown.body)?.[1]);
    assert.ok(backlog + pending >= sent, `backlog ${backlog} + pending ${pending} while down, ${sent} sent`);
    assert.match(metricsDown.body, /kycgate_audit_sink_up\{sink="siem"\} 0/);
    // The journal backs up on disk past the alarm threshold: metric and an error log, not silence.
    assert.match(metricsDown.body, /kycgate_audit_disk_alarm 1/);
    assert.ok(gw.logs.some((l) => l.level === 50 && String(l.msg).includes('disk usage over the alarm threshold')));
    assert.ok(gw.logs.some((l) => l.level === 40 && String(l.msg).includes('audit sink delivery failed')));
    assert.equal(receiver.state.records.length, 0);
    receiver.state.failing = false;
    await receiver.until(() => receiver.state.records.filter((r) => r.type === 'http.request').length >= sent, 20000);
    const metricsUp = await httpRequest(`${gw.adminUrl}/metrics`);
    assert.match(metricsUp.body, /kycgate_audit_sink_up\{sink="siem"\} 1/);
  } finally {
    await gw.close();
  }
  await receiver.close();
  const auditDir = path.join(dataDir, 'audit');
  const journal = [...journalLines(auditDir)].map((l) => JSON.parse(l.line) as { seq: number; id: string });
  // At least once: de-duplicate by id, then it must be exactly the journal, in journal order.
  const seen = new Set<string>();
  const delivered = receiver.state.records.filter((r) => {
    if (seen.has(r.id as string)) return false;
    seen.add(r.id as string);
    return true;
  });
  const deliveredSeqs = delivered.map((r) => r.seq as number);
  assert.deepEqual(
    deliveredSeqs,
    journal.slice(0, deliveredSeqs.length).map((r) => r.seq),
  );
  assert.ok(delivered.filter((r) => r.type === 'http.request').length === sent, `${sent} requests delivered`);
  fs.rmSync(dataDir, { recursive: true, force: true });
});

test('a sink receiver that refuses: 413 shrinks the batches until they pass; a refused credential is an error log until fixed', async () => {
  const dataDir = tmp();
  const receiver = await startReceiver();
  receiver.state.maxBatch = 3;
  receiver.state.refuse = 401;
  const gw = await startTestGateway(
    {
      routes: [
        { name: 'static', match: { path: '/s' }, policies: [{ 'static-response': { status: 200, body: 'ok' } }] },
      ],
      audit: {
        enabled: true,
        sinks: [
          {
            name: 'siem',
            type: 'http',
            url: `${receiver.url}/ingest`,
            batch_records: 50,
            retry_initial_ms: 20,
            retry_max_ms: 100,
          },
        ],
      },
    },
    { dataDir },
  );
  try {
    for (let i = 0; i < 12; i++) assert.equal((await httpRequest(`${gw.url}/s`)).status, 200);
    await receiver.until(
      () =>
        gw.logs.some(
          (l) => l.level === 50 && String(l.msg).includes('receiver refuses deliveries') && l.status === 401,
        ),
      5000,
    );
    assert.equal(receiver.state.records.length, 0);
    receiver.state.refuse = undefined;
    await receiver.until(() => receiver.state.records.filter((r) => r.type === 'http.request').length >= 12);
    assert.ok(
      receiver.state.largest <= 3,
      `no batch over the receiver's limit was accepted (largest ${receiver.state.largest})`,
    );
    assert.equal(
      receiver.state.tooLargeAfterAccepted,
      0,
      'once a size passes, the sink does not grow back into refusals',
    );
    assert.ok(gw.logs.some((l) => l.level === 40 && String(l.msg).includes('refused the batch size')));
    const seqs = receiver.state.records.map((r) => r.seq as number);
    assert.deepEqual(
      seqs,
      [...seqs].sort((a, b) => a - b),
      'delivered in journal order',
    );
  } finally {
    await gw.close();
    await receiver.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});
