/**
 * The sandbox as a Didit stand-in: API answers shaped like Didit's, the hosted page (escaping, validation), webhook
 * retry rules, and durable sessions and deliveries that survive a restart (SQLite and PostgreSQL).
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { SandboxServer, type SandboxStartOptions } from './sandbox-server.js';
import type { DeliveryOutcome } from './webhooks.js';
import { SqliteStore } from '../../store/sqlite.js';
import type { Store } from '../../store/store.js';
import { verifyDiditWebhook } from '../didit/signature.js';
import { httpRequest } from '../../../testing/harness.js';
import { freshPostgresStore } from '../../../testing/services.js';
import { startWebhookReceiver } from '../../../testing/webhook-receiver.js';

const API_KEY = 'sbx_' + randomUUID();
const SECRET = 'whsec_' + randomUUID();
const WORKFLOW = '0b6f2f7e-3c1d-4a5b-9e8f-7a6b5c4d3e2f';

function outcomesCollector() {
  const outcomes: DeliveryOutcome[] = [];
  const waiters = new Set<() => void>();
  return {
    outcomes,
    onDelivery(o: DeliveryOutcome) {
      outcomes.push(o);
      for (const w of waiters) w();
    },
    waitFor(count: number): Promise<DeliveryOutcome[]> {
      return new Promise((resolve) => {
        const check = () => {
          if (outcomes.length < count) return;
          waiters.delete(check);
          resolve(outcomes.slice());
        };
        waiters.add(check);
        check();
      });
    },
  };
}

async function startSandbox(t: TestContext, options: Partial<SandboxStartOptions> = {}) {
  const sandbox = await new SandboxServer().start({
    apiKey: API_KEY,
    webhookSecret: SECRET,
    retryDelaysMs: [10, 10],
    ...options,
  });
  t.after(() => sandbox.close());
  return sandbox;
}

function api(base: string, method: string, route: string, body?: unknown, key = API_KEY) {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (key) headers['x-api-key'] = key;
  return httpRequest(base + route, {
    method,
    headers,
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
}

async function deadUrl(): Promise<string> {
  const server = http.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((r) => server.close(() => r()));
  return `http://127.0.0.1:${port}/webhooks/didit`;
}

test("API: key checks, validation errors and answers shaped like Didit's", async (t) => {
  const sandbox = await startSandbox(t);
  const missing = await api(sandbox.url, 'POST', '/v3/session/', { workflow_id: WORKFLOW }, '');
  assert.equal(missing.status, 401);
  assert.deepEqual(JSON.parse(missing.body), { detail: 'Invalid or missing API key' });
  assert.equal((await api(sandbox.url, 'POST', '/v3/session/', { workflow_id: WORKFLOW }, 'nope')).status, 401);

  const invalid = await api(sandbox.url, 'POST', '/v3/session/', {
    vendor_data: 'x',
    callback: 'javascript:alert(1)',
    expected_details: { expected_document_types: ['ID', 'XX'] },
  });
  assert.equal(invalid.status, 400);
  assert.deepEqual(Object.keys(JSON.parse(invalid.body)).sort(), ['callback', 'expected_details', 'workflow_id']);
  assert.equal((await api(sandbox.url, 'POST', '/v3/session/', '{not json')).status, 400);
  assert.equal((await api(sandbox.url, 'POST', '/v3/session/', [1])).status, 400);
  assert.equal((await api(sandbox.url, 'GET', '/v3/session/')).status, 405);
  assert.equal((await api(sandbox.url, 'GET', '/v3/nothing/')).status, 404);

  const created = await api(sandbox.url, 'POST', '/v3/session/', {
    workflow_id: WORKFLOW,
    vendor_data: 'u-1',
    callback: 'https://app.example/cb',
    metadata: { a: 1 },
  });
  assert.equal(created.status, 201);
  const doc = JSON.parse(created.body) as Record<string, unknown>;
  assert.deepEqual(Object.keys(doc).sort(), [
    'callback',
    'metadata',
    'session_id',
    'session_kind',
    'session_number',
    'session_token',
    'status',
    'url',
    'vendor_data',
    'workflow_id',
    'workflow_version',
  ]);
  assert.match(String(doc.session_id), /^[0-9a-f-]{36}$/);
  assert.equal(doc.url, `${sandbox.url}/verify/${String(doc.session_token)}`);
  assert.equal(doc.status, 'Not Started');
  assert.equal(doc.session_kind, 'user');
  assert.equal(doc.session_number, 1);

  const reused = await api(sandbox.url, 'POST', '/v3/session/', {
    workflow_id: WORKFLOW,
    vendor_data: 'u-1',
    callback: 'https://app.example/cb2',
    metadata: { a: 2 },
  });
  assert.equal(reused.status, 201);
  const reusedDoc = JSON.parse(reused.body) as Record<string, unknown>;
  assert.equal(reusedDoc.session_id, doc.session_id);
  assert.equal(reusedDoc.callback, 'https://app.example/cb2', 'reuse updates the callback');
  assert.deepEqual(reusedDoc.metadata, { a: 2 }, 'and the metadata');

  const decision = await api(sandbox.url, 'GET', `/v3/session/${String(doc.session_id)}/decision/`);
  assert.equal(decision.status, 200);
  const d = JSON.parse(decision.body) as Record<string, unknown>;
  assert.equal(d.status, 'Not Started');
  assert.equal(d.environment, 'sandbox');
  for (const list of [
    'id_verifications',
    'liveness_checks',
    'face_matches',
    'aml_screenings',
    'nfc_verifications',
    'poa_verifications',
    'ip_analyses',
  ])
    assert.equal(d[list], null, `${list} is null until run`);

  const badStatus = await api(sandbox.url, 'PATCH', `/v3/session/${String(doc.session_id)}/update-status/`, {
    new_status: 'Whatever',
  });
  assert.equal(badStatus.status, 400);
  assert.equal(
    (await api(sandbox.url, 'PATCH', `/v3/session/${randomUUID()}/update-status/`, { new_status: 'Approved' })).status,
    404,
  );
  const approved = await api(sandbox.url, 'PATCH', `/v3/session/${String(doc.session_id)}/update-status/`, {
    new_status: 'Approved',
  });
  assert.equal(approved.status, 200);
  const after = JSON.parse(
    (await api(sandbox.url, 'GET', `/v3/session/${String(doc.session_id)}/decision/`)).body,
  ) as Record<string, unknown>;
  assert.equal(after.status, 'Approved');
  const idv = (after.id_verifications as Array<Record<string, unknown>>)[0]!;
  for (const field of ['first_name', 'last_name', 'date_of_birth', 'front_image', 'portrait_image'])
    assert.ok(idv[field], field);
  assert.match(String(idv.front_image), /^http:\/\/127\.0\.0\.1:\d+\/media\//);
  assert.equal(typeof (after.liveness_checks as Array<Record<string, unknown>>)[0]!.score, 'number');
  assert.equal((after.reviews as unknown[]).length, 1);

  sandbox.rateLimitNext(1, 3);
  const rateLimited = await api(sandbox.url, 'GET', `/v3/session/${String(doc.session_id)}/decision/`);
  assert.equal(rateLimited.status, 429);
  assert.equal(rateLimited.headers['retry-after'], '3');
  assert.equal(rateLimited.headers['x-ratelimit-remaining'], '0');
  assert.equal(
    (await api(sandbox.url, 'GET', `/v3/session/${String(doc.session_id)}/decision/`)).status,
    200,
    'only the next call was limited',
  );
});

test('hosted page: escapes what it echoes, validates the form, HEAD has no side effect, unknown links 404', async (t) => {
  const receiver = await startWebhookReceiver();
  t.after(() => receiver.close());
  const sandbox = await startSandbox(t, { webhookUrl: receiver.url });
  const created = JSON.parse(
    (await api(sandbox.url, 'POST', '/v3/session/', { workflow_id: WORKFLOW, vendor_data: 'page' })).body,
  ) as { url: string; session_id: string };

  const head = await httpRequest(created.url, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(sandbox.sessions.get(created.session_id)!.status, 'Not Started', 'HEAD does not start the verification');

  const page = await httpRequest(created.url);
  assert.match(page.body, /<html lang="en">/);
  for (const id of ['first_name', 'last_name', 'date_of_birth'])
    assert.match(page.body, new RegExp(`<label for="${id}">`));
  assert.equal(page.headers['x-frame-options'], 'DENY');
  assert.equal(page.headers['cache-control'], 'no-store');
  assert.equal(sandbox.sessions.get(created.session_id)!.status, 'In Progress');

  const xss = '<script>alert("x")</script>&\'';
  const bad = await httpRequest(created.url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      decision: 'maybe',
      first_name: xss,
      last_name: 'L',
      date_of_birth: '1990-01-01',
    }).toString(),
  });
  assert.equal(bad.status, 400);
  assert.ok(!bad.body.includes('<script>'), 'form input is escaped');
  assert.ok(bad.body.includes('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;'));
  assert.match(bad.body, /role="alert"/);

  const future = await httpRequest(created.url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: 'decision=approved&first_name=A&last_name=B&date_of_birth=2999-01-01',
  });
  assert.equal(future.status, 400);
  const impossible = await httpRequest(created.url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: 'decision=approved&first_name=A&last_name=B&date_of_birth=1990-02-30',
  });
  assert.equal(impossible.status, 400);
  const json = await httpRequest(created.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"decision":"approved"}',
  });
  assert.equal(json.status, 415);
  assert.equal(sandbox.sessions.get(created.session_id)!.status, 'In Progress', 'refused submissions change nothing');

  assert.equal((await httpRequest(`${sandbox.url}/verify/unknown-token`)).status, 404);
  assert.equal((await httpRequest(created.url, { method: 'DELETE' })).status, 405);

  const ok = await httpRequest(created.url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: 'decision=approved',
  });
  assert.equal(ok.status, 200);
  assert.match(ok.body, /You can close this page/, 'without a callback there is no continue link');
  const [w] = await receiver.waitFor(1, (x) => x.json.status === 'Approved');
  assert.equal(verifyDiditWebhook(w!.body, w!.headers, { secret: SECRET }).ok, true);
});

test('webhook delivery: 404 and 5xx are retried until the delays run out, other 4xx are not retried', async (t) => {
  const receiver = await startWebhookReceiver([404, 503, 502, 400]);
  t.after(() => receiver.close());
  const collected = outcomesCollector();
  const sandbox = await startSandbox(t, {
    webhookUrl: receiver.url,
    retryDelaysMs: [10, 10],
    onDelivery: collected.onDelivery,
  });
  const a = JSON.parse(
    (await api(sandbox.url, 'POST', '/v3/session/', { workflow_id: WORKFLOW, vendor_data: 'a' })).body,
  ) as { session_id: string };
  await api(sandbox.url, 'PATCH', `/v3/session/${a.session_id}/update-status/`, { new_status: 'Declined' });
  const first = await collected.waitFor(3);
  assert.deepEqual(
    first.map((o) => [o.attempt, o.status, o.final]),
    [
      [1, 404, 'retrying'],
      [2, 503, 'retrying'],
      [3, 502, 'failed'],
    ],
  );
  const b = JSON.parse(
    (await api(sandbox.url, 'POST', '/v3/session/', { workflow_id: WORKFLOW, vendor_data: 'b' })).body,
  ) as { session_id: string };
  await api(sandbox.url, 'PATCH', `/v3/session/${b.session_id}/update-status/`, { new_status: 'Approved' });
  const second = await collected.waitFor(4);
  assert.deepEqual([second[3]!.attempt, second[3]!.status, second[3]!.final], [1, 400, 'failed']);
  assert.equal(receiver.received.length, 4);
  assert.equal(
    new Set(receiver.received.slice(0, 3).map((w) => w.json.event_id)).size,
    1,
    'retries carry the same event_id',
  );
  assert.equal(sandbox.pendingDeliveries, 0);
});

async function sqliteStore(t: TestContext): Promise<Store> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kycgate-sandbox-'));
  const store = new SqliteStore(path.join(dir, 'db.sqlite'));
  t.after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return store;
}

for (const [engine, makeStore] of [
  ['sqlite', sqliteStore],
  ['postgres', freshPostgresStore],
] as const) {
  test(`restart (${engine}): sessions survive and an undelivered webhook is delivered by the next run`, async (t) => {
    const store = await makeStore(t);
    if (!store) return;
    const collected = outcomesCollector();
    const first = await new SandboxServer().start({
      apiKey: API_KEY,
      webhookSecret: SECRET,
      webhookUrl: await deadUrl(),
      retryDelaysMs: [3_600_000],
      store,
      onDelivery: collected.onDelivery,
    });
    const created = JSON.parse(
      (await api(first.url, 'POST', '/v3/session/', { workflow_id: WORKFLOW, vendor_data: 'durable' })).body,
    ) as { session_id: string; session_number: number };
    await api(first.url, 'PATCH', `/v3/session/${created.session_id}/update-status/`, { new_status: 'Approved' });
    const [failed] = await collected.waitFor(1);
    assert.equal(failed!.final, 'retrying');
    assert.ok(failed!.error, 'the receiver was down');
    await first.close();

    const receiver = await startWebhookReceiver();
    t.after(() => receiver.close());
    const second = await new SandboxServer().start({
      apiKey: API_KEY,
      webhookSecret: SECRET,
      webhookUrl: receiver.url,
      retryDelaysMs: [10],
      store,
    });
    t.after(() => second.close());
    const [delivered] = await receiver.waitFor(1);
    assert.equal(delivered!.json.event_id, failed!.eventId, 'the same event, resumed after the restart');
    assert.equal(delivered!.json.session_id, created.session_id);
    assert.equal(
      verifyDiditWebhook(delivered!.body, delivered!.headers, { secret: SECRET }).ok,
      true,
      'a resumed delivery is re-stamped and fresh',
    );
    const decision = JSON.parse(
      (await api(second.url, 'GET', `/v3/session/${created.session_id}/decision/`)).body,
    ) as Record<string, unknown>;
    assert.equal(decision.status, 'Approved');
    const next = JSON.parse(
      (await api(second.url, 'POST', '/v3/session/', { workflow_id: WORKFLOW, vendor_data: 'another' })).body,
    ) as { session_number: number };
    assert.equal(next.session_number, created.session_number + 1);
  });
}

test('webhooks of one session are delivered one after the other, in the order of its status changes', async (t) => {
  const log: string[] = [];
  const receiver = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const status = String((JSON.parse(Buffer.concat(chunks).toString('utf8')) as { status: string }).status);
      log.push(`received ${status}`);
      // the first answer is slow: a later event must not overtake it
      setTimeout(
        () => {
          log.push(`answered ${status}`);
          res.end('ok');
        },
        status === 'In Progress' ? 150 : 0,
      );
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
  t.after(() => {
    receiver.closeAllConnections();
    receiver.close();
  });
  const collected = outcomesCollector();
  const sandbox = await startSandbox(t, {
    webhookUrl: `http://127.0.0.1:${(receiver.address() as net.AddressInfo).port}/`,
    onDelivery: collected.onDelivery,
  });
  const created = JSON.parse(
    (await api(sandbox.url, 'POST', '/v3/session/', { workflow_id: WORKFLOW, vendor_data: 'order' })).body,
  ) as { url: string };
  await httpRequest(created.url);
  await httpRequest(created.url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: 'decision=approved',
  });
  await collected.waitFor(2);
  assert.deepEqual(log, ['received In Progress', 'answered In Progress', 'received Approved', 'answered Approved']);
});
