import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRequestTarget } from './path.js';
import { startTestGateway, startUpstream, httpRequest, rawRequest, statusOf } from '../../testing/harness.js';

test('parseRequestTarget: origin-form is split and normalised', () => {
  assert.deepEqual(parseRequestTarget('/a/./b/../c?x=1&y', 'Example.COM:8443'), { ok: true, path: '/a/c', query: 'x=1&y', host: 'Example.COM:8443', hostname: 'example.com' });
  assert.deepEqual(parseRequestTarget('/%7Euser//x', 'h'), { ok: true, path: '/~user/x', query: '', host: 'h', hostname: 'h' });
});

test('parseRequestTarget: absolute-form authority replaces Host', () => {
  assert.deepEqual(parseRequestTarget('http://api.example:81/v1?q', 'other'), { ok: true, path: '/v1', query: 'q', host: 'api.example:81', hostname: 'api.example' });
  assert.deepEqual(parseRequestTarget('https://api.example', 'other'), { ok: true, path: '/', query: '', host: 'api.example', hostname: 'api.example' });
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
