import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRequestTarget } from './path.js';
import { startTestGateway, startUpstream, httpRequest, rawRequest, statusOf } from '../../testing/harness.js';

test('parseRequestTarget: origin-form is split and normalised', () => {
  assert.deepEqual(parseRequestTarget('/a/./b/../c?x=1&y', 'Example.COM:8443'), {
    ok: true,
    path: '/a/c',
    query: 'x=1&y',
    host: 'Example.COM:8443',
    hostname: 'example.com',
  });
  assert.deepEqual(parseRequestTarget('/%7Euser//x', 'h'), {
    ok: true,
    path: '/~user/x',
    query: '',
    host: 'h',
    hostname: 'h',
  });
});

test('parseRequestTarget: absolute-form authority replaces Host', () => {
  assert.deepEqual(parseRequestTarget('http://api.example:81/v1?q', 'other'), {
    ok: true,
    path: '/v1',
    query: 'q',
    host: 'api.example:81',
    hostname: 'api.example',
  });
  assert.deepEqual(parseRequestTarget('https://api.example', 'other'), {
    ok: true,
    path: '/',
    query: '',
    host: 'api.example',
    hostname: 'api.example',
  });
});

test('parseRequestTarget: refusals say which part was wrong', () => {
  assert.equal((parseRequestTarget('*', 'h') as { reason: string }).reason, 'target');
  assert.equal((parseRequestTarget('/a%2Fb', 'h') as { reason: string }).reason, 'path');
  assert.equal((parseRequestTarget('/../etc', 'h') as { reason: string }).reason, 'path');
  assert.equal((parseRequestTarget('/ok', 'bad host!') as { reason: string }).reason, 'host');
  assert.equal((parseRequestTarget('/ok', '[::1') as { reason: string }).reason, 'host');
});

test('proxied requests go through the same target parsing', async () => {
  const app = await startUpstream((req, res) => res.end(req.url));
  const gw = await startTestGateway({
    upstreams: { app: { targets: [{ url: app.url }] } },
    routes: [{ name: 'b', match: { prefix: '/b' }, upstream: 'app' }],
  });
  try {
    const r = await rawRequest(gw.port, 'GET /a/../b/c?x=1 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n');
    assert.equal(statusOf(r), 200);
    assert.ok(r.endsWith('/b/c?x=1'), r);
    assert.equal((await httpRequest(`${gw.url}/b%2Fc`)).status, 400);
    const badHost = await rawRequest(gw.port, 'GET /b HTTP/1.1\r\nHost: bad!host\r\nConnection: close\r\n\r\n');
    assert.equal(statusOf(badHost), 400);
  } finally {
    await gw.close();
    await app.close();
  }
});

test('parseRequestTarget: Host is a host name or IP literal with an optional numeric port, nothing else', () => {
  const good: Array<[string, string]> = [
    ['api.example.com', 'api.example.com'],
    ['API.Example.com:8443', 'api.example.com'],
    ['127.0.0.1:80', '127.0.0.1'],
    ['[::1]', '::1'],
    ['[2001:DB8::1]:443', '2001:db8::1'],
    ['internal_host', 'internal_host'],
  ];
  for (const [host, hostname] of good) {
    const r = parseRequestTarget('/x', host);
    assert.equal(r.ok, true, host);
    assert.equal((r as { hostname: string }).hostname, hostname, host);
  }
  const bad = [
    'api.example.com:443@evil.example', // userinfo-like: a link built from it points elsewhere
    'user@api.example.com',
    'api.example.com:https',
    'api.example.com:',
    'api.example.com:65536',
    'api.example.com:123456',
    'api.example.com:80:80',
    'api.example.com/evil',
    'api.example.com evil',
    '[::1]x',
    '[::1]:http',
    '[not-an-ip]',
    '[::1',
  ];
  for (const host of bad) {
    const r = parseRequestTarget('/x', host);
    assert.equal(r.ok, false, host);
    assert.equal((r as { reason: string }).reason, 'host', host);
  }
  assert.equal(parseRequestTarget('http://a@api.example/x', 'h').ok, false, 'userinfo in an absolute-form target');
});

test('parseRequestTarget: a dot-segment with path parameters is an ambiguous-path refusal', () => {
  assert.equal((parseRequestTarget('/public/..;/admin', 'h') as { reason: string }).reason, 'ambiguous-path');
  assert.equal(
    (parseRequestTarget('/a;b', 'h', { refuseSemicolons: true }) as { reason: string }).reason,
    'ambiguous-path',
  );
  assert.equal(parseRequestTarget('/a;b', 'h').ok, true);
});
