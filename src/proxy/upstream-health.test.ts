/**
 * Passive health and connect retries, as an operator relies on them: a dead target in a group costs clients no
 * failed request, is taken out of rotation after its failures, comes back on probation once its time is up, and a
 * request that reached a target is never sent twice.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import http, { type IncomingMessage } from 'node:http';
import net from 'node:net';
import { EventEmitter, once } from 'node:events';
import { freePort } from '../../testing/ports.js';
import { startTestGateway, startUpstream, httpRequest } from '../../testing/harness.js';

type Line = Record<string, unknown>;
const accessLines = (logs: Line[]) => logs.filter((l) => l.msg === 'request');
const healthLines = (logs: Line[], msg: RegExp) => logs.filter((l) => typeof l.msg === 'string' && msg.test(l.msg));

/**
 * A group of a target nobody listens on (connections refused) and a live one that answers `prefix` + its body, in
 * that order, behind a gateway; all closed after the test.
 */
async function deadAndLive(t: TestContext, prefix: (req: IncomingMessage) => string) {
  const live = await startUpstream((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => res.end(prefix(req) + Buffer.concat(chunks).toString()));
  });
  const dead = `http://127.0.0.1:${await freePort()}`;
  const gw = await startTestGateway({
    upstreams: { app: { targets: [{ url: dead }, { url: live.url }] } },
    routes: [{ name: 'r', match: { prefix: '/' }, upstream: 'app' }],
  });
  t.after(async () => {
    await gw.close();
    await live.close();
  });
  return { live, dead, gw };
}

test('upstream health: a target that refuses connections costs no failed request and is taken out of rotation after 3 failures', async (t) => {
  const { live, dead, gw } = await deadAndLive(t, (req) => `live:${req.method}:`);

  const statuses: number[] = [];
  const bodies: string[] = [];
  for (let i = 0; i < 10; i++) {
    const r = await httpRequest(gw.url + '/x');
    statuses.push(r.status);
    bodies.push(r.body);
  }
  assert.deepEqual(statuses, Array(10).fill(200), 'every request answered by the live target');
  assert.ok(bodies.every((b) => b === 'live:GET:'));
  assert.equal(live.requests, 10);

  // Round robin sent every other request to the dead target: the 1st, 3rd and 5th were retried, then it was out.
  const retried = accessLines(gw.logs).map((l) => l.upstream_retries ?? 0);
  assert.deepEqual(retried, [1, 0, 1, 0, 1, 0, 0, 0, 0, 0]);
  const ejected = healthLines(gw.logs, /taken out of rotation/);
  assert.equal(ejected.length, 1);
  assert.equal(ejected[0]!.target, dead);
  assert.equal(ejected[0]!.upstream, 'app');
  assert.equal(ejected[0]!.level, 40, 'a warning');
  assert.equal(ejected[0]!.reason, '3 failed exchanges in a row');

  // A body is retried whole: the request was never sent to the dead target, whether its length was declared or not.
  const sized = await httpRequest(gw.url + '/post', {
    method: 'POST',
    body: 'hello',
    headers: { 'content-length': '5' },
  });
  assert.equal(sized.body, 'live:POST:hello');

  const metrics = await httpRequest(gw.adminUrl + '/metrics');
  assert.match(metrics.body, /kycgate_events_total\{type="upstream\.ejected"\} 1/);
  assert.ok(
    metrics.body.includes(`kycgate_upstream_target_up{upstream="app",target="${dead}"} 0`),
    'the ejected target is reported out',
  );
  assert.ok(metrics.body.includes(`kycgate_upstream_target_up{upstream="app",target="${live.url}"} 1`));
});

test('upstream health: a chunked upload to a target that refuses connections reaches another one whole', async (t) => {
  const { gw } = await deadAndLive(t, () => '');
  // The first request goes to the dead target (round robin starts there) and is retried on the live one.
  const answer = await new Promise<string>((resolve, reject) => {
    const req = http.request(gw.url + '/up', { method: 'POST', agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve(`${res.statusCode} ${body}`));
    });
    req.on('error', reject);
    req.write('part one, ');
    setImmediate(() => req.end('part two'));
  });
  assert.equal(answer, '200 part one, part two');
  assert.equal(accessLines(gw.logs)[0]!.upstream_retries, 1);
});

