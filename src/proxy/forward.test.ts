/**
 * Forwarding behaviour a user relies on: streaming both ways with flat memory, timeouts and failures mapped to
 * 502/504, client aborts cancelling the upstream request, and no leaked sockets afterwards.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { startTestGateway, startUpstream, httpRequest } from '../../testing/harness.js';

const MB = 1024 * 1024;

function chunkSource(total: number, chunk = 64 * 1024): Readable {
  let sent = 0;
  const block = Buffer.alloc(chunk, 0x61);
  return new Readable({
    read() {
      if (sent >= total) return this.push(null);
      const n = Math.min(chunk, total - sent);
      sent += n;
      this.push(n === chunk ? block : block.subarray(0, n));
    },
  });
}

/** Resolves once `cond` holds, checking after each turn of the event loop (bounded). */
async function until(cond: () => boolean, limitMs = 5000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('forward: a 50 MB body streams through in both directions with backpressure, never buffered whole', async (t) => {
  const size = 50 * MB;
  let upstreamReceived = 0;
  let upstreamSent = 0;
  let holdUpload: http.IncomingMessage | undefined;
  const upstream = await startUpstream((req, res) => {
    if (req.method === 'POST') {
      const hash = createHash('sha256');
      req.on('data', (c: Buffer) => {
        hash.update(c);
        upstreamReceived += c.length;
        // Stop reading after 1 MB until the test says so: a streaming gateway must stall the client too.
        if (upstreamReceived >= MB && holdUpload === undefined) {
          holdUpload = req;
          req.pause();
        }
      });
      req.on('end', () => res.end(JSON.stringify({ bytes: upstreamReceived, sha256: hash.digest('hex') })));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size });
    const source = chunkSource(size);
    source.on('data', (c: Buffer) => (upstreamSent += c.length));
    source.pipe(res);
  });
  const gw = await startTestGateway({
    upstreams: { u: { targets: [{ url: upstream.url }] } },
    defaults: { max_body_bytes: 64 * MB },
    routes: [{ name: 'big', match: { prefix: '/' }, upstream: 'u' }],
  });
  t.after(async () => {
    await gw.close();
    await upstream.close();
  });

  const expected = createHash('sha256');
  const block = Buffer.alloc(64 * 1024, 0x61);
  for (let i = 0; i < size / block.length; i++) expected.update(block);
  const expectedHash = expected.digest('hex');

  // Upload: while the upstream is not reading, the client can only get a few socket buffers ahead.
  let clientSent = 0;
  const source = chunkSource(size);
  source.on('data', (c: Buffer) => (clientSent += c.length));
  const req = http.request(gw.url + '/upload', { method: 'POST', headers: { 'content-length': size }, agent: false });
  source.pipe(req);
  await until(() => holdUpload !== undefined);
  // Let the pipes settle into their stalled state.
  let last = -1;
  while (last !== clientSent) {
    last = clientSent;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(clientSent < 16 * MB, `client got ${Math.round(clientSent / MB)} MB ahead of a stalled upstream`);
  holdUpload!.resume();
  const [res] = (await once(req, 'response')) as [http.IncomingMessage];
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  assert.deepEqual(JSON.parse(Buffer.concat(chunks).toString()), { bytes: size, sha256: expectedHash });

  // Download: while the client is not reading, the upstream can only get a few socket buffers ahead.
  const get = http.get(gw.url + '/download', { agent: false });
  const [down] = (await once(get, 'response')) as [http.IncomingMessage];
  down.pause();
  await until(() => upstreamSent > 0);
  last = -1;
  while (last !== upstreamSent) {
    last = upstreamSent;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(upstreamSent < 16 * MB, `upstream got ${Math.round(upstreamSent / MB)} MB ahead of a stalled client`);
  const downloadHash = createHash('sha256');
  let downloaded = 0;
  down.resume();
  for await (const c of down) {
    downloaded += (c as Buffer).length;
    downloadHash.update(c as Buffer);
  }
  assert.equal(downloaded, size);
  assert.equal(downloadHash.digest('hex'), expectedHash);

  // A chunked upload (no Content-Length) streams too.
  holdUpload = undefined;
  upstreamReceived = 0;
  const chunked = http.request(gw.url + '/upload', { method: 'POST', agent: false });
  chunkSource(8 * MB).pipe(chunked);
  await until(() => holdUpload !== undefined);
  holdUpload!.resume();
  const [res2] = (await once(chunked, 'response')) as [http.IncomingMessage];
  let text = '';
  for await (const c of res2) text += c;
  assert.equal(JSON.parse(text).bytes, 8 * MB);
});

test('forward: an upstream that does not answer in time gives 504; one that stalls mid-body ends the response', async (t) => {
  const upstream = await startUpstream((req, res) => {
    if (req.url === '/stall-body') {
      res.writeHead(200, { 'content-length': 100 });
      res.write('partial');
      return; // never finishes
    }
    // never answers
  });
  const gw = await startTestGateway({
    upstreams: { u: { targets: [{ url: upstream.url }] } },
    routes: [{ name: 'slow', match: { prefix: '/' }, upstream: 'u', timeouts: { headers_ms: 200, body_idle_ms: 200 } }],
  });
  t.after(async () => {
    await gw.close();
    await upstream.close();
  });
  const started = Date.now();
  const answer = await httpRequest(gw.url + '/slow');
  assert.equal(answer.status, 504);
  assert.equal(JSON.parse(answer.body).type, 'https://kycgate.dev/problems/gateway-timeout');
  assert.ok(Date.now() - started < 2000);

  const req = http.get(gw.url + '/stall-body', { agent: false });
  const [res] = (await once(req, 'response')) as [http.IncomingMessage];
  assert.equal(res.statusCode, 200);
  res.on('error', () => undefined);
  res.resume();
  // The body can never be complete: the gateway ends the client response instead of hanging.
  await new Promise((r) => res.on('close', r));
  assert.equal(res.complete, false);

  // The gateway keeps serving after upstream timeouts.
  const again = await httpRequest(gw.url + '/slow');
  assert.equal(again.status, 504);
});

test('forward: an unreachable upstream gives 502 problem+json without upstream detail', async (t) => {
  const closed = net.createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', () => r()));
  const port = (closed.address() as net.AddressInfo).port;
  await new Promise<void>((r) => closed.close(() => r()));
  const gw = await startTestGateway({
    upstreams: { down: { targets: [{ url: `http://127.0.0.1:${port}` }] } },
    routes: [{ name: 'down', match: { prefix: '/' }, upstream: 'down' }],
  });
  t.after(() => gw.close());
  const answer = await httpRequest(gw.url + '/');
  assert.equal(answer.status, 502);
  const body = JSON.parse(answer.body);
  assert.equal(body.type, 'https://kycgate.dev/problems/bad-gateway');
  assert.doesNotMatch(answer.body, /ECONNREFUSED|127\.0\.0\.1/);
});

test('forward: an upstream reset mid-response ends the client response cleanly and the next request works', async (t) => {
  const upstream = await startUpstream((req, res) => {
    if (req.url === '/reset') {
      res.writeHead(200, { 'content-length': 1000 });
      res.write('x'.repeat(10), () => req.socket.destroy());
      return;
    }
    res.end('fine');
  });
  const gw = await startTestGateway({
    upstreams: { u: { targets: [{ url: upstream.url }] } },
    routes: [{ name: 'r', match: { prefix: '/' }, upstream: 'u' }],
  });
  t.after(async () => {
    await gw.close();
    await upstream.close();
  });
  const req = http.get(gw.url + '/reset', { agent: false });
  const [res] = (await once(req, 'response')) as [http.IncomingMessage];
  res.on('error', () => undefined);
  res.resume();
  await new Promise((r) => res.on('close', r));
  assert.equal(res.complete, false);
  const next = await httpRequest(gw.url + '/ok');
  assert.equal(next.body, 'fine');
});

test('forward: a client abort cancels the upstream request and leaves no socket behind', async (t) => {
  let upstreamClosed: (() => void) | undefined;
  const closedSeen = new Promise<void>((r) => (upstreamClosed = r));
  const upstream = await startUpstream((req, res) => {
    if (req.url === '/hold') {
      res.on('close', () => upstreamClosed!());
      return; // hold the request open until the gateway gives up on it
    }
    res.end('ok');
  });
  const gw = await startTestGateway({
    upstreams: { u: { targets: [{ url: upstream.url }] } },
    routes: [{ name: 'r', match: { prefix: '/' }, upstream: 'u' }],
  });
  t.after(async () => {
    await gw.close();
    await upstream.close();
  });
  const req = http.get(gw.url + '/hold', { agent: false });
  req.on('error', () => undefined);
  // Abort once the upstream has the request.
  while (upstream.requests === 0) await new Promise((r) => setImmediate(r));
  req.destroy();
  await closedSeen; // the upstream saw its request cancelled
  const pool = gw.gateway.current.routes[0]!.upstream!.targets[0]!;
  // Outstanding bookkeeping returns to zero once the abort is processed.
  for (let i = 0; i < 100 && pool.outstanding !== 0; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(pool.outstanding, 0);
  // Many aborts later, the gateway still answers and its listener has no stuck connections.
  for (let i = 0; i < 20; i++) {
    const r = http.get(gw.url + '/hold', { agent: false });
    r.on('error', () => undefined);
    r.on('response', () => undefined);
    setTimeout(() => r.destroy(), 5);
  }
  const ok = await httpRequest(gw.url + '/ok');
  assert.equal(ok.body, 'ok');
  for (let i = 0; i < 200; i++) {
    const count = await new Promise<number>((r) => gw.gateway.listeners[0]!.server.getConnections((_e, n) => r(n)));
    if (count === 0) break;
    await new Promise((r) => setTimeout(r, 10));
  }
  const remaining = await new Promise<number>((r) => gw.gateway.listeners[0]!.server.getConnections((_e, n) => r(n)));
  assert.equal(remaining, 0, 'no client connection left open');
});

test('forward: round robin alternates targets; least outstanding avoids a busy one', async (t) => {
  const a = await startUpstream((req, res) =>
    req.url === '/busy' ? setTimeout(() => res.end('a'), 300) : res.end('a'),
  );
  const b = await startUpstream((_req, res) => res.end('b'));
  const gw = await startTestGateway({
    upstreams: {
      rr: { targets: [{ url: a.url }, { url: b.url }] },
      lo: { targets: [{ url: a.url }, { url: b.url }], balance: 'least_outstanding' },
      weighted: { targets: [{ url: a.url, weight: 3 }, { url: b.url }] },
    },
    routes: [
      { name: 'rr', match: { prefix: '/rr' }, upstream: 'rr', strip_prefix: '/rr' },
      { name: 'lo', match: { prefix: '/lo' }, upstream: 'lo', strip_prefix: '/lo' },
      { name: 'w', match: { prefix: '/w' }, upstream: 'weighted', strip_prefix: '/w' },
    ],
  });
  t.after(async () => {
    await gw.close();
    await a.close();
    await b.close();
  });
  const seen: string[] = [];
  for (let i = 0; i < 6; i++) seen.push((await httpRequest(gw.url + '/rr/x')).body);
  assert.deepEqual(seen, ['a', 'b', 'a', 'b', 'a', 'b']);
  const w: string[] = [];
  for (let i = 0; i < 8; i++) w.push((await httpRequest(gw.url + '/w/x')).body);
  assert.equal(w.filter((x) => x === 'a').length, 6);
  // Occupy target a, then every request while it is busy goes to b.
  const busy = httpRequest(gw.url + '/lo/busy');
  while (a.requests < 9) await new Promise((r) => setImmediate(r));
  const during: string[] = [];
  for (let i = 0; i < 4; i++) during.push((await httpRequest(gw.url + '/lo/x')).body);
  assert.deepEqual(during, ['b', 'b', 'b', 'b']);
  assert.equal((await busy).body, 'a');
});

test('a request refused for its declared body size names no upstream and does not advance the balancing', async (t) => {
  const a = await startUpstream((_req, res) => res.end('a'));
  const b = await startUpstream((_req, res) => res.end('b'));
  const gw = await startTestGateway({
    upstreams: { app: { targets: [{ url: a.url }, { url: b.url }] } },
    routes: [{ name: 'r', match: { prefix: '/' }, upstream: 'app', max_body_bytes: 10 }],
  });
  t.after(async () => {
    await gw.close();
    await a.close();
    await b.close();
  });
  const seen: Array<string | undefined> = [];
  gw.gateway.services.events.subscribe({ onRequestComplete: (ctx) => void seen.push(ctx.target) });
  const first = await httpRequest(gw.url + '/x');
  const refused = await httpRequest(gw.url + '/x', {
    method: 'POST',
    headers: { 'content-type': 'text/plain' },
    body: 'x'.repeat(100),
  });
  assert.equal(refused.status, 413);
  const second = await httpRequest(gw.url + '/x');
  assert.notEqual(first.body, second.body, 'the refused request took no turn in the round robin');
  assert.equal(seen[1], undefined, 'the refused request names no upstream target');
  assert.ok(seen[0] !== undefined && seen[2] !== undefined);
});
