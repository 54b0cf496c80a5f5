/** HTTP/2 test helpers: a certificate made at test time, and requests on a node:http2 session. */
import http2, { type ClientHttp2Session, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { issueCertificate } from '../src/workload-identity/certificates.js';

/** A self-signed certificate for localhost and 127.0.0.1, written to a temporary folder removed after the test. */
export async function testCertificate(
  t: TestContext,
): Promise<{ cert: string; key: string; pem: string; dir: string }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kycgate-h2-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const issued = await issueCertificate({ subject: 'CN=localhost', dns: ['localhost'], ips: ['127.0.0.1'] });
  const cert = path.join(dir, 'server.pem');
  const key = path.join(dir, 'server-key.pem');
  writeFileSync(cert, issued.certPem);
  writeFileSync(key, issued.keyPem);
  return { cert, key, pem: issued.certPem, dir };
}

export interface H2Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  trailers: IncomingHttpHeaders | undefined;
  /** The stream's RST_STREAM code (0 when it ended normally). */
  rstCode: number;
}

/** Opens a session and closes it after the test. */
export function h2Connect(t: TestContext, url: string, ca?: string): ClientHttp2Session {
  const session = http2.connect(url, ca ? { ca, servername: 'localhost' } : {});
  session.on('error', () => undefined);
  t.after(() => session.destroy());
  return session;
}

/** One request on `session`; resolves when the stream closed (answered or reset). */
export function h2Request(
  session: ClientHttp2Session,
  headers: OutgoingHttpHeaders,
  body?: string | Buffer,
): Promise<H2Answer> {
  return new Promise((resolve) => {
    const stream = session.request(headers, { endStream: body === undefined });
    const chunks: Buffer[] = [];
    let status = 0;
    let head: IncomingHttpHeaders = {};
    let trailers: IncomingHttpHeaders | undefined;
    stream.on('response', (h) => {
      head = h;
      status = Number(h[':status']);
    });
    stream.on('trailers', (h) => {
      trailers = h;
    });
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('error', () => undefined);
    stream.on('close', () =>
      resolve({
        status,
        headers: head,
        body: Buffer.concat(chunks).toString('utf8'),
        trailers,
        rstCode: stream.rstCode,
      }),
    );
    if (body !== undefined) stream.end(body);
  });
}

function frame(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(streamId, 5);
  return Buffer.concat([head, payload]);
}

/** An HPACK literal without indexing, with a name from the static table (RFC 7541 6.2.2). */
function literal(index: number, value: string): Buffer {
  return Buffer.concat([Buffer.from([index, value.length]), Buffer.from(value, 'latin1')]);
}

/**
 * Rapid reset (CVE-2023-44487) as attackers send it: on an open connection (`socket`, TLS with ALPN h2 or plain
 * h2c), `count` streams in one write, each HEADERS (GET `path`) immediately followed by RST_STREAM (CANCEL).
 * Resolves with the error code of the GOAWAY the server sent, or undefined when the connection closed without one.
 */
export function rapidReset(
  socket: import('node:net').Socket,
  authority: string,
  path: string,
  count: number,
): Promise<number | undefined> {
  return new Promise((resolve) => {
    let buffered = Buffer.alloc(0);
    let goaway: number | undefined;
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 9) {
        const length = buffered.readUIntBE(0, 3);
        if (buffered.length < 9 + length) break;
        if (buffered[3] === 7 && goaway === undefined) goaway = buffered.readUInt32BE(9 + 4);
        buffered = buffered.subarray(9 + length);
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(goaway));
    const block = Buffer.concat([Buffer.from([0x82, 0x87]), literal(1, authority), literal(4, path)]);
    const frames: Buffer[] = [
      Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1'),
      frame(4, 0, 0, Buffer.alloc(0)),
      frame(4, 1, 0, Buffer.alloc(0)),
    ];
    const cancel = Buffer.alloc(4);
    cancel.writeUInt32BE(8);
    for (let i = 0; i < count; i++) {
      const id = 2 * i + 1;
      frames.push(frame(1, 0x5, id, block), frame(3, 0, id, cancel));
    }
    socket.write(Buffer.concat(frames));
  });
}
