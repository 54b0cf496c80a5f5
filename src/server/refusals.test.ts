/**
 * Every refusal is on record: requests refused at the edge (framing Node's parser rejects, a bad Host, an ambiguous
 * path, an unknown route) carry `instance` and `x-request-id`, count in kycgate_requests_total with their problem
 * type, appear in the access log and in the audit journal. A client that goes away is recorded as 499 (client
 * closed request), never as a gateway or upstream failure.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import os from 'node:os';
import { mkdtempSync, rmSync } from 'node:fs';
import { startTestGateway, startUpstream, rawRequest, statusOf, httpRequest } from '../../testing/harness.js';
import { journalLines } from '../audit/verify.js';
import type { RequestContext } from '../pipeline/context.js';

const REFUSALS: Array<[string, string, string]> = [
  [
    'CL and TE',
    'POST /open/x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    'ambiguous-request',
  ],
  ['bad Host', 'GET /open/x HTTP/1.1\r\nHost: a.example:443@evil.example\r\nConnection: close\r\n\r\n', 'bad-request'],
  ['ambiguous path', 'GET /open/..;/admin HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n', 'ambiguous-path'],
  [
    'duplicate Authorization',
    'GET /open/x HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer a\r\nAuthorization: Bearer b\r\n\r\n',
    'ambiguous-request',
  ],
  ['header too large', `GET /open/x HTTP/1.1\r\nHost: a\r\nX-Big: ${'b'.repeat(20_000)}\r\n\r\n`, 'headers-too-large'],
  ['garbage', 'HELLO THERE\r\n\r\n', 'bad-request'],
];

function metric(text: string, labels: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`kycgate_requests_total{${labels}} `));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

test('edge refusals carry instance and x-request-id, and are counted, logged and audited', async (t) => {
  const upstream = await startUpstream((_req, res) => res.end('ok'));
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'kycgate-refusals-'));
  const gw = await startTestGateway(
    {
      upstreams: { app: { targets: [{ url: upstream.url }] } },
      routes: [{ name: 'open', match: { prefix: '/open' }, upstream: 'app' }],
      audit: { enabled: true },
    },
    { dataDir },
  );
  let closed = false;
  t.after(async () => {
    if (!closed) await gw.close();
    await upstream.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  const ids = new Map<string, string>();
  for (const [name, payload, kind] of REFUSALS) {
    const answer = await rawRequest(gw.port, payload);
    assert.ok(statusOf(answer) >= 400 && statusOf(answer) < 500, `${name}: ${answer.slice(0, 60)}`);
    const id = /x-request-id: ([^\r\n]+)/i.exec(answer)?.[1];
    assert.ok(id, `${name}: x-request-id header`);
    assert.match(answer, new RegExp(`"type":"https://kycgate\\.dev/problems/${kind}"`), name);
    assert.ok(answer.includes(`"instance":"urn:kycgate:request:${id}"`), `${name}: instance names the request id`);
    ids.set(id, kind);
  }
  assert.equal(upstream.requests, 0);

  const metrics = (await httpRequest(gw.adminUrl + '/metrics')).body;
  assert.equal(
    metric(metrics, 'status_class="4xx",problem="ambiguous-request"'),
    2,
    metrics
      .split('\n')
      .filter((l) => l.startsWith('kycgate_requests_total'))
      .join('\n'),
  );
  assert.equal(metric(metrics, 'status_class="4xx",problem="bad-request"'), 2);
  assert.equal(metric(metrics, 'status_class="4xx",problem="ambiguous-path"'), 1);
  assert.equal(metric(metrics, 'status_class="4xx",problem="headers-too-large"'), 1);

  const logged = gw.logs.filter((l) => l.msg === 'refused').map((l) => l.req_id as string);
  for (const id of ids.keys()) assert.ok(logged.includes(id), `access log line for ${ids.get(id)}`);

  await gw.close();
  closed = true;
  const records = [...journalLines(path.join(dataDir, 'audit'))].map(
    (l) => JSON.parse(l.line) as Record<string, unknown>,
  );
  for (const [id, kind] of ids) {
    const record = records.find((r) => r.request_id === id);
    assert.ok(record, `audit record of the ${kind} refusal`);
    assert.equal(record.type, 'http.refused');
    assert.equal(record.problem, kind);
    assert.equal(record.client_ip, '127.0.0.1');
  }
  assert.equal(records.find((r) => r.problem === 'ambiguous-path')?.method, 'GET');
  assert.equal(
    records.find((r) => r.problem === 'ambiguous-request')?.method,
    'POST',
    'the method of a request the parser refused is read from its first bytes',
  );
});

/** Resolves with the next completed request's context. */
function nextCompletion(gw: Awaited<ReturnType<typeof startTestGateway>>): Promise<RequestContext> {
  return new Promise((resolve) => {
    const unsubscribe = gw.gateway.services.events.subscribe({
      onRequestComplete(ctx) {
        unsubscribe();
        resolve(ctx);
      },
    });
  });
}

