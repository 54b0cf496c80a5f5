/**
 * The Didit adapter end to end against the embedded sandbox, over real sockets: sessions, the hosted page, the
 * signed webhook, decisions, and the failure modes the KYC gate acts on (rejected key, rate limit, outage).
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { randomUUID } from 'node:crypto';
import { DiditProvider, secondsUntil } from './didit.js';
import { SandboxServer, type RunningSandbox, type SandboxStartOptions } from '../sandbox/sandbox-server.js';
import { ProviderRejected, ProviderUnavailable } from '../provider.js';
import { httpRequest } from '../../../testing/harness.js';
import type { DeliveryOutcome } from '../sandbox/webhooks.js';
import { startWebhookReceiver, type WebhookReceiver } from '../../../testing/webhook-receiver.js';

const API_KEY = 'sbx_key_' + randomUUID();
const SECRET = 'sbx_whsec_' + randomUUID();
const WORKFLOW = '5a1f3c2e-7b9d-4e8f-a6c1-0d2e3f4a5b6c';

async function setup(t: TestContext, answers: number[] = [], sandboxOptions: Partial<SandboxStartOptions> = {}) {
  const receiver = await startWebhookReceiver(answers);
  const outcomes: DeliveryOutcome[] = [];
  const outcomeWaiters = new Set<() => void>();
  const sandbox = await new SandboxServer().start({
    apiKey: API_KEY,
    webhookSecret: SECRET,
    webhookUrl: receiver.url,
    retryDelaysMs: [20, 20],
    onDelivery: (o) => {
      outcomes.push(o);
      for (const w of outcomeWaiters) w();
    },
    ...sandboxOptions,
  });
  /** Resolves once `count` delivery attempts have been recorded by the sandbox. */
  const deliveryOutcomes = (count: number) =>
    new Promise<DeliveryOutcome[]>((resolve) => {
      const check = () => {
        if (outcomes.length < count) return;
        outcomeWaiters.delete(check);
        resolve(outcomes.slice());
      };
      outcomeWaiters.add(check);
      check();
    });
  const clock = { offsetMs: 0 };
  const provider = new DiditProvider({
    baseUrl: sandbox.url,
    apiKey: API_KEY,
    webhookSecret: SECRET,
    now: () => Date.now() + clock.offsetMs,
  });
  t.after(async () => {
    await provider.close();
    await sandbox.close();
    await receiver.close();
  });
  return { receiver, sandbox, provider, clock, deliveryOutcomes };
}

function postForm(url: string, fields: Record<string, string>) {
  return httpRequest(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields).toString(),
  });
}

const withStatus = (status: string) => (w: { json: Record<string, unknown> }) => w.json.status === status;

