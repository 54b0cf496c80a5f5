/**
 * WebSocket relaying and other upgrade requests, over real sockets: the handshake goes through the route's policies,
 * the upstream's 101 reaches the client, bytes flow both ways, and whatever is not a valid WebSocket handshake on a
 * route that relays them is answered like any request and never upgraded.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import { createHash } from 'node:crypto';
import tls from 'node:tls';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { WebSocket } from 'undici';
import { issueCertificate } from '../workload-identity/certificates.js';
import { startTestGateway } from '../../testing/harness.js';
import { freePort } from '../../testing/ports.js';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const accept = (key: string) =>
  createHash('sha1')
    .update(key + GUID)
    .digest('base64');

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
}

/**
 * An upstream that accepts WebSocket handshakes. In `raw` mode it then answers every chunk with the chunk
 * upper-cased (and `bye` with `BYE` and the end of the connection); in `frames` mode it speaks RFC 6455 frames
 * (short unfragmented ones) and echoes text as `echo:<text>`. `relayClosed[i]` settles when the i-th accepted
 * connection has closed on the upstream's side.
 */
async function wsUpstream(mode: 'raw' | 'frames') {
  const seen: Seen[] = [];
  const relayClosed: Array<Promise<unknown>> = [];
  const server = http.createServer((req, res) => {
    seen.push({ method: req.method!, url: req.url!, headers: req.headers });
    res.end('plain answer');
  });
  server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket) => {
    seen.push({ method: req.method!, url: req.url!, headers: req.headers });
    if (req.url === '/refuse') {
      socket.end(
        'HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\ncontent-length: 7\r\nconnection: close\r\n\r\nno, sir',
      );
      return;
    }
    const protocol = req.headers['sec-websocket-protocol']
      ? `sec-websocket-protocol: ${String(req.headers['sec-websocket-protocol']).split(',')[0]!.trim()}\r\n`
      : '';
    relayClosed.push(once(socket, 'close'));
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: ` +
        `Upgrade\r\nsec-websocket-accept: ` +
        `${accept(String(req.headers['sec-websocket-key']))}\r\n${protocol}x-upstream: yes\r\n\r\n`,
    );
    if (mode === 'raw') {
      socket.on('data', (c: Buffer) =>
        c.toString() === 'bye' ? socket.end('BYE') : socket.write(c.toString().toUpperCase()),
      );
      socket.on('end', () => socket.end());
      return;
    }
    socket.on('data', (frame: Buffer) => {
      const opcode = frame[0]! & 0x0f;
      const length = frame[1]! & 0x7f;
      const mask = frame.subarray(2, 6);
      const payload = Buffer.from(frame.subarray(6, 6 + length).map((b, i) => b ^ mask[i % 4]!));
      if (opcode === 0x8) {
        socket.end(Buffer.from([0x88, 0x00]));
        return;
      }
      const text = Buffer.from(`echo:${payload.toString()}`);
      socket.write(Buffer.concat([Buffer.from([0x81, text.length]), text]));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    seen,
    relayClosed,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** Opens a TCP connection, sends `head` and resolves with the socket and the answer's head (and what followed it). */
async function handshake(
  port: number,
  head: string,
  secure = false,
): Promise<{ socket: net.Socket; status: number; headers: Map<string, string>; rest: Buffer }> {
  const socket = secure
    ? tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false })
    : net.connect(port, '127.0.0.1');
  await once(socket, secure ? 'secureConnect' : 'connect');
  socket.write(head);
  let buffered = Buffer.alloc(0);
  for (;;) {
    const [chunk] = (await once(socket, 'data')) as [Buffer];
    buffered = Buffer.concat([buffered, chunk]);
    const end = buffered.indexOf('\r\n\r\n');
    if (end < 0) continue;
    const lines = buffered.subarray(0, end).toString('latin1').split('\r\n');
    const headers = new Map<string, string>();
    for (const line of lines.slice(1)) {
      const i = line.indexOf(':');
      headers.set(line.slice(0, i).toLowerCase(), line.slice(i + 1).trim());
    }
    return { socket, status: Number(lines[0]!.split(' ')[1]), headers, rest: buffered.subarray(end + 4) };
  }
}

/** Everything the socket still sends until the peer closes it. */
async function rest(socket: net.Socket, already: Buffer): Promise<string> {
  const chunks = [already];
  socket.on('data', (c: Buffer) => chunks.push(c));
  await once(socket, 'close');
  return Buffer.concat(chunks).toString();
}

/** One round trip through a relay to the raw-mode upstream, then the client closes and waits for the close. */
async function roundTripAndClose(socket: net.Socket, text: string): Promise<void> {
  socket.write(text);
  const [echo] = (await once(socket, 'data')) as [Buffer];
  assert.equal(echo.toString(), text.toUpperCase());
  socket.end();
  await once(socket, 'close');
}

const wsHead = (path: string, extra = '') =>
  `GET ${path} HTTP/1.1\r\nHost: gw.test\r\nUpgrade: websocket\r\nConnection: ` +
  `Upgrade\r\nSec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`;

const RELAY = { name: 'live', match: { prefix: '/' }, upstream: 'ws', websocket: true };

/** A WebSocket upstream and a gateway in front of it with `routes` (one relaying route by default), both closed after the test. */
async function relay(
  t: TestContext,
  mode: 'raw' | 'frames',
  routes: Array<Record<string, unknown>> = [RELAY],
  extra: Record<string, unknown> = {},
) {
  const upstream = await wsUpstream(mode);
  const gw = await startTestGateway({ ...extra, upstreams: { ws: { targets: [{ url: upstream.url }] } }, routes });
  t.after(async () => {
    await gw.close();
    await upstream.close();
  });
  return { upstream, gw };
}

test('websocket: a handshake on a relaying route reaches the upstream, its 101 reaches the client, and bytes flow both ways', async (t) => {
  const { upstream, gw } = await relay(t, 'raw', [
    { name: 'live', match: { prefix: '/live' }, upstream: 'ws', websocket: true },
  ]);
  const { socket, status, headers } = await handshake(gw.port, wsHead('/live/feed?x=1', 'X-Kyc-Status: forged\r\n'));
  assert.equal(status, 101);
  assert.equal(headers.get('upgrade'), 'websocket');
  assert.equal(headers.get('connection'), 'Upgrade');
  assert.equal(headers.get('sec-websocket-accept'), accept(KEY), "the upstream's accept value, unchanged");
  assert.equal(headers.get('x-upstream'), 'yes');
  assert.match(headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);

  const seen = upstream.seen[0]!;
  assert.equal(seen.method, 'GET');
  assert.equal(seen.url, '/live/feed?x=1');
  assert.equal(seen.headers.upgrade, 'websocket');
  assert.equal(seen.headers['sec-websocket-key'], KEY);
  assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1');
  assert.equal(seen.headers['x-request-id'], headers.get('x-request-id'));

  await roundTripAndClose(socket, 'ping');
  // The exchange ends when both sides closed: one access line, status 101.
  while (!gw.logs.some((l) => l.msg === 'request')) await new Promise((r) => setImmediate(r));
  const line = gw.logs.find((l) => l.msg === 'request')!;
  assert.equal(line.status, 101);
  assert.equal(line.route, 'live');
  assert.equal(line.aborted, undefined, 'a relay closed by its client is not an abort');
});

test('websocket: a real WebSocket client talks to the upstream through the gateway', async (t) => {
  const { gw } = await relay(t, 'frames');
  const ws = new WebSocket(gw.url.replace('http://', 'ws://') + '/chat', ['v1.chat']);
  await once(ws as unknown as EventTarget, 'open');
  assert.equal(ws.protocol, 'v1.chat');
  ws.send('hello');
  const [message] = (await once(ws as unknown as EventTarget, 'message')) as [MessageEvent];
  assert.equal(message.data, 'echo:hello');
  ws.close();
  await once(ws as unknown as EventTarget, 'close');
});

test('websocket: the handshake goes through the route policies: over its rate limit it is refused and never reaches the upstream', async (t) => {
  const { upstream, gw } = await relay(t, 'raw', [
    {
      name: 'live',
      match: { prefix: '/' },
      upstream: 'ws',
      websocket: true,
      policies: [{ 'rate-limit': { limits: [{ name: 'one', rate: 1, per: 'minute', key: ['ip'] }] } }],
    },
  ]);
  const first = await handshake(gw.port, wsHead('/a'));
  assert.equal(first.status, 101);
  first.socket.destroy();
  const second = await handshake(gw.port, wsHead('/b'));
  assert.equal(second.status, 429);
  assert.equal(second.headers.get('content-type'), 'application/problem+json');
  const body = await rest(second.socket, second.rest);
  assert.match(body, /rate-limited/);
  assert.deepEqual(
    upstream.seen.map((s) => s.url),
    ['/a'],
  );
});

test('websocket: an upstream that refuses the handshake is answered as is, and the connection is closed', async (t) => {
  const { gw } = await relay(t, 'raw');
  const refused = await handshake(gw.port, wsHead('/refuse'));
  assert.equal(refused.status, 403);
  assert.equal(await rest(refused.socket, refused.rest), 'no, sir');
});

test('websocket: malformed or ambiguous handshakes are refused with 400 and never reach the upstream', async (t) => {
  const { upstream, gw } = await relay(t, 'raw');
  const bad = [
    `GET / HTTP/1.1\r\nHost: gw.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n`, // no key
    wsHead('/', `Sec-WebSocket-Key: ${KEY}\r\n`), // the key twice
    wsHead('/').replace('Sec-WebSocket-Version: 13', 'Sec-WebSocket-Version: 8'),
    wsHead('/').replace('GET', 'POST'),
    wsHead('/', 'Upgrade: websocket\r\n'), // Upgrade twice
    wsHead('/').replace('Sec-WebSocket-Version: 13\r\n', 'Sec-WebSocket-Version: 13\r\nContent-Length: 4\r\n') + 'abcd', // a body
  ];
  for (const head of bad) {
    const r = await handshake(gw.port, head);
    assert.equal(r.status, 400, head);
    assert.equal(r.headers.get('content-type'), 'application/problem+json');
    assert.match(await rest(r.socket, r.rest), /bad-request/);
  }
  assert.equal(upstream.seen.length, 0);
});

test('websocket: without websocket on the route, and for other upgrades (h2c), the request is an ordinary one and nothing is upgraded', async (t) => {
  const { upstream, gw } = await relay(t, 'raw', [
    { name: 'plain', match: { prefix: '/plain' }, upstream: 'ws' },
    { name: 'live', match: { prefix: '/live' }, upstream: 'ws', websocket: true },
  ]);
  const plain = await handshake(gw.port, wsHead('/plain/x'));
  assert.equal(plain.status, 200);
  assert.equal(plain.headers.get('connection'), 'close');
  assert.equal(await rest(plain.socket, plain.rest), 'plain answer');

  const h2c = await handshake(
    gw.port,
    'GET /live/x HTTP/1.1\r\nHost: gw.test\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n',
  );
  assert.equal(h2c.status, 200);
  assert.equal(await rest(h2c.socket, h2c.rest), 'plain answer');

  assert.deepEqual(
    upstream.seen.map((s) => [s.url, s.headers.upgrade, s.headers['http2-settings']]),
    [
      ['/plain/x', undefined, undefined],
      ['/live/x', undefined, undefined],
    ],
    'as ordinary requests, without Upgrade or the headers Connection named',
  );
});

test('websocket: a drain that runs out of time closes relayed connections', async (t) => {
  const { upstream, gw } = await relay(t, 'raw');
  const { socket, status } = await handshake(gw.port, wsHead('/'));
  assert.equal(status, 101);
  const closed = once(socket, 'close');
  const started = Date.now();
  await gw.gateway.stop(300);
  await closed;
  assert.ok(Date.now() - started >= 250, 'the relay was let run until the deadline');
  await upstream.relayClosed[0]; // and its upstream side was closed with it
});

test('websocket: relayed over an HTTPS listener (wss) as over plain HTTP', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kycgate-wss-'));
  const issued = await issueCertificate({ subject: 'CN=localhost', dns: ['localhost'], ips: ['127.0.0.1'] });
  writeFileSync(path.join(dir, 'cert.pem'), issued.certPem);
  writeFileSync(path.join(dir, 'key.pem'), issued.keyPem);
  const { upstream, gw } = await relay(t, 'raw', [RELAY], {
    listeners: [{ name: 'https', port: 0, tls: { cert: path.join(dir, 'cert.pem'), key: path.join(dir, 'key.pem') } }],
  });
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const { socket, status, headers } = await handshake(gw.port, wsHead('/secure'), true);
  assert.equal(status, 101);
  assert.equal(headers.get('sec-websocket-accept'), accept(KEY));
  assert.equal(upstream.seen[0]!.headers['x-forwarded-proto'], 'https');
  await roundTripAndClose(socket, 'over tls');
});

test('websocket: a relay outlives the client timeouts meant for requests (headers_timeout_ms, request_timeout_ms)', async (t) => {
  const { gw } = await relay(t, 'raw', [RELAY], { server: { headers_timeout_ms: 200, request_timeout_ms: 300 } });
  const { socket, status } = await handshake(gw.port, wsHead('/'));
  assert.equal(status, 101);
  // Quiet for longer than both timeouts and several of Node's checks of them (every 100 ms here).
  await new Promise((resolve) => setTimeout(resolve, 800));
  assert.equal(socket.destroyed, false);
  await roundTripAndClose(socket, 'still there');
});

test('websocket: a relay silent both ways for timeouts.websocket_idle_ms is closed on both sides', async (t) => {
  const { upstream, gw } = await relay(t, 'raw', [{ ...RELAY, timeouts: { websocket_idle_ms: 300 } }]);
  const { socket, status } = await handshake(gw.port, wsHead('/'));
  assert.equal(status, 101);
  const opened = Date.now();
  // Traffic keeps it open: an exchange every 100 ms for 600 ms.
  for (let i = 0; i < 6; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    socket.write('tick');
    await once(socket, 'data');
  }
  const quietFrom = Date.now();
  assert.ok(quietFrom - opened >= 600 && !socket.destroyed, 'open while it carries bytes');
  await once(socket, 'close');
  assert.ok(Date.now() - quietFrom >= 250, 'closed only after the silence');
  await upstream.relayClosed[0]; // the upstream side too
  while (!gw.logs.some((l) => l.msg === 'request')) await new Promise((r) => setImmediate(r));
  assert.equal(gw.logs.find((l) => l.msg === 'request')!.status, 101);
});

test('websocket: an upstream that ends the relay ends it for the client, after what it still sent', async (t) => {
  const { upstream, gw } = await relay(t, 'raw');
  const { socket, status, rest: early } = await handshake(gw.port, wsHead('/'));
  assert.equal(status, 101);
  socket.write('bye');
  assert.equal(await rest(socket, early), 'BYE', 'the last bytes arrive before the close');
  await upstream.relayClosed[0];
  while (!gw.logs.some((l) => l.msg === 'request')) await new Promise((r) => setImmediate(r));
  assert.equal(gw.logs.find((l) => l.msg === 'request')!.status, 101);
});

test('websocket: with the upstream down, the handshake is answered 502 problem+json and the connection closed', async (t) => {
  const gw = await startTestGateway({
    upstreams: { gone: { targets: [{ url: `http://127.0.0.1:${await freePort()}` }] } }, // nothing listens there
    routes: [{ ...RELAY, upstream: 'gone' }],
  });
  t.after(() => gw.close());
  const r = await handshake(gw.port, wsHead('/'));
  assert.equal(r.status, 502);
  assert.equal(r.headers.get('content-type'), 'application/problem+json');
  assert.match(await rest(r.socket, r.rest), /bad-gateway/);
});