test('a client that hangs up before the answer is recorded as 499 client-closed-request, never as a 5xx', async (t) => {
  let arrived!: () => void;
  const upstream = await startUpstream((req) => {
    // Never answers: the client gives up first. A body is read as it comes.
    req.resume();
    arrived();
  });
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'kycgate-refusals-'));
  const gw = await startTestGateway(
    {
      upstreams: {
        app: {
          targets: [{ url: upstream.url }, { url: upstream.url + '/' }],
          passive_health: { consecutive_failures: 1 },
        },
      },
      routes: [{ name: 'open', match: { prefix: '/open' }, upstream: 'app' }],
      audit: { enabled: true },
    },
    { dataDir },
  );
  let closed = false;
  t.after(async () => {
    if (!closed) await gw.close();
    await upstream.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  // 1. Waiting for the upstream's answer.
  let reached = new Promise<void>((r) => (arrived = r));
  let completion = nextCompletion(gw);
  const waiting = net.connect(gw.port, '127.0.0.1', () => waiting.write('GET /open/slow HTTP/1.1\r\nHost: a\r\n\r\n'));
  await reached;
  waiting.destroy();
  const first = await completion;
  assert.equal(first.status, 499);
  assert.equal(first.errorKind, 'client-closed-request');
  assert.equal(first.aborted, true);

  // 2. In the middle of its upload (the request body fails before the response closes).
  reached = new Promise<void>((r) => (arrived = r));
  completion = nextCompletion(gw);
  const uploading = net.connect(gw.port, '127.0.0.1', () =>
    uploading.write('POST /open/upload HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n' + 'x'.repeat(1000)),
  );
  await reached;
  uploading.destroy();
  const second = await completion;
  assert.equal(second.status, 499, `recorded ${second.status} ${second.errorKind}`);
  assert.equal(second.errorKind, 'client-closed-request');

  const metrics = (await httpRequest(gw.adminUrl + '/metrics')).body;
  assert.equal(metric(metrics, 'route="open",status_class="4xx",problem="client-closed-request"'), 2);
  assert.doesNotMatch(metrics, /kycgate_requests_total\{[^}]*status_class="5xx"/, 'no 5xx on record');
  assert.equal(
    metrics.match(/^kycgate_upstream_target_up\{upstream="app",[^}]*\} 1$/gm)?.length,
    2,
    'no target was taken out of rotation',
  );
  const lines = gw.logs.filter((l) => l.msg === 'request');
  assert.deepEqual(
    lines.map((l) => [l.status, l.problem, l.aborted]),
    [
      [499, 'client-closed-request', true],
      [499, 'client-closed-request', true],
    ],
  );

  await gw.close();
  closed = true;
  const records = [...journalLines(path.join(dataDir, 'audit'))]
    .map((l) => JSON.parse(l.line) as Record<string, unknown>)
    .filter((r) => r.type === 'http.request');
  assert.deepEqual(
    records.map((r) => [r.status, r.problem, r.aborted]),
    [
      [499, 'client-closed-request', true],
      [499, 'client-closed-request', true],
    ],
  );
});
