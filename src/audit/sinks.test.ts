import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { issueCertificate } from '../workload-identity/certificates.js';
import { startTestGateway, httpRequest } from '../../testing/harness.js';
import { FileTransport } from './sinks.js';

/** Parses RFC 6587 octet-counted frames: `LEN SP MSG` repeated. */
function parseFrames(buf: Buffer): { messages: string[]; rest: Buffer } {
  const messages: string[] = [];
  let pos = 0;
  for (;;) {
    const sp = buf.indexOf(32, pos);
    if (sp === -1) break;
    const len = Number(buf.subarray(pos, sp).toString('ascii'));
    assert.ok(Number.isInteger(len) && len > 0, 'frame length');
    if (buf.length < sp + 1 + len) break;
    messages.push(buf.subarray(sp + 1, sp + 1 + len).toString('utf8'));
    pos = sp + 1 + len;
  }
  return { messages, rest: buf.subarray(pos) };
}

async function collector(secure?: { cert: string; key: string }) {
  const messages: string[] = [];
  const onSocket = (socket: net.Socket) => {
    let pending: Buffer = Buffer.alloc(0);
    socket.on('data', (c: Buffer) => {
      const parsed = parseFrames(Buffer.concat([pending, c]));
      messages.push(...parsed.messages);
      pending = parsed.rest;
    });
    socket.on('error', () => undefined);
  };
  const server = secure
    ? tls.createServer({ cert: secure.cert, key: secure.key }, onSocket)
    : net.createServer(onSocket);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    messages,
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

async function until(predicate: () => boolean, ms = 10000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}

for (const secure of [false, true]) {
  test(`syslog sink over ${secure ? 'TLS' : 'TCP'}: RFC 5424 messages with octet-counting framing`, async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kycgate-syslog-'));
    let tlsConfig: Record<string, unknown> | undefined;
    let server: Awaited<ReturnType<typeof collector>>;
    if (secure) {
      const ca = await issueCertificate({ subject: 'syslog test CA', ca: true });
      const leaf = await issueCertificate({ subject: 'collector.test', dns: ['collector.test'], issuer: ca });
      fs.writeFileSync(path.join(dir, 'ca.pem'), ca.certPem);
      tlsConfig = { ca: path.join(dir, 'ca.pem'), servername: 'collector.test' };
      server = await collector({ cert: leaf.certPem, key: leaf.keyPem });
    } else {
      server = await collector();
    }
    const gw = await startTestGateway(
      {
        routes: [
          { name: 'ok', match: { path: '/ok' }, policies: [{ 'static-response': { status: 200, body: 'ok' } }] },
        ],
        audit: {
          enabled: true,
          sinks: [
            {
              name: 'syslog',
              type: 'syslog',
              host: '127.0.0.1',
              port: server.port,
              ...(tlsConfig ? { tls: tlsConfig } : {}),
            },
          ],
        },
      },
      { dataDir: dir },
    );
    try {
      await httpRequest(`${gw.url}/ok`, { headers: { 'x-request-id': 'syslog-1' } });
      gw.gateway.services.events.emit({ type: 'auth.failure', outcome: 'bad_key' });
      await until(() => server.messages.some((m) => m.includes('auth.failure')));
    } finally {
      await gw.close();
      await server.close();
    }
    const request = server.messages.find((m) => m.includes('"request_id":"syslog-1"'))!;
    // <PRI>VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP STRUCTURED-DATA SP MSG
    assert.match(
      request,
      /^<110>1 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \S+ kycgate \d+ http\.request - \{"v":1,"seq":\d+,/,
    );
    const failure = server.messages.find((m) => m.includes('auth.failure'))!;
    assert.match(failure, /^<108>1 /, 'facility 13 (log audit), severity warning');
    fs.rmSync(dir, { recursive: true, force: true });
  });
}

test('file sink rotates by size and keeps the configured number of files', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kycgate-filesink-'));
  const file = path.join(dir, 'out', 'audit.jsonl');
  const sink = new FileTransport(file, 2048, 2);
  const line = (i: number) => JSON.stringify({ seq: i, pad: 'x'.repeat(200) });
  for (let b = 0; b < 20; b++) await sink.send([line(b * 2 + 1), line(b * 2 + 2)]);
  const files = fs.readdirSync(path.dirname(file)).sort();
  assert.deepEqual(files, ['audit.jsonl', 'audit.jsonl.1', 'audit.jsonl.2']);
  const newest = fs
    .readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((l) => (JSON.parse(l) as { seq: number }).seq);
  const older = fs
    .readFileSync(`${file}.1`, 'utf8')
    .trim()
    .split('\n')
    .map((l) => (JSON.parse(l) as { seq: number }).seq);
  assert.equal(newest[newest.length - 1], 40);
  assert.equal(older[older.length - 1]! + 1, newest[0], 'rotation keeps order, no gap between files');
  assert.ok(fs.statSync(`${file}.1`).size <= 2048 + 2 * 220);
  fs.rmSync(dir, { recursive: true, force: true });
});