test('session, hosted page, signed webhook and decision: the whole flow through the adapter', async (t) => {
  const { receiver, sandbox, provider } = await setup(t);
  const session = await provider.createSession({
    workflowId: WORKFLOW,
    vendorData: 'subj-1',
    callback: 'https://app.example/kyc/done?x=1',
    metadata: { plan: 'pro' },
  });
  assert.equal(session.status, 'Not Started');
  assert.equal(session.state, 'pending');
  assert.equal(session.workflowId, WORKFLOW);
  assert.equal(session.vendorData, 'subj-1');
  assert.ok(session.url.startsWith(`${sandbox.url}/verify/`), session.url);

  const again = await provider.createSession({ workflowId: WORKFLOW, vendorData: 'subj-1' });
  assert.equal(again.sessionId, session.sessionId, 'an unfinished session for the same subject and workflow is reused');
  const other = await provider.createSession({ workflowId: WORKFLOW, vendorData: 'subj-2' });
  assert.notEqual(other.sessionId, session.sessionId);

  const page = await httpRequest(session.url);
  assert.equal(page.status, 200);
  assert.match(String(page.headers['content-type']), /^text\/html/);
  assert.match(String(page.headers['content-security-policy']), /default-src 'none'/);
  assert.ok(page.body.includes(session.sessionId));
  for (const value of ['approved', 'declined', 'in_review'])
    assert.match(page.body, new RegExp(`<button[^>]*name="decision" value="${value}"`));
  const [inProgress] = await receiver.waitFor(1, withStatus('In Progress'));
  assert.equal(inProgress!.json.decision, undefined, 'In Progress carries no decision');

  const result = await postForm(session.url, {
    decision: 'approved',
    first_name: 'José',
    last_name: 'Müller-Ünlü',
    date_of_birth: '1990-05-17',
  });
  assert.equal(result.status, 200);
  assert.match(result.body, /Verification approved/);
  const continueUrl = new URL(/id="continue" href="([^"]+)"/.exec(result.body)![1]!.replaceAll('&amp;', '&'));
  assert.equal(continueUrl.origin + continueUrl.pathname, 'https://app.example/kyc/done');
  assert.equal(continueUrl.searchParams.get('x'), '1');
  assert.equal(continueUrl.searchParams.get('verificationSessionId'), session.sessionId);
  assert.equal(continueUrl.searchParams.get('status'), 'Approved');

  const [approved] = await receiver.waitFor(1, withStatus('Approved'));
  const h = approved!.headers;
  assert.equal(h['user-agent'], 'DiditWebhook/2.0 +https://didit.me');
  assert.equal(h['content-type'], 'application/json');
  assert.equal(h['x-timestamp'], String(approved!.json.timestamp));
  for (const name of ['x-signature', 'x-signature-v2', 'x-signature-simple'])
    assert.match(String(h[name]), /^[0-9a-f]{64}$/);
  const bodyText = approved!.body.toString('utf8');
  assert.ok(/^[\x20-\x7e]+$/.test(bodyText), 'the body is ASCII: non-ASCII is escaped as \\uXXXX');
  assert.ok(bodyText.includes('Jos\\u00e9'));
  assert.notEqual(h['x-signature'], h['x-signature-v2'], 'non-ASCII content makes V2 differ from the raw signature');
  assert.equal(approved!.json.environment, 'sandbox');
  assert.equal(approved!.json.vendor_data, 'subj-1');
  assert.deepEqual(approved!.json.metadata, { plan: 'pro' });

  const verified = provider.verifyWebhook(approved!.body, h);
  assert.equal(verified.ok, true, JSON.stringify(verified));
  if (!verified.ok) return;
  assert.equal(verified.event.signature, 'v2');
  assert.equal(verified.event.state, 'approved');
  assert.equal(verified.event.sessionId, session.sessionId);
  assert.equal(verified.event.eventId, approved!.json.event_id);
  assert.equal(verified.event.vendorData, 'subj-1');
  assert.equal(verified.event.workflowId, WORKFLOW);
  const d = verified.event.decision!;
  assert.equal(d.facts.status, 'Approved');
  assert.equal(d.facts.id_verification, 'Approved');
  assert.equal(d.facts.liveness, 'Approved');
  assert.equal(d.facts.face_match, 'Approved');
  assert.equal(d.facts.aml, 'Approved');
  assert.equal(d.facts.issuing_country, 'ESP');
  assert.equal(typeof d.facts.age, 'number');
  assert.ok((d.facts.age as number) >= 35);
  assert.deepEqual(d.personal, { firstName: 'José', lastName: 'Müller-Ünlü', dateOfBirth: '1990-05-17' });
  assert.doesNotMatch(JSON.stringify(verified.event), /https?:\/\//, 'no image or media URL survives');

  const onlyRaw = provider.verifyWebhook(approved!.body, { 'x-signature': String(h['x-signature']) });
  assert.equal(onlyRaw.ok && onlyRaw.event.signature, 'raw');
  const onlySimple = provider.verifyWebhook(approved!.body, { 'x-signature-simple': String(h['x-signature-simple']) });
  assert.equal(onlySimple.ok && onlySimple.event.decision, undefined);
  const forged = provider.verifyWebhook(Buffer.from(bodyText.replace('subj-1', 'subj-9')), {
    'x-signature-v2': String(h['x-signature-v2']),
    'x-signature': String(h['x-signature']),
  });
  assert.deepEqual(forged, { ok: false, reason: 'invalid_signature' });

  const decision = await provider.fetchDecision(session.sessionId);
  assert.equal(decision.state, 'approved');
  assert.equal(decision.sessionId, session.sessionId);
  assert.equal(decision.vendorData, 'subj-1');
  assert.deepEqual(decision.facts, d.facts);
  assert.doesNotMatch(JSON.stringify(decision), /https?:\/\/|media|image/);

  const reopened = await httpRequest(session.url);
  assert.match(reopened.body, /Verification approved/, 'a finished session shows its result, not the form');
  assert.equal(
    (await postForm(session.url, { decision: 'declined' })).status,
    409,
    'a finished session cannot be decided again',
  );
  const fresh = await provider.createSession({ workflowId: WORKFLOW, vendorData: 'subj-1' });
  assert.notEqual(fresh.sessionId, session.sessionId, 'a finished session is not reused');
  assert.equal(provider.health.state, 'closed');
});

