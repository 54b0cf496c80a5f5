/**
 * The edge: requests whose framing or path could be read two ways never reach an upstream, and a path trick never
 * reaches a route under another route's policy.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestGateway, startUpstream, rawRequest, statusOf, httpRequest } from '../../testing/harness.js';

async function setup(t: import('node:test').TestContext) {
  const completedBodies: number[] = [];
  const upstream = await startUpstream((req, res) => {
    let size = 0;
    req.on('data', (c: Buffer) => (size += c.length));
    req.on('end', () => {
      completedBodies.push(size);
      res.end(JSON.stringify({ path: req.url }));
    });
  });
  const gw = await startTestGateway({
    upstreams: { u: { targets: [{ url: upstream.url }] } },
    routes: [
      { name: 'public', match: { prefix: '/public' }, upstream: 'u' },
      {
        name: 'admin',
        match: { prefix: '/admin' },
        policies: [{ 'static-response': { status: 403, body: 'admin is protected' } }],
      },
      { name: 'echo', match: { prefix: '/echo' }, upstream: 'u', max_body_bytes: 16 },
    ],
  });
  t.after(async () => {
    await gw.close();
    await upstream.close();
  });
  return { upstream, gw, completedBodies };
}

test('edge: every request-smuggling shape is refused with 400 problem+json and never reaches the upstream', async (t) => {
  const { upstream, gw, completedBodies } = await setup(t);
  const shapes: Record<string, string> = {
    'CL and TE':
      'POST /public/x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    'TE and CL':
      'POST /public/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n',
    'duplicate CL, same value':
      'POST /public/x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\nabcd',
    'duplicate CL, different values':
      'POST /public/x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde',
    'CL list': 'POST /public/x HTTP/1.1\r\nHost: a\r\nContent-Length: 4, 4\r\n\r\nabcd',
    'CL with sign': 'POST /public/x HTTP/1.1\r\nHost: a\r\nContent-Length: +4\r\n\r\nabcd',
    'obsolete line folding': 'GET /public/x HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n',
    'TE not chunked': 'POST /public/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n',
    'TE unknown': 'POST /public/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n',
    'TE duplicated':
      'POST /public/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    'TE on HTTP/1.0': 'POST /public/x HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    'space before colon': 'POST /public/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n',
    'duplicate Host': 'GET /public/x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n',
    'duplicate Authorization':
      'GET /public/x HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer a\r\nAuthorization: Bearer b\r\n\r\n',
    'missing Host': 'GET /public/x HTTP/1.1\r\n\r\n',
    'bare LF': 'GET /public/x HTTP/1.1\nHost: a\n\n',
    'bad chunk extension':
      'POST /public/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n4;a=\x01\r\nabcd\r\n0\r\n\r\n',
  };
  for (const [name, payload] of Object.entries(shapes)) {
    const answer = await rawRequest(gw.port, payload);
    assert.equal(statusOf(answer), 400, `${name}: ${answer.slice(0, 80)}`);
    assert.match(answer, /content-type: application\/problem\+json/i, name);
    assert.doesNotMatch(answer, /\bat \w+ \(|node:internal|\/work\//, `${name}: no internals in the answer`);
  }
  assert.deepEqual(completedBodies, [], 'the upstream received none of them');
  // Only the broken chunk body could start an upstream request (its head was valid); it was aborted.
  assert.ok(upstream.requests <= 1, `upstream saw ${upstream.requests} request heads`);
});

test("edge: path tricks never reach a route under another route's policy", async (t) => {
  const { upstream, gw } = await setup(t);
  const tricks = [
    '/public/../admin',
    '/public/%2e%2e/admin',
    '/public/%2E%2e/admin',
    '/public/.%2e/admin',
    '//admin',
    '/public/..%2fadmin',
    '/public%2f..%2fadmin',
    '/public/..\\admin',
    '/public/%2e%2e%5cadmin',
    '/%61dmin',
  ];
  for (const path of tricks) {
    const answer = await rawRequest(gw.port, `GET ${path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`);
    const status = statusOf(answer);
    // Either refused outright, or normalised onto /admin and answered by the admin route's own policy.
    assert.ok(status === 400 || (status === 403 && answer.includes('admin is protected')), `${path} → ${status}`);
  }
  assert.equal(upstream.requests, 0, 'no trick reached the upstream through the public route');
  // The upstream receives the normalised path, the one that was matched.
  const ok = await httpRequest(gw.url + '/public/a/./b//c');
  assert.equal(JSON.parse(ok.body).path, '/public/a/b/c');
});

test('edge: absolute-form targets use their own authority; unknown routes get 404 problem+json', async (t) => {
  const { gw } = await setup(t);
  const answer = await rawRequest(
    gw.port,
    'GET http://other.test/public/abs?q=1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n',
  );
  assert.equal(statusOf(answer), 200);
  assert.match(answer, /"path":"\/public\/abs\?q=1"/);
  const missing = await httpRequest(gw.url + '/nowhere');
  assert.equal(missing.status, 404);
  assert.equal(missing.headers['content-type'], 'application/problem+json');
  const body = JSON.parse(missing.body);
  assert.equal(body.type, 'https://kycgate.dev/problems/not-found');
  assert.equal(body.status, 404);
  assert.equal(body.instance, `urn:kycgate:request:${missing.headers['x-request-id']}`);
});

test('edge: body over the route limit gets 413, declared or chunked, and the upstream never receives it whole', async (t) => {
  const { upstream, gw, completedBodies } = await setup(t);
  const declared = await httpRequest(gw.url + '/echo/x', { method: 'POST', body: 'x'.repeat(17) });
  assert.equal(declared.status, 413);
  assert.equal(JSON.parse(declared.body).type, 'https://kycgate.dev/problems/payload-too-large');
  const chunked = await rawRequest(
    gw.port,
    'POST /echo/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n11\r\n' + 'y'.repeat(17) + '\r\n0\r\n\r\n',
  );
  assert.equal(statusOf(chunked), 413);
  for (const answer of [declared.body, chunked.slice(chunked.indexOf('\r\n\r\n') + 4)]) {
    assert.match(answer, /The body limit of this route is 16 bytes\./, 'both refusals name the limit');
  }
  const fits = await httpRequest(gw.url + '/echo/x', { method: 'POST', body: 'x'.repeat(16) });
  assert.equal(fits.status, 200);
  assert.deepEqual(completedBodies, [16], 'only the body within the limit was delivered');
  assert.ok(upstream.requests <= 2, 'a declared oversize body never opened an upstream request');
});

test('edge: a dot-segment with path parameters, a double encoding or a full-width dot is refused as ambiguous-path, never forwarded', async (t) => {
  const { upstream, gw } = await setup(t);
  const tricks = [
    '/public/..;/admin/x',
    '/public/%2e%2e;/admin/x',
    '/public/..;jsessionid=1/admin/x',
    '/public/.;x/../admin',
    '/public/%252e%252e/admin',
    '/public/%EF%BC%8E%EF%BC%8E/admin',
  ];
  for (const path of tricks) {
    const answer = await rawRequest(gw.port, `GET ${path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`);
    assert.equal(statusOf(answer), 400, path);
    assert.match(answer, /"type":"https:\/\/kycgate\.dev\/problems\/ambiguous-path"/, path);
    assert.match(answer, /x-request-id: /i, path);
  }
  assert.equal(upstream.requests, 0, 'none reached the upstream through the open /public route');
  // An ordinary semicolon is forwarded as sent unless path_semicolons refuses it.
  const plain = await httpRequest(gw.url + '/public/report;v=2');
  assert.equal(JSON.parse(plain.body).path, '/public/report;v=2');
});

test('edge: with path_semicolons: refuse, any ";" in a path is refused (Java upstreams)', async (t) => {
  const upstream = await startUpstream((_req, res) => res.end('ok'));
  const gw = await startTestGateway({
    server: { path_semicolons: 'refuse' },
    upstreams: { u: { targets: [{ url: upstream.url }] } },
    routes: [{ name: 'public', match: { prefix: '/public' }, upstream: 'u' }],
  });
  t.after(async () => {
    await gw.close();
    await upstream.close();
  });
  for (const path of ['/public/report;v=2', '/public/a%3Bb']) {
    const r = await httpRequest(gw.url + path);
    assert.equal(r.status, 400, path);
    assert.equal(JSON.parse(r.body).type, 'https://kycgate.dev/problems/ambiguous-path', path);
  }
  assert.equal((await httpRequest(gw.url + '/public/report')).status, 200);
  assert.equal(upstream.requests, 1);
});

test('edge: a Host with userinfo, a non-numeric port or anything else is 400 and never forwarded', async (t) => {
  const { upstream, gw } = await setup(t);
  for (const host of [
    'api.example.com:443@evil.example',
    'api.example.com:https',
    'evil.example/x',
    'api.example.com:99999',
  ]) {
    const answer = await rawRequest(
      gw.port,
      `GET /public/reset HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
    );
    assert.equal(statusOf(answer), 400, host);
    assert.match(answer, /"type":"https:\/\/kycgate\.dev\/problems\/bad-request"/, host);
    assert.match(answer, /Host header is invalid/, host);
  }
  assert.equal(upstream.requests, 0, 'no X-Forwarded-Host or Forwarded host built from them reached the upstream');
  const ok = await rawRequest(
    gw.port,
    'GET /public/reset HTTP/1.1\r\nHost: api.example.com:8443\r\nConnection: close\r\n\r\n',
  );
  assert.equal(statusOf(ok), 200);
});
