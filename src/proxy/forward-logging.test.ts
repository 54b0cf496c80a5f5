import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { createHash } from 'node:crypto';
import { startTestGateway, startUpstream } from '../../testing/harness.js';

test('forward logging: a large response streams through intact, with backpressure from a slow client', async (t) => {
  const chunk = Buffer.alloc(64 * 1024, 7);
  const chunks = 64; // 4 MiB: far more than socket buffers hold, so the gateway must wait for 'drain'
  const upstream = await startUpstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': chunk.length * chunks });
    let sent = 0;
    const more = () => {
      while (sent < chunks) {
        sent++;
        if (!res.write(chunk)) return void res.once('drain', more);
      }
      res.end();
    };
    more();
  });
  const gw = await startTestGateway({
    upstreams: { u: { targets: [{ url: upstream.url }] } },
    routes: [{ name: 'r', match: { prefix: '/' }, upstream: 'u' }],
  });
  t.after(async () => {
    await gw.close();
    await upstream.close();
  });
  const expected = createHash('sha256');
  for (let i = 0; i < chunks; i++) expected.update(chunk);
  const received = await new Promise<{ size: number; digest: string }>((resolve, reject) => {
    http
      .get(`${gw.url}/big`, { agent: false }, (res) => {
        const hash = createHash('sha256');
        let size = 0;
        res.on('data', (c: Buffer) => {
          hash.update(c);
          size += c.length;
          // Read slowly: pause after each chunk so the gateway's writes to us back up.
          res.pause();
          setImmediate(() => res.resume());
        });
        res.on('end', () => resolve({ size, digest: hash.digest('hex') }));
        res.on('error', reject);
      })
      .on('error', reject);
  });
  assert.equal(received.size, chunk.length * chunks);
  assert.equal(received.digest, expected.digest('hex'));
  const line = gw.logs.find((l) => l.msg === 'request' && l.path === '/big');
  assert.equal(line?.status, 200);
  assert.equal(line?.aborted, undefined);
});

test('forward logging: a client that goes away mid-response cancels the upstream request and is logged as aborted', async (t) => {
  let upstreamClosed!: () => void;
  const closed = new Promise<void>((resolve) => (upstreamClosed = resolve));
  const upstream = await startUpstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('first part\n'); // and never end
    res.on('close', () => upstreamClosed());
  });
  const gw = await startTestGateway({
    upstreams: { u: { targets: [{ url: upstream.url }] } },
    routes: [{ name: 'r', match: { prefix: '/' }, upstream: 'u' }],
  });
  t.after(async () => {
    await gw.close();
    await upstream.close();
  });
  await new Promise<void>((resolve, reject) => {
    const req = http.get(`${gw.url}/slow`, { agent: false }, (res) => {
      res.once('data', () => {
        req.destroy();
        resolve();
      });
    });
    req.on('error', () => undefined);
    req.on('close', () => resolve());
    setTimeout(() => reject(new Error('no first chunk')), 5000).unref();
  });
  await closed; // the gateway aborted its upstream request
  for (let i = 0; i < 100 && !gw.logs.some((l) => l.msg === 'request' && l.path === '/slow'); i++)
    await new Promise((r) => setTimeout(r, 20));
  const line = gw.logs.find((l) => l.msg === 'request' && l.path === '/slow');
  assert.equal(line?.aborted, true);
  assert.equal(line?.route, 'r');
  assert.equal(typeof line?.ms, 'number');
  assert.equal(line?.problem, undefined);
});

test('forward logging: an unreachable upstream answers 502 problem+json and the access line names the problem', async (t) => {
  const gone = await startUpstream((_req, res) => res.end());
  const url = gone.url;
  await gone.close();
  const gw = await startTestGateway({
    upstreams: { u: { targets: [{ url }] } },
    routes: [{ name: 'r', match: { prefix: '/' }, upstream: 'u' }],
  });
  t.after(() => gw.close());
  const res = await fetch(`${gw.url}/x`);
  assert.equal(res.status, 502);
  assert.equal(res.headers.get('content-type'), 'application/problem+json');
  const line = gw.logs.find((l) => l.msg === 'request' && l.path === '/x');
  assert.equal(line?.problem, 'bad-gateway');
  assert.equal(typeof line?.upstream_error, 'string');
});
