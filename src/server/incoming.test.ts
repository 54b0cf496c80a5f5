/**
 * The listeners' request class skips Node's header object until the handler takes the request; Expect handling
 * (which Node decides from that object before the handler runs) must work exactly as before.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import { GATEWAY_REQUEST_OPTIONS, takeRequest } from './incoming.js';
import { startTestGateway, startUpstream, rawRequest, statusOf } from '../../testing/harness.js';

test('incoming: before the handler takes a request its header object is empty; once taken it is complete', async (t) => {
  const seen: Array<{ before: unknown; after: unknown; frozen: boolean }> = [];
  const server = http.createServer({ ...GATEWAY_REQUEST_OPTIONS }, (req, res) => {
    const before = { ...req.headers };
    const frozen = Object.isFrozen(req.headers);
    takeRequest(req);
    seen.push({ before, frozen, after: { ...req.headers } });
    res.end();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  const port = (server.address() as net.AddressInfo).port;
  await rawRequest(port, 'GET / HTTP/1.1\r\nHost: a\r\nX-Thing: one\r\nX-Thing: two\r\nConnection: close\r\n\r\n');
  assert.equal(seen.length, 1);
  assert.deepEqual(seen[0]!.before, {});
  assert.equal(seen[0]!.frozen, true);
  // Node's own joining rules, unchanged: repeated X- headers joined with ", ".
  assert.deepEqual(seen[0]!.after, { host: 'a', 'x-thing': 'one, two', connection: 'close' });
});

async function gateway(t: import('node:test').TestContext) {
  const bodies: string[] = [];
  const upstream = await startUpstream((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      bodies.push(body);
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ body, thing: req.headers['x-thing'] ?? null }));
    });
  });
  const gw = await startTestGateway({
    upstreams: { u: { targets: [{ url: upstream.url }] } },
    routes: [
      { name: 'echo', match: { prefix: '/echo' }, upstream: 'u' },
      {
        name: 'closed',
        match: { prefix: '/closed' },
        upstream: 'u',
        policies: [{ 'static-response': { status: 403, body: 'no' } }],
      },
    ],
  });
  t.after(async () => {
    await gw.close();
    await upstream.close();
  });
  return { gw, bodies };
}

test('incoming: Expect: 100-continue gets 100 Continue first, then the body is forwarded', async (t) => {
  const { gw, bodies } = await gateway(t);
  const socket = net.connect(gw.port, '127.0.0.1');
  await once(socket, 'connect');
  let answer = '';
  socket.setEncoding('latin1');
  const interim = new Promise<void>((resolve) => {
    socket.on('data', (c: string) => {
      answer += c;
      if (answer.includes('\r\n\r\n')) resolve();
    });
  });
  socket.write(
    'POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nX-Thing: kept\r\nContent-Length: 5\r\nConnection: close\r\n\r\n',
  );
  await interim;
  assert.match(answer, /^HTTP\/1\.1 100 Continue\r\n/);
  socket.write('hello');
  await once(socket, 'end');
  const final = answer.slice(answer.indexOf('\r\n\r\n') + 4);
  assert.equal(statusOf(final), 200, final);
  assert.match(final, /"body":"hello"/);
  assert.match(final, /"thing":"kept"/);
  assert.deepEqual(bodies, ['hello']);
});

test('incoming: any other expectation is refused with 417 problem+json, never forwarded, and the connection closed', async (t) => {
  const { gw, bodies } = await gateway(t);
  const answer = await rawRequest(
    gw.port,
    'POST /echo HTTP/1.1\r\nHost: a\r\nExpect: teapot\r\nContent-Length: 5\r\n\r\n',
    5000,
  );
  assert.equal(statusOf(answer), 417, answer);
  assert.match(answer, /content-type: application\/problem\+json/i);
  assert.match(answer, /"type":"https:\/\/kycgate\.dev\/problems\/expectation-failed"/);
  assert.match(answer, /connection: close/i);
  assert.deepEqual(bodies, []);
});

test('incoming: the expectation is matched without regard to case, and a route a policy answers never reaches the upstream', async (t) => {
  const { gw, bodies } = await gateway(t);
  const ok = await rawRequest(
    gw.port,
    'POST /echo HTTP/1.1\r\nHost: a\r\nEXPECT: 100-Continue\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi',
    5000,
  );
  assert.match(ok, /^HTTP\/1\.1 100 Continue\r\n/);
  assert.equal(statusOf(ok.slice(ok.indexOf('\r\n\r\n') + 4)), 200, ok);
  const refused = await rawRequest(
    gw.port,
    'POST /closed HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi',
    5000,
  );
  assert.equal(statusOf(refused.slice(refused.indexOf('\r\n\r\n') + 4)), 403, refused);
  assert.deepEqual(bodies, ['hi'], 'only the open route forwarded its body');
});