test('upstream health: an ejected target gets traffic again after eject_ms, on probation: one more failure takes it out again', async (t) => {
  const a = await startUpstream((_req, res) => res.end('a'));
  const port = await freePort();
  const b = `http://127.0.0.1:${port}`;
  const gw = await startTestGateway({
    upstreams: {
      app: {
        targets: [{ url: a.url }, { url: b }],
        passive_health: { consecutive_failures: 2, eject_ms: 200 },
        connect_retries: 1,
      },
    },
    routes: [{ name: 'r', match: { prefix: '/' }, upstream: 'app' }],
  });
  t.after(async () => {
    await gw.close();
    await a.close();
  });
  const ejections = () => healthLines(gw.logs, /taken out of rotation/).length;
  const restorations = () => healthLines(gw.logs, /back in rotation/).length;
  /** Sends requests (each answered by a) until `done` holds; every answer must be a's. */
  const until = async (done: () => boolean) => {
    const deadline = Date.now() + 5000;
    while (!done()) {
      assert.equal((await httpRequest(gw.url + '/')).body, 'a');
      if (Date.now() > deadline) assert.fail('the condition was not reached');
    }
  };

  // a, b (refused, retried on a), a, b (refused again: out).
  for (let i = 0; i < 4; i++) assert.equal((await httpRequest(gw.url + '/')).body, 'a');
  assert.equal(ejections(), 1);
  const outAt = Date.now();

  // Still down when its time is up: let back in, the one request it gets is refused, and it is out again at once.
  await until(() => restorations() === 1);
  assert.ok(Date.now() - outAt >= 150, 'not before its ejection time was up');
  assert.equal(ejections(), 2, 'one failure on probation takes it out again');

  // Up again: once its time is up it answers, and both share the traffic.
  const revived = http.createServer((_req, res) => res.end('b'));
  revived.listen(port, '127.0.0.1');
  await once(revived, 'listening');
  t.after(() => new Promise<void>((r) => revived.close(() => r())));
  const deadline = Date.now() + 5000;
  while ((await httpRequest(gw.url + '/')).body !== 'b') if (Date.now() > deadline) assert.fail('b never came back');
  assert.equal(restorations(), 2);
  const next: string[] = [];
  for (let i = 0; i < 4; i++) next.push((await httpRequest(gw.url + '/')).body);
  assert.deepEqual(next.sort(), ['a', 'a', 'b', 'b'], 'both in rotation again');
  assert.equal(ejections(), 2);

  const metrics = await httpRequest(gw.adminUrl + '/metrics');
  assert.match(metrics.body, /kycgate_events_total\{type="upstream\.ejected"\} 2/);
  assert.match(metrics.body, /kycgate_events_total\{type="upstream\.restored"\} 2/);
});

test('upstream health: a POST that reached a target is never sent again, even when the target dropped it', async (t) => {
  let seen = 0;
  // Reads the request, then resets the connection without an answer.
  const dropper = net.createServer((socket) => {
    socket.once('data', () => {
      seen++;
      socket.resetAndDestroy();
    });
  });
  dropper.listen(0, '127.0.0.1');
  await once(dropper, 'listening');
  const live = await startUpstream((_req, res) => res.end('live'));
  const gw = await startTestGateway({
    upstreams: {
      app: {
        targets: [{ url: `http://127.0.0.1:${(dropper.address() as net.AddressInfo).port}` }, { url: live.url }],
        connect_retries: 1,
      },
    },
    routes: [{ name: 'r', match: { prefix: '/' }, upstream: 'app' }],
  });
  t.after(async () => {
    await gw.close();
    await live.close();
    await new Promise<void>((r) => dropper.close(() => r()));
  });
  const r = await httpRequest(gw.url + '/pay', { method: 'POST', body: 'once', headers: { 'content-length': '4' } });
  assert.equal(r.status, 502);
  assert.equal(seen, 1);
  assert.equal(live.requests, 0, 'not sent a second time');
  assert.equal(accessLines(gw.logs)[0]!.upstream_retries, undefined);
});

