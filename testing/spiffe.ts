/**
 * Test PKI for SPIFFE: trust-domain CAs, X509-SVIDs, bundles and TLS clients, all made at run time.
 */
import tls from 'node:tls';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  issueCertificate,
  KeyUsage,
  type IssueOptions,
  type IssuedCertificate,
} from '../src/workload-identity/certificates.js';

export { KeyUsage };

export function tempDir(prefix = 'kycgate-spiffe-'): string {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** A trust domain's signing CA (cA=true, keyCertSign|cRLSign, URI SAN of the trust domain as SPIRE does). */
export function trustDomainCa(trustDomain: string, options: Partial<IssueOptions> = {}): Promise<IssuedCertificate> {
  return issueCertificate({
    subject: `CN=${trustDomain} CA, O=SPIFFE`,
    ca: true,
    uris: [`spiffe://${trustDomain}`],
    ...options,
  });
}

/** An X509-SVID for `spiffeId` signed by `issuer` (override any field to make it invalid). */
export function issueSvid(
  issuer: IssuedCertificate,
  spiffeId: string | string[],
  options: Partial<IssueOptions> = {},
): Promise<IssuedCertificate> {
  return issueCertificate({
    subject: 'O=SPIFFE',
    issuer,
    uris: Array.isArray(spiffeId) ? spiffeId : [spiffeId],
    keyUsage: KeyUsage.digitalSignature | KeyUsage.keyEncipherment | KeyUsage.keyAgreement,
    ...options,
  });
}

/** DER of certificates, leaf first (what a peer presents). */
export function derChain(...certs: IssuedCertificate[]): Buffer[] {
  return certs.map((c) => Buffer.from(c.cert.rawData));
}

/** A SPIFFE bundle document (JWK Set) with the CAs as x509-svid keys and optional JWT keys. */
export function spiffeBundle(
  cas: IssuedCertificate[],
  jwtKeys: Array<Record<string, unknown>> = [],
  sequence?: number,
): string {
  return JSON.stringify({
    keys: [
      ...cas.map((c) => ({ use: 'x509-svid', kty: 'EC', x5c: [Buffer.from(c.cert.rawData).toString('base64')] })),
      ...jwtKeys,
    ],
    ...(sequence !== undefined ? { spiffe_sequence: sequence } : {}),
    spiffe_refresh_hint: 300,
  });
}

export function writeFile(dir: string, name: string, content: string): string {
  const file = path.join(dir, name);
  writeFileSync(file, content);
  return file;
}

export interface TlsExchange {
  /** HTTP status, or 0 when the connection failed or closed without an answer. */
  status: number;
  body: string;
  error: string | undefined;
  reused: boolean;
  session: Buffer | undefined;
  /** Serial number of the certificate the server presented. */
  serverSerial: string | undefined;
}

/**
 * One HTTPS request over a fresh TLS connection with a client certificate (chain PEM and key), optionally resuming
 * `session`. Resolves (never rejects) with what happened, so refusals can be asserted.
 */
export function tlsRequest(
  port: number,
  options: {
    cert?: string;
    key?: string;
    ca: string;
    path?: string;
    session?: Buffer;
    headers?: Record<string, string>;
    maxVersion?: tls.SecureVersion;
  },
): Promise<TlsExchange> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let session: Buffer | undefined;
    let reused = false;
    let serverSerial: string | undefined;
    let settled = false;
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      servername: 'localhost',
      ca: options.ca,
      ...(options.cert ? { cert: options.cert, key: options.key } : {}),
      ...(options.session ? { session: options.session } : {}),
      ...(options.maxVersion ? { maxVersion: options.maxVersion } : {}),
    });
    const finish = (error: string | undefined) => {
      if (settled) return;
      settled = true;
      const raw = Buffer.concat(chunks).toString('utf8');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(raw);
      const bodyStart = raw.indexOf('\r\n\r\n');
      resolve({
        status: m ? Number(m[1]) : 0,
        body: bodyStart === -1 ? '' : raw.slice(bodyStart + 4),
        error,
        reused,
        session,
        serverSerial,
      });
    };
    socket.on('session', (s: Buffer) => (session = s));
    socket.on('secureConnect', () => {
      reused = socket.isSessionReused();
      serverSerial = socket.getPeerX509Certificate()?.serialNumber;
      const headers = Object.entries(options.headers ?? {})
        .map(([k, v]) => `${k}: ${v}\r\n`)
        .join('');
      socket.write(`GET ${options.path ?? '/'} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n${headers}\r\n`);
    });
    socket.on('data', (c: Buffer) => chunks.push(c));
    // After a refused handshake the alert may arrive as an error just after the end of the stream: wait for close.
    socket.on('end', () => (chunks.length > 0 ? finish(undefined) : undefined));
    socket.on('close', () => finish(chunks.length === 0 ? 'closed without an answer' : undefined));
    socket.on('error', (err: NodeJS.ErrnoException) => finish(err.code ?? err.message));
    socket.setTimeout(5000, () => {
      socket.destroy();
      finish('timeout');
    });
  });
}