test('declined and in-review outcomes map to their states and worst feature statuses', async (t) => {
  const { receiver, provider } = await setup(t);
  const declined = await provider.createSession({ workflowId: WORKFLOW, vendorData: 'subj-d' });
  await postForm(declined.url, { decision: 'declined' });
  const review = await provider.createSession({ workflowId: WORKFLOW, vendorData: 'subj-r' });
  await postForm(review.url, { decision: 'in_review' });
  const [d] = await receiver.waitFor(1, withStatus('Declined'));
  const [r] = await receiver.waitFor(1, withStatus('In Review'));
  const vd = provider.verifyWebhook(d!.body, d!.headers);
  const vr = provider.verifyWebhook(r!.body, r!.headers);
  assert.ok(vd.ok && vr.ok);
  if (!vd.ok || !vr.ok) return;
  assert.equal(vd.event.state, 'declined');
  assert.equal(vd.event.decision?.facts.id_verification, 'Declined');
  assert.equal(vr.event.state, 'in_review');
  assert.equal(vr.event.decision?.facts.aml, 'In Review');
  assert.equal((await provider.fetchDecision(review.sessionId)).state, 'in_review');
});

test('a wrong API key is a ProviderRejected 401 whose message does not carry the key', async (t) => {
  const { sandbox } = await setup(t);
  const wrongKey = 'wrong-key-' + randomUUID();
  const provider = new DiditProvider({ baseUrl: sandbox.url, apiKey: wrongKey, webhookSecret: SECRET });
  t.after(() => provider.close());
  await assert.rejects(provider.createSession({ workflowId: WORKFLOW, vendorData: 'x' }), (err: unknown) => {
    assert.ok(err instanceof ProviderRejected);
    assert.equal(err.status, 401);
    assert.ok(!err.message.includes(wrongKey) && !err.message.includes('Invalid or missing'));
    return true;
  });
  await assert.rejects(
    provider.fetchDecision(randomUUID()),
    (err: unknown) => err instanceof ProviderRejected && err.status === 401,
  );
  await assert.rejects(
    provider.fetchDecision('../../etc'),
    (err: unknown) => err instanceof ProviderRejected && err.status === 400,
  );
  assert.equal(provider.health.state, 'closed', 'a refusal is not an outage');
});

test('unknown workflow id format and unknown sessions are rejected as Didit does (400, 404)', async (t) => {
  const { provider } = await setup(t);
  await assert.rejects(
    provider.createSession({ workflowId: 'not-a-uuid', vendorData: 'x' }),
    (err: unknown) => err instanceof ProviderRejected && err.status === 400,
  );
  await assert.rejects(
    provider.fetchDecision(randomUUID()),
    (err: unknown) => err instanceof ProviderRejected && err.status === 404,
  );
});