test('upstream health: without retries a dead target answers 502 until it is out; with every target out, traffic still goes to them', async (t) => {
  const a = await startUpstream((_req, res) => res.end('a'));
  const dead = `http://127.0.0.1:${await freePort()}`;
  const dead2 = `http://127.0.0.1:${await freePort()}`;
  const gw = await startTestGateway({
    upstreams: {
      app: {
        targets: [{ url: dead }, { url: a.url }],
        connect_retries: 0,
        passive_health: { consecutive_failures: 2 },
      },
      gone: { targets: [{ url: dead }, { url: dead2 }], passive_health: { consecutive_failures: 1 } },
      off: {
        targets: [{ url: dead2 }, { url: a.url }],
        connect_retries: 0,
        passive_health: { consecutive_failures: 0 },
      },
    },
    routes: [
      { name: 'app', match: { prefix: '/app' }, upstream: 'app' },
      { name: 'gone', match: { prefix: '/gone' }, upstream: 'gone' },
      { name: 'off', match: { prefix: '/off' }, upstream: 'off' },
    ],
  });
  t.after(async () => {
    await gw.close();
    await a.close();
  });
  const app: number[] = [];
  for (let i = 0; i < 6; i++) app.push((await httpRequest(gw.url + '/app')).status);
  assert.deepEqual(app, [502, 200, 502, 200, 200, 200]);

  // Both targets out after one failure each: requests still try them (and fail as the targets do), never a
  // gateway-made "no healthy upstream".
  const gone: string[] = [];
  for (let i = 0; i < 4; i++) {
    const r = await httpRequest(gw.url + '/gone');
    gone.push(`${r.status} ${(JSON.parse(r.body) as { type: string }).type}`);
  }
  assert.deepEqual(gone, Array(4).fill('502 https://kycgate.dev/problems/bad-gateway'));

  // Passive health off: the dead target keeps its share.
  const off: number[] = [];
  for (let i = 0; i < 6; i++) off.push((await httpRequest(gw.url + '/off')).status);
  assert.deepEqual(off, [502, 200, 502, 200, 502, 200]);
});

test('upstream health: a target that fails its active probes is out of rotation until it passes them again', async (t) => {
  let bHealthy = true;
  const a = await startUpstream((req, res) => res.end(req.url === '/healthz' ? 'ok' : 'a'));
  const b = await startUpstream((req, res) => {
    if (req.url === '/healthz') {
      res.statusCode = bHealthy ? 200 : 503;
      return res.end();
    }
    res.end('b');
  });
  const gw = await startTestGateway({
    upstreams: {
      app: {
        targets: [{ url: a.url }, { url: b.url + '/base' }],
        active_health: { path: '/healthz', interval_ms: 100, unhealthy_after: 2, healthy_after: 2 },
      },
    },
    routes: [{ name: 'r', match: { prefix: '/' }, upstream: 'app' }],
  });
  t.after(async () => {
    await gw.close();
    await a.close();
    await b.close();
  });
  const lines = (msg: RegExp) => healthLines(gw.logs, msg);
  /** Waits, request by request, until `done` holds (the probes run on their own timer). */
  const until = async (done: () => boolean) => {
    const deadline = Date.now() + 5000;
    while (!done()) {
      await httpRequest(gw.url + '/');
      if (Date.now() > deadline) assert.fail('not reached in time');
    }
  };
  const spread = async () => {
    const seen: string[] = [];
    for (let i = 0; i < 4; i++) seen.push((await httpRequest(gw.url + '/')).body);
    return seen.sort().join('');
  };
  assert.equal(await spread(), 'aabb', 'both in rotation from the start');

  bHealthy = false;
  await until(() => lines(/failed its health probes/).length === 1);
  const out = lines(/failed its health probes/)[0]!;
  assert.equal(out.target, b.url + '/base');
  assert.equal(out.reason, 'status 503');
  assert.equal(await spread(), 'aaaa', 'b is out of rotation');
  const during = (await httpRequest(gw.adminUrl + '/metrics')).body;
  assert.ok(
    during.includes(`kycgate_upstream_target_up{upstream="app",target="${b.url}/base"} 0`),
    'b is reported out',
  );
  assert.ok(during.includes(`kycgate_upstream_target_up{upstream="app",target="${a.url}"} 1`), 'a is reported in');

  bHealthy = true;
  await until(() => lines(/passed its health probes/).length === 1);
  assert.equal(await spread(), 'aabb', 'b is back');

  const metrics = await httpRequest(gw.adminUrl + '/metrics');
  assert.ok(
    metrics.body.includes(`kycgate_upstream_target_up{upstream="app",target="${b.url}/base"} 1`),
    'b is reported back',
  );
  assert.match(metrics.body, /kycgate_events_total\{type="upstream\.unhealthy"\} 1/);
  assert.match(metrics.body, /kycgate_events_total\{type="upstream\.healthy"\} 1/);
});

