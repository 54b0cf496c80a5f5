import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { FramingError, ResponseFramer } from './response-framer.js';
import { invalidRun } from './fixed-rate.js';
import { issueCertificate } from '../src/workload-identity/certificates.js';

const run = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));

/** Feeds `wire` to a framer in pieces of `size` bytes; returns the statuses of the responses it completed. */
function frame(wire: string, size: number): number[] {
  const statuses: number[] = [];
  const framer = new ResponseFramer((s) => statuses.push(s));
  const bytes = Buffer.from(wire, 'latin1');
  for (let i = 0; i < bytes.length; i += size) framer.push(bytes.subarray(i, i + size));
  assert.ok(framer.idle, 'nothing is left over once the last response is read');
  return statuses;
}

const WIRE =
  'HTTP/1.1 100 Continue\r\n\r\n' +
  'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"ok":true}' +
  'HTTP/1.1 204 No Content\r\nX-Kyc-Status: approved\r\n\r\n' +
  'HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n' +
  'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5;ext=1\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Trailer: t\r\n\r\n' +
  'HTTP/1.1 304 Not Modified\r\nContent-Length: 42\r\n\r\n' +
  'HTTP/1.1 503 Service Unavailable\r\nContent-Length: 3\r\n\r\nbye';

test('bench: the generator frames keep-alive responses by length, chunks or status, in any split', () => {
  for (const size of [1, 2, 3, 7, 64, WIRE.length])
    assert.deepEqual(frame(WIRE, size), [200, 204, 403, 200, 304, 503], `pieces of ${size} bytes`);
});

test('bench: a response the generator cannot frame is an error, not a hang', () => {
  const framer = new ResponseFramer(() => undefined);
  assert.throws(() => framer.push(Buffer.from('HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n\r\nbody')), FramingError);
  assert.throws(() => new ResponseFramer(() => undefined).push(Buffer.from('SSH-2.0-OpenSSH\r\n\r\n')), FramingError);
  assert.throws(
    () =>
      new ResponseFramer(() => undefined).push(
        Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'),
      ),
    FramingError,
  );
});

interface Generated {
  sent: number;
  completed: number;
  failures: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  rate: number;
  maxLagMs: number;
  lateSends: number;
}

async function generate(url: string): Promise<Generated> {
  const script = path.join(here, 'open-loop.js');
  const { stdout } = await run(process.execPath, [
    script,
    JSON.stringify({ url, rate: 400, durationS: 0.5, warmupS: 0.25, headers: { 'x-bench': 'yes' } }),
  ]);
  return JSON.parse(stdout);
}

/** Every fifth request is refused; answers alternate between a length-framed and a chunked body. */
function handler(seen: string[]) {
  let n = 0;
  return (req: IncomingMessage, res: ServerResponse) => {
    seen.push(`${req.method} ${req.url} ${req.headers['x-bench']}`);
    n++;
    if (n % 5 === 0) {
      res.writeHead(503, { 'content-length': 2 }).end('no');
      return;
    }
    if (n % 2 === 0) res.end('{"ok":true}');
    else {
      res.write('{"ok":');
      res.end('true}');
    }
  };
}

for (const secure of [false, true]) {
  test(`bench: the fixed-rate generator sends on schedule over ${secure ? 'HTTPS' : 'HTTP'}, times successes and counts failures`, async () => {
    const seen: string[] = [];
    const server = secure
      ? createHttpsServer(
          await issueCertificate({ subject: 'CN=localhost', dns: ['localhost'], ips: ['127.0.0.1'] }).then((c) => ({
            cert: c.certPem,
            key: c.keyPem,
          })),
          handler(seen),
        )
      : createHttpServer(handler(seen));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const r = await generate(`${secure ? 'https' : 'http'}://127.0.0.1:${port}/bench?q=1`);
      // 0.25 s of warm-up and 0.5 s measured at 400/s: 100 + 200 requests, every fifth answered 503.
      assert.equal(seen.length, 300);
      assert.ok(
        seen.every((s) => s === 'GET /bench?q=1 yes'),
        seen.find((s) => s !== 'GET /bench?q=1 yes'),
      );
      assert.equal(r.sent, 200);
      assert.equal(r.failures, 40);
      assert.equal(r.completed, 160);
      assert.ok(r.p50Ms > 0 && r.p50Ms <= r.p99Ms && r.p99Ms <= r.maxMs, JSON.stringify(r));
      // How late sends went out depends on what else the machine runs; that it is reported is what counts here.
      assert.ok(Number.isFinite(r.maxLagMs) && r.maxLagMs >= 0, `lag ${r.maxLagMs} ms`);
      assert.ok(Number.isInteger(r.lateSends) && r.lateSends >= 0 && r.lateSends <= r.sent);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
}

test('bench: requests to a port nobody listens on are failures, and the generator still ends', async () => {
  const server = createHttpServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  const r = await generate(`http://127.0.0.1:${port}/`);
  assert.equal(r.sent, 200);
  assert.equal(r.completed, 0);
  assert.equal(r.failures, 200);
});

test('bench: a generator held back from its schedule reports its late sends, so the run can be refused', async () => {
  const server = createHttpServer((_req, res) => res.end('ok'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const { port } = server.address() as AddressInfo;
    const script = path.join(here, 'open-loop.js');
    const child = spawn(
      process.execPath,
      [script, JSON.stringify({ url: `http://127.0.0.1:${port}/`, rate: 400, durationS: 4, warmupS: 0.25 })],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
    // Freeze the generator for 200 ms once its measured phase has started (it says so on stderr after its first
    // send: a stop before the schedule started would delay nothing), as a starved core would;
    // waiting for the marker rather than a fixed delay keeps a slow start-up on a loaded machine out of the way. The
    // phase lasts 4 s so that the freeze lands while requests are still being sent even when this process reads the
    // marker late (with 1.5 s, a busy CI machine once stopped the generator only after its last send).
    await new Promise<void>((resolve, reject) => {
      let err = '';
      child.stderr.on('data', (c: Buffer) => {
        err += c.toString();
        if (err.includes('measuring\n')) resolve();
      });
      child.once('exit', () => reject(new Error(`the generator exited before measuring: ${err}`)));
    });
    child.kill('SIGSTOP');
    await new Promise((resolve) => setTimeout(resolve, 200));
    child.kill('SIGCONT');
    await exited;
    const r = JSON.parse(out) as Generated;
    assert.ok(r.lateSends > 0, JSON.stringify(r));
    assert.ok(r.maxLagMs >= 100, `lag ${r.maxLagMs} ms`);
    assert.match(
      invalidRun(r) ?? '',
      /more than 5 ms late/,
      'a 200 ms freeze in a 4 s round at 400/s makes over 1% of the sends late: the round is refused',
    );
    assert.equal(
      invalidRun({ sent: 3000, failures: 0, lateSends: 4, maxLagMs: 6 }),
      undefined,
      'a handful of late sends from a short stall is tolerated',
    );
    assert.match(invalidRun({ sent: 3000, failures: 1, lateSends: 0, maxLagMs: 1 }) ?? '', /1 failed requests/);
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});
