import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestGateway, startUpstream, rawRequest, httpRequest } from '../../testing/harness.js';

test('headers: hop-by-hop and Connection-named headers never cross, in either direction', async (t) => {
  const upstream = await startUpstream((req, res) => {
    const body = JSON.stringify(req.headers);
    res.writeHead(200, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      connection: 'x-internal',
      'x-internal': 'secret-upstream-thing',
      'keep-alive': 'timeout=99',
      'x-kept': 'yes',
    });
    res.end(body);
  });
  const gw = await startTestGateway({
    upstreams: { u: { targets: [{ url: upstream.url }] } },
    routes: [{ name: 'r', match: { prefix: '/' }, upstream: 'u' }],
  });
  t.after(async () => {
    await gw.close();
    await upstream.close();
  });
  const raw = await rawRequest(
    gw.port,
    'GET /x HTTP/1.1\r\nHost: example.test\r\nConnection: close, x-client-hop\r\nX-Client-Hop: ' +
      '1\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nUpgrade: websocket\r\nProxy-Authorization: Basic ' +
      'Zm9vOmJhcg==\r\nX-Normal: kept\r\n\r\n',
  );
  const [head, body] = raw.split('\r\n\r\n');
  const seen = JSON.parse(body!) as Record<string, string>;
  assert.equal(seen['x-client-hop'], undefined);
  assert.equal(seen.te, undefined);
  assert.equal(seen.upgrade, undefined);
  assert.equal(seen['proxy-authorization'], undefined);
  assert.equal(seen['x-normal'], 'kept');
  assert.match(head!, /x-kept: yes/i);
  assert.doesNotMatch(head!, /x-internal/i);
  assert.doesNotMatch(head!, /timeout=99/);
});

test('headers: X-Forwarded-* and Forwarded are set, and client-supplied values are replaced unless the peer is trusted', async (t) => {
  const upstream = await startUpstream((req, res) => res.end(JSON.stringify(req.headers)));
  const base = {
    upstreams: { u: { targets: [{ url: upstream.url }] } },
    routes: [{ name: 'r', match: { prefix: '/' }, upstream: 'u' }],
  };
  const untrusted = await startTestGateway(base);
  const trusted = await startTestGateway({ ...base, server: { trusted_proxies: ['127.0.0.0/8'] } });
  t.after(async () => {
    await untrusted.close();
    await trusted.close();
    await upstream.close();
  });
  const spoof = {
    'x-forwarded-for': '6.6.6.6',
    'x-forwarded-proto': 'https',
    'x-forwarded-host': 'evil.test',
    forwarded: 'for=6.6.6.6',
    'x-request-id': 'req-123',
  };
  const a = await httpRequest(untrusted.url + '/a', { headers: spoof });
  const seenA = JSON.parse(a.body) as Record<string, string>;
  assert.equal(seenA['x-forwarded-for'], '127.0.0.1');
  assert.equal(seenA['x-forwarded-proto'], 'http');
  assert.equal(seenA['x-forwarded-host'], `127.0.0.1:${untrusted.port}`);
  assert.equal(seenA.forwarded, `for=127.0.0.1;proto=http;host="127.0.0.1:${untrusted.port}"`);
  assert.equal(seenA['x-request-id'], 'req-123', 'a valid incoming request id is propagated');
  assert.equal(a.headers['x-request-id'], 'req-123', 'and returned to the client');

  const b = await httpRequest(trusted.url + '/b', { headers: spoof });
  const seenB = JSON.parse(b.body) as Record<string, string>;
  assert.equal(seenB['x-forwarded-for'], '6.6.6.6, 127.0.0.1');
  assert.equal(seenB['x-forwarded-proto'], 'https');
  assert.equal(seenB['x-forwarded-host'], 'evil.test');
  assert.equal(seenB.forwarded, `for=6.6.6.6, for=127.0.0.1;proto=http;host="127.0.0.1:${trusted.port}"`);

  // A trusted proxy may send the list on several lines: the upstream gets all of it, as the client address rules do.
  const repeated = await httpRequest(trusted.url + '/c', {
    headers: { 'x-forwarded-for': ['6.6.6.6', '7.7.7.7'] as unknown as string },
  });
  assert.equal((JSON.parse(repeated.body) as Record<string, string>)['x-forwarded-for'], '6.6.6.6, 7.7.7.7, 127.0.0.1');
});

test('headers: a request id is generated when absent or malformed, sent upstream and returned', async (t) => {
  const upstream = await startUpstream((req, res) => res.end(String(req.headers['x-request-id'])));
  const gw = await startTestGateway({
    upstreams: { u: { targets: [{ url: upstream.url }] } },
    routes: [{ name: 'r', match: { prefix: '/' }, upstream: 'u' }],
  });
  t.after(async () => {
    await gw.close();
    await upstream.close();
  });
  const a = await httpRequest(gw.url + '/');
  assert.match(a.body, /^[0-9a-f-]{36}$/);
  assert.equal(a.headers['x-request-id'], a.body);
  const b = await httpRequest(gw.url + '/', { headers: { 'x-request-id': 'bad id with spaces' } });
  assert.notEqual(b.body, 'bad id with spaces');
  assert.match(b.body, /^[0-9a-f-]{36}$/);
});

test('headers: W3C traceparent and tracestate are passed upstream unchanged', async (t) => {
  const upstream = await startUpstream((req, res) =>
    res.end(JSON.stringify({ tp: req.headers.traceparent, ts: req.headers.tracestate })),
  );
  const gw = await startTestGateway({
    upstreams: { u: { targets: [{ url: upstream.url }] } },
    routes: [{ name: 'r', match: { prefix: '/' }, upstream: 'u' }],
  });
  t.after(async () => {
    await gw.close();
    await upstream.close();
  });
  const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
  const c = await httpRequest(gw.url + '/', { headers: { traceparent, tracestate: 'vendor=abc' } });
  assert.deepEqual(JSON.parse(c.body), { tp: traceparent, ts: 'vendor=abc' });
});