test('429 is ProviderUnavailable(rate_limited) with Retry-After honoured; calls wait until it passed', async (t) => {
  const { sandbox, provider, clock } = await setup(t);
  sandbox.rateLimitNext(1, 7);
  await assert.rejects(provider.createSession({ workflowId: WORKFLOW, vendorData: 'rl' }), (err: unknown) => {
    assert.ok(err instanceof ProviderUnavailable);
    assert.equal(err.reason, 'rate_limited');
    assert.equal(err.retryAfterSeconds, 7);
    return true;
  });
  // The sandbox would answer now, but the adapter holds back until Retry-After has passed.
  await assert.rejects(
    provider.createSession({ workflowId: WORKFLOW, vendorData: 'rl' }),
    (err: unknown) => err instanceof ProviderUnavailable && err.reason === 'rate_limited' && err.retryAfterSeconds <= 7,
  );
  assert.equal(sandbox.sessions.size, 0);
  clock.offsetMs = 7_001;
  const session = await provider.createSession({ workflowId: WORKFLOW, vendorData: 'rl' });
  assert.ok(session.sessionId);
  assert.equal(provider.health.state, 'closed', 'rate limiting does not open the breaker');
});

test('Retry-After and X-RateLimit-Reset parsing: seconds, HTTP dates, epoch resets', () => {
  const now = Date.UTC(2026, 10, 22, 5, 0, 0);
  assert.equal(secondsUntil('30', now, 'retry-after'), 30);
  assert.equal(secondsUntil(new Date(now + 90_000).toUTCString(), now, 'retry-after'), 90);
  assert.equal(secondsUntil(new Date(now - 90_000).toUTCString(), now, 'retry-after'), 0);
  assert.equal(secondsUntil('12', now, 'reset'), 12);
  assert.equal(secondsUntil(String(now / 1000 + 42), now, 'reset'), 42);
  assert.equal(secondsUntil('soon', now, 'retry-after'), undefined);
  assert.equal(secondsUntil(undefined, now, 'reset'), undefined);
});

async function deadUrl(): Promise<string> {
  const server = http.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((r) => server.close(() => r()));
  return `http://127.0.0.1:${port}`;
}

test('an unreachable provider is ProviderUnavailable and opens the breaker after the threshold', async (t) => {
  const provider = new DiditProvider({
    baseUrl: await deadUrl(),
    apiKey: API_KEY,
    webhookSecret: SECRET,
    breaker: { failureThreshold: 3, cooldownMs: 60_000 },
    outageRetryAfterSeconds: 4,
  });
  t.after(() => provider.close());
  for (let i = 0; i < 3; i++) {
    await assert.rejects(provider.createSession({ workflowId: WORKFLOW, vendorData: 'x' }), (err: unknown) => {
      assert.ok(err instanceof ProviderUnavailable);
      assert.equal(err.reason, 'unreachable');
      assert.equal(err.retryAfterSeconds, 4);
      assert.ok(!err.message.includes(API_KEY));
      return true;
    });
  }
  assert.equal(provider.health.state, 'open');
  assert.match(provider.health.lastError ?? '', /unreachable/);
  await assert.rejects(
    provider.fetchDecision(randomUUID()),
    (err: unknown) =>
      err instanceof ProviderUnavailable && err.reason === 'breaker_open' && err.retryAfterSeconds === 60,
  );
});

test('a provider that stops answering times out as ProviderUnavailable(timeout); 5xx is server_error', async (t) => {
  const silent = http.createServer((req) => req.resume()); // reads the request, never answers
  const failing = http.createServer((_req, res) => res.writeHead(503, { 'retry-after': '9' }).end('{"detail":"down"}'));
  for (const s of [silent, failing]) await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  t.after(() => {
    for (const s of [silent, failing]) {
      s.closeAllConnections();
      s.close();
    }
  });
  const urlOf = (s: http.Server) => `http://127.0.0.1:${(s.address() as net.AddressInfo).port}`;
  const slow = new DiditProvider({
    baseUrl: urlOf(silent),
    apiKey: API_KEY,
    webhookSecret: SECRET,
    timeouts: { headersMs: 200 },
  });
  const down = new DiditProvider({ baseUrl: urlOf(failing), apiKey: API_KEY, webhookSecret: SECRET });
  t.after(() => Promise.all([slow.close(), down.close()]));
  await assert.rejects(
    slow.createSession({ workflowId: WORKFLOW, vendorData: 'x' }),
    (err: unknown) => err instanceof ProviderUnavailable && err.reason === 'timeout',
  );
  await assert.rejects(
    down.fetchDecision(randomUUID()),
    (err: unknown) =>
      err instanceof ProviderUnavailable &&
      err.reason === 'server_error' &&
      err.retryAfterSeconds === 9 &&
      !err.message.includes('down'),
  );
});