test('upstream health: an idempotent request whose connection was reset before any answer is sent again, once by default', async (t) => {
  // Reads each request; resets the connection for the first `drop` requests, answers the others.
  const dropper = (drop: number) => {
    const seen: string[] = [];
    const server = net.createServer((socket) => {
      socket.on('data', (chunk: Buffer) => {
        seen.push(chunk.toString('latin1').split(' ').slice(0, 2).join(' '));
        if (seen.length <= drop) socket.resetAndDestroy();
        else socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
      });
    });
    server.listen(0, '127.0.0.1');
    t.after(() => new Promise<void>((r) => server.close(() => r())));
    return { server, seen, url: () => `http://127.0.0.1:${(server.address() as net.AddressInfo).port}` };
  };
  const once1 = dropper(1);
  const always = dropper(100);
  const off = dropper(1);
  await Promise.all([once(once1.server, 'listening'), once(always.server, 'listening'), once(off.server, 'listening')]);
  const gw = await startTestGateway({
    upstreams: {
      once: { targets: [{ url: once1.url() }] },
      always: { targets: [{ url: always.url() }] },
      off: { targets: [{ url: off.url() }], idempotent_retries: 0 },
    },
    routes: [
      { name: 'once', match: { prefix: '/once' }, upstream: 'once' },
      { name: 'always', match: { prefix: '/always' }, upstream: 'always' },
      { name: 'off', match: { prefix: '/off' }, upstream: 'off' },
    ],
  });
  t.after(() => gw.close());

  // A single target: sent again to it, on another connection.
  const r = await httpRequest(gw.url + '/once/x');
  assert.equal(r.status, 200);
  assert.equal(r.body, 'ok');
  assert.deepEqual(once1.seen, ['GET /once/x', 'GET /once/x']);
  assert.equal(accessLines(gw.logs).find((l) => l.route === 'once')!.upstream_retries, 1);

  // Reset again: one retry only, then 502.
  assert.equal((await httpRequest(gw.url + '/always/x')).status, 502);
  assert.equal(always.seen.length, 2);

  // Off: the first reset is the answer.
  assert.equal((await httpRequest(gw.url + '/off/x')).status, 502);
  assert.equal(off.seen.length, 1);

  // A DELETE is idempotent too; a POST is not (the test above).
  const del = dropper(1);
  await once(del.server, 'listening');
  const gw2 = await startTestGateway({
    upstreams: { d: { targets: [{ url: del.url() }] } },
    routes: [{ name: 'd', match: { prefix: '/' }, upstream: 'd' }],
  });
  t.after(() => gw2.close());
  assert.equal((await httpRequest(gw2.url + '/item/1', { method: 'DELETE' })).status, 200);
  assert.deepEqual(del.seen, ['DELETE /item/1', 'DELETE /item/1']);
});

