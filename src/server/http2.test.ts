/**
 * HTTP/2 downstream: ALPN h2 beside HTTP/1.1 on a TLS listener, h2c on a plain one, the same authentication and
 * KYC gate over both versions (Node's http2 client and curl --http2), what could be read two ways refused, and the
 * edge protections (stream limit, header list size, rapid reset).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import http2 from 'node:http2';
import tls from 'node:tls';
import { promisify } from 'node:util';
import { startTestGateway, startUpstream } from '../../testing/harness.js';
import { kycTestbed, postWebhook, eventually } from '../../testing/kyc-testbed.js';
import { h2Connect, h2Request, rapidReset, testCertificate } from '../../testing/h2.js';
import type { AuthService } from '../auth/subsystem.js';
import type { GatewayEvent } from '../pipeline/events.js';

const run = promisify(execFile);
const asJson = (body: string) => JSON.parse(body) as Record<string, any>;

async function gatedGateway(t: import('node:test').TestContext, server: Record<string, unknown> = {}) {
  const bed = await kycTestbed(t);
  const cert = await testCertificate(t);
  const gw = await startTestGateway(
    bed.config(
      {},
      {
        listeners: [
          { name: 'plain', port: 0 },
          { name: 'secure', port: 0, tls: { cert: cert.cert, key: cert.key } },
          { name: 'h2c', port: 0, http2: 'h2c' },
        ],
        server,
        consumers: { shop: { scopes: ['orders'] } },
        routes: [
          { name: 'open', match: { prefix: '/open' }, upstream: 'api' },
          {
            name: 'orders',
            match: { prefix: '/orders' },
            upstream: 'api',
            policies: [
              { authenticate: { methods: [{ 'api-key': {} }] } },
              { authorize: { scopes: { all_of: ['orders'] } } },
              { 'kyc-gate': { subject: { from: 'header', header: 'x-user-id' }, required_claims: ['kyc_full'] } },
            ],
          },
        ],
      },
    ),
  );
  t.after(() => gw.close());
  const { key } = await gw.gateway.services.get<AuthService>('auth').createKey({ consumer: 'shop' });
  return { bed, cert, gw, key, secure: gw.urlOf('secure'), h2c: gw.urlOf('h2c') };
}

test('over HTTP/2 the API key, scope and KYC gate answer exactly as over HTTP/1.1, errors as problem+json', async (t) => {
  const { bed, cert, gw, key, secure } = await gatedGateway(t);
  const session = h2Connect(t, secure, cert.pem);
  const get = (headers: Record<string, string> = {}) =>
    h2Request(session, { ':path': '/orders/1', accept: 'application/json', ...headers });

  const anonymous = await get();
  assert.equal(anonymous.status, 401);
  assert.equal(anonymous.headers['content-type'], 'application/problem+json');
  assert.equal(asJson(anonymous.body).type, 'https://kycgate.dev/problems/unauthenticated');
  assert.match(String(anonymous.headers['x-request-id']), /^[0-9a-f-]{36}$/);
  assert.equal(session.alpnProtocol, 'h2');

  const unverified = await get({ 'x-api-key': key, 'x-user-id': 'alice' });
  assert.equal(unverified.status, 403);
  const challenge = asJson(unverified.body);
  assert.equal(challenge.type, 'https://kycgate.dev/problems/kyc-required');
  assert.equal(bed.upstream.requests, 0, 'nothing reached the upstream');

  assert.equal((await postWebhook(gw.url, bed.provider.webhook(challenge.session_id, 'Approved'))).status, 200);
  assert.ok(
    await eventually(async () => (await get({ 'x-api-key': key, 'x-user-id': 'alice' })).status === 200, 5000),
    'approved subject passes over HTTP/2',
  );
  const passed = await get({
    'x-api-key': key,
    'x-user-id': 'alice',
    'x-kyc-status': 'forged',
    cookie: 'a=1',
    'x-custom': 'kept',
  });
  // Two cookie fields on the wire (HPACK splits them); the upstream gets one header.
  const twoCookies = await h2Request(session, {
    ':path': '/orders/2',
    'x-api-key': key,
    'x-user-id': 'alice',
    cookie: ['a=1', 'b=2'],
  });
  assert.equal(passed.status, 200);
  const seen = asJson(passed.body).headers as Record<string, string>;
  assert.equal(seen['x-kyc-status'], 'verified', 'the gate sets it, the forged one is gone');
  assert.equal(seen['x-forwarded-proto'], 'https');
  assert.equal(seen['x-custom'], 'kept');
  assert.match(seen['x-forwarded-host']!, /^localhost:\d+$/, ':authority is the host');
  assert.equal(asJson(twoCookies.body).headers.cookie, 'a=1; b=2');

  // The same over curl --http2, and curl over HTTP/1.1 on the same listener (ALPN fallback).
  for (const version of ['--http2', '--http1.1']) {
    const { stdout } = await run('curl', [
      '-sS',
      version,
      '--cacert',
      cert.cert,
      '-H',
      `x-api-key: ${key}`,
      '-H',
      'x-user-id: alice',
      '-o',
      '/dev/null',
      '-w',
      '%{http_version} %{http_code}',
      `${secure.replace('127.0.0.1', 'localhost')}/orders/3`,
    ]);
    assert.equal(stdout, version === '--http2' ? '2 200' : '1.1 200');
  }
  const { stdout: refused } = await run('curl', [
    '-sS',
    '--http2',
    '--cacert',
    cert.cert,
    '-w',
    ' %{http_version} %{http_code}',
    `${secure.replace('127.0.0.1', 'localhost')}/orders/3`,
  ]);
  assert.match(refused, /"type":"https:\/\/kycgate\.dev\/problems\/unauthenticated".* 2 401$/);
});

test('HTTP/2 bodies without Content-Length are forwarded, and ambiguous heads are refused', async (t) => {
  const upstream = await startUpstream((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => res.writeHead(200, { 'Content-Type': 'text/plain' }).end(Buffer.concat(chunks)));
  });
  t.after(() => upstream.close());
  const cert = await testCertificate(t);
  const gw = await startTestGateway({
    listeners: [{ name: 'secure', port: 0, tls: { cert: cert.cert, key: cert.key } }],
    upstreams: { echo: { targets: [{ url: upstream.url }] } },
    routes: [{ name: 'echo', match: { prefix: '/' }, upstream: 'echo' }],
  });
  t.after(() => gw.close());
  const session = h2Connect(t, gw.url, cert.pem);

  const posted = await h2Request(session, { ':method': 'POST', ':path': '/upload' }, 'x'.repeat(100_000));
  assert.equal(posted.status, 200);
  assert.equal(posted.body.length, 100_000);
  assert.equal(posted.headers['content-type'], 'text/plain');

  const twoHosts = await h2Request(session, {
    ':path': '/x',
    ':authority': new URL(gw.url).host,
    host: 'other.example',
  });
  assert.equal(twoHosts.status, 400);
  assert.equal(asJson(twoHosts.body).type, 'https://kycgate.dev/problems/ambiguous-request');
  assert.match(asJson(twoHosts.body).detail, /:authority/);
  const twoAuth = await h2Request(session, { ':path': '/x', 'x-request-id': ['a', 'b'] } as never);
  assert.equal(twoAuth.status, 400);
  assert.equal((await h2Request(session, { ':path': '/x' })).status, 200, 'the connection keeps serving');
});

test('h2c with prior knowledge on a plain listener configured for it', async (t) => {
  const { h2c, key } = await gatedGateway(t);
  const session = h2Connect(t, h2c);
  const answer = await h2Request(session, { ':path': '/orders/1', 'x-api-key': key, 'x-user-id': 'bob' });
  assert.equal(answer.status, 403, 'authenticated, then gated');
  assert.equal(asJson(answer.body).type, 'https://kycgate.dev/problems/kyc-required');
});

test('HTTP/2 edge protections: stream limit advertised, oversized header lists reset, rapid reset closes the connection', async (t) => {
  const { bed, cert, gw, secure } = await gatedGateway(t, {
    max_header_bytes: 8192,
    http2: { max_concurrent_streams: 7, max_resets_per_second: 20 },
  });
  const closed: GatewayEvent[] = [];
  gw.gateway.services.events.on('http2.connection_closed', (e) => closed.push(e));
  const session = h2Connect(t, secure, cert.pem);
  await new Promise<void>((resolve) => session.once('remoteSettings', () => resolve()));
  assert.equal(session.remoteSettings.maxConcurrentStreams, 7);
  assert.equal(session.remoteSettings.maxHeaderListSize, 8192);
  assert.equal(session.remoteSettings.enablePush, false);

  const big = await h2Request(session, { ':path': '/orders/1', 'x-big': 'a'.repeat(12_000) });
  assert.equal(big.status, 0, 'no answer: the stream is reset (ENHANCE_YOUR_CALM)');
  assert.notEqual(big.rstCode, http2.constants.NGHTTP2_NO_ERROR);
  assert.equal(bed.upstream.requests, 0);
  assert.equal((await h2Request(session, { ':path': '/orders/1' })).status, 401, 'the connection keeps serving');

  // Rapid reset: streams opened and cancelled at once, far over 20 per second, on a route that forwards (a stream
  // answered before its reset arrives is over, and its reset is not one).
  const attacker = await new Promise<tls.TLSSocket>((resolve) => {
    const socket = tls.connect(
      {
        port: Number(new URL(secure).port),
        host: '127.0.0.1',
        servername: 'localhost',
        ca: cert.pem,
        ALPNProtocols: ['h2'],
      },
      () => resolve(socket),
    );
  });
  t.after(() => attacker.destroy());
  assert.equal(attacker.alpnProtocol, 'h2');
  // Resolves with the record of the closure, or false after a bound far beyond a loaded machine's delays.
  const recorded = new Promise<boolean>((resolve) => {
    gw.gateway.services.events.on('http2.connection_closed', () => resolve(true));
    setTimeout(() => resolve(false), 15_000).unref();
  });
  const goaway = await rapidReset(attacker, new URL(secure).host, '/open/1', 200);
  assert.ok(await recorded, 'the closure is on record');
  // The one difference between Node versions is who sends GOAWAY. Node 20 keeps nghttp2's own reset limit at its
  // default (1000, 33 per second): the gateway's count closes the flood (ENHANCE_YOUR_CALM). From Node 22.10 nghttp2
  // gets the gateway's backstop limit and, reading the whole flood at once, closes it first (INTERNAL_ERROR).
  const [major, minor] = process.versions.node.split('.').map(Number) as [number, number];
  const nghttp2Limits = major > 22 || (major === 22 && minor >= 10);
  assert.equal(
    goaway,
    nghttp2Limits ? http2.constants.NGHTTP2_INTERNAL_ERROR : http2.constants.NGHTTP2_ENHANCE_YOUR_CALM,
    `GOAWAY ${goaway}, then the connection closed`,
  );
  // Either way the closure is on record: metric, event (audit) and log line.
  assert.equal(closed.length, 1);
  assert.equal(closed[0]!.outcome, 'rapid_reset');
  assert.equal(closed[0]!.data?.listener, 'secure');
  assert.equal(closed[0]!.data?.client, '127.0.0.1');
  const metrics = await gw.gateway.services.metrics.registry.getSingleMetricAsString(
    'kycgate_http2_connections_closed_total',
  );
  assert.match(metrics, /kycgate_http2_connections_closed_total\{listener="secure",reason="rapid_reset"\} 1/);
  const logged = gw.logs.filter((l) => l.msg === 'HTTP/2 connection closed for abuse');
  assert.equal(logged.length, 1);
  assert.equal(logged[0]!.reason, 'rapid_reset');
  assert.equal(logged[0]!.listener, 'secure');
  // Other connections are not affected, and the closure was recorded once.
  assert.equal((await h2Request(session, { ':path': '/orders/1' })).status, 401);
  assert.equal(closed.length, 1);
});

test('a drain sends GOAWAY to HTTP/2 connections and lets their streams finish', async (t) => {
  let release: (() => void) | undefined;
  const upstream = await startUpstream((req, res) => {
    release = () => res.writeHead(200).end('late');
    req.resume();
  });
  t.after(() => upstream.close());
  const cert = await testCertificate(t);
  const gw = await startTestGateway({
    listeners: [{ name: 'secure', port: 0, tls: { cert: cert.cert, key: cert.key } }],
    upstreams: { slow: { targets: [{ url: upstream.url }] } },
    routes: [{ name: 'slow', match: { prefix: '/' }, upstream: 'slow' }],
  });
  const session = h2Connect(t, gw.url, cert.pem);
  const goaway = new Promise<void>((resolve) => session.once('goaway', () => resolve()));
  const pending = h2Request(session, { ':path': '/slow' });
  await eventually(async () => release !== undefined, 5000);
  const stopped = gw.gateway.stop(10_000);
  await goaway;
  release!();
  const answer = await pending;
  assert.equal(answer.status, 200);
  assert.equal(answer.body, 'late');
  await stopped;
});