test('webhook delivery is retried after a 500: same event_id, two deliveries, both verifiable', async (t) => {
  const { receiver, sandbox, provider, deliveryOutcomes } = await setup(t, [500]);
  const session = await provider.createSession({ workflowId: WORKFLOW, vendorData: 'retry' });
  const res = await httpRequest(`${sandbox.url}/v3/session/${session.sessionId}/update-status/`, {
    method: 'PATCH',
    headers: { 'x-api-key': API_KEY, 'content-type': 'application/json' },
    body: JSON.stringify({ new_status: 'Approved', comment: 'manual review' }),
  });
  assert.equal(res.status, 200);
  const deliveries = await receiver.waitFor(2);
  assert.equal(deliveries.length, 2);
  assert.deepEqual(
    deliveries.map((w) => w.answeredWith),
    [500, 200],
  );
  assert.equal(deliveries[0]!.json.event_id, deliveries[1]!.json.event_id);
  for (const w of deliveries) assert.equal(provider.verifyWebhook(w.body, w.headers).ok, true);
  const outcomes = await deliveryOutcomes(2);
  assert.deepEqual(
    outcomes.map((o) => [o.attempt, o.status, o.final]),
    [
      [1, 500, 'retrying'],
      [2, 200, 'delivered'],
    ],
  );
  assert.equal(sandbox.pendingDeliveries, 0);
  assert.deepEqual(receiverStatuses(receiver), ['Approved', 'Approved']);
});

test('calls can go through an egress proxy (CONNECT tunnel with Proxy-Authorization)', async (t) => {
  const { sandbox } = await setup(t);
  const tunnels: Array<{ target: string; authorization: string | undefined }> = [];
  const proxy = http.createServer((_req, res) => res.writeHead(405).end());
  proxy.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    tunnels.push({ target: String(req.url), authorization: req.headers['proxy-authorization'] });
    if (req.headers['proxy-authorization'] !== 'Basic cHJveHk6cGFzcw==') {
      client.end(
        'HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\ncontent-length: 0\r\n\r\n',
      );
      return;
    }
    const [host, port] = String(req.url).split(':');
    const upstream = net.connect(Number(port), host!, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()));
  t.after(() => {
    proxy.closeAllConnections();
    proxy.close();
  });
  const proxyUrl = `http://127.0.0.1:${(proxy.address() as net.AddressInfo).port}`;
  const viaProxy = new DiditProvider({
    baseUrl: sandbox.url,
    apiKey: API_KEY,
    webhookSecret: SECRET,
    proxy: { url: proxyUrl, token: 'Basic cHJveHk6cGFzcw==' },
  });
  const badToken = new DiditProvider({
    baseUrl: sandbox.url,
    apiKey: API_KEY,
    webhookSecret: SECRET,
    proxy: { url: proxyUrl, token: 'Basic d3Jvbmc=' },
  });
  t.after(() => Promise.all([viaProxy.close(), badToken.close()]));
  const session = await viaProxy.createSession({ workflowId: WORKFLOW, vendorData: 'proxied' });
  assert.ok(sandbox.sessions.has(session.sessionId));
  assert.equal(tunnels[0]!.target, new URL(sandbox.url).host);
  await assert.rejects(
    badToken.createSession({ workflowId: WORKFLOW, vendorData: 'proxied' }),
    (err: unknown) => err instanceof ProviderUnavailable && err.reason === 'unreachable',
  );
});

function receiverStatuses(r: WebhookReceiver): unknown[] {
  return r.received.map((w) => w.json.status);
}

export type { RunningSandbox };