test('upstream health: a target that refuses the probes is out of rotation before any client request meets it', async (t) => {
  let served = 0; // client requests, not probes
  const a = await startUpstream((req, res) => {
    if (req.url !== '/healthz') served++;
    res.end('a');
  });
  const dead = `http://127.0.0.1:${await freePort()}`; // nothing listens there
  const gw = await startTestGateway({
    upstreams: {
      app: {
        targets: [{ url: dead }, { url: a.url }],
        active_health: { path: '/healthz', interval_ms: 100, unhealthy_after: 1 },
        connect_retries: 0,
      },
    },
    routes: [{ name: 'r', match: { prefix: '/' }, upstream: 'app' }],
  });
  t.after(async () => {
    await gw.close();
    await a.close();
  });
  // The first probe runs as the config is compiled: wait for its verdict without sending any request.
  const deadline = Date.now() + 5000;
  while (healthLines(gw.logs, /failed its health probes/).length === 0) {
    if (Date.now() > deadline) assert.fail('the probe never failed');
    await new Promise((r) => setImmediate(r));
  }
  assert.equal(healthLines(gw.logs, /failed its health probes/)[0]!.reason, 'ECONNREFUSED');
  // Without connect retries, a request sent to the dead target would be a 502: none is.
  const statuses: number[] = [];
  for (let i = 0; i < 4; i++) statuses.push((await httpRequest(gw.url + '/')).status);
  assert.deepEqual(statuses, [200, 200, 200, 200]);
  assert.equal(served, 4);
});

test('upstream health: clients that abort their uploads never take a healthy target out of rotation', async (t) => {
  let started = 0;
  const receiving = new EventEmitter();
  const a = await startUpstream((req, res) => {
    started++;
    receiving.emit('request');
    req.on('data', () => undefined);
    req.on('end', () => res.end('a'));
  });
  const b = await startUpstream((_req, res) => res.end('b'));
  const gw = await startTestGateway({
    upstreams: { app: { targets: [{ url: a.url }, { url: b.url }], passive_health: { consecutive_failures: 1 } } },
    routes: [{ name: 'r', match: { prefix: '/' }, upstream: 'app' }],
  });
  t.after(async () => {
    await gw.close();
    await a.close();
    await b.close();
  });
  for (let i = 0; i < 3; i++) {
    // Round robin: each upload goes to a; the client announces 1 MB, sends a little, and goes away.
    const client = net.connect(gw.port, '127.0.0.1');
    await once(client, 'connect');
    const arrived = once(receiving, 'request');
    client.write('PUT /up HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 1048576\r\n\r\n' + 'x'.repeat(1000));
    await arrived;
    client.destroy();
    await once(client, 'close');
    assert.equal((await httpRequest(gw.url + '/')).body, 'b', 'b answers the request in between');
  }
  assert.equal(started, 3);
  assert.equal(
    healthLines(gw.logs, /taken out of rotation/).length,
    0,
    'a client going away is not the target failing',
  );
});

test('upstream health: a target whose TLS handshake fails, whatever the TLS error, counts as down and its requests go elsewhere', async (t) => {
  const plain = await startUpstream((_req, res) => res.end('plain')); // speaks HTTP where TLS is expected
  const live = await startUpstream((_req, res) => res.end('live'));
  const gw = await startTestGateway({
    upstreams: {
      app: {
        targets: [{ url: plain.url.replace('http://', 'https://') }, { url: live.url.replace('http://', 'https://') }],
      },
      ok: { targets: [{ url: live.url }] },
    },
    routes: [
      { name: 'tls', match: { prefix: '/tls' }, upstream: 'app' },
      { name: 'ok', match: { prefix: '/ok' }, upstream: 'ok' },
    ],
  });
  t.after(async () => {
    await gw.close();
    await plain.close();
    await live.close();
  });
  // Both targets fail the handshake (neither speaks TLS): each request is retried once, then 502; after 3
  // failures each is out of rotation, as for a refused connection.
  for (let i = 0; i < 3; i++) assert.equal((await httpRequest(gw.url + '/tls')).status, 502);
  const retried = accessLines(gw.logs).map((l) => [l.upstream_retries, l.upstream_error]);
  assert.ok(
    retried.every(([n]) => n === 1),
    JSON.stringify(retried),
  );
  assert.equal(healthLines(gw.logs, /taken out of rotation/).length, 2, JSON.stringify(retried));
});
