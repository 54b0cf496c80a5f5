/**
 * Listener TLS: 1.0 and 1.1 refused, 1.2 and 1.3 accepted, and a renewed certificate served to new connections
 * without a restart; a mismatched pair is refused and the old certificate keeps serving.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import tls from 'node:tls';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { issueCertificate } from '../workload-identity/certificates.js';
import { startTestGateway } from '../../testing/harness.js';

function handshake(
  port: number,
  options: tls.ConnectionOptions,
): Promise<{ ok: true; protocol: string | null; serial: string } | { ok: false; error: string }> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...options }, () => {
      const result = {
        ok: true as const,
        protocol: socket.getProtocol(),
        serial: socket.getPeerCertificate().serialNumber,
      };
      socket.end();
      resolve(result);
    });
    socket.on('error', (err: NodeJS.ErrnoException) => resolve({ ok: false, error: err.code ?? err.message }));
  });
}

async function writePair(dir: string, name = 'server'): Promise<{ cert: string; key: string; serial: string }> {
  const issued = await issueCertificate({ subject: 'CN=localhost', dns: ['localhost'], ips: ['127.0.0.1'] });
  const cert = path.join(dir, `${name}.pem`);
  const key = path.join(dir, `${name}-key.pem`);
  writeFileSync(cert, issued.certPem);
  writeFileSync(key, issued.keyPem);
  return { cert, key, serial: issued.cert.serialNumber.toUpperCase() };
}

test('tls: TLS 1.0 and 1.1 are refused, 1.2 and 1.3 accepted', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kycgate-tls-'));
  const pair = await writePair(dir);
  const gw = await startTestGateway({
    listeners: [{ name: 'https', port: 0, tls: { cert: pair.cert, key: pair.key } }],
    routes: [{ name: 'r', match: { prefix: '/' }, policies: [{ 'static-response': {} }] }],
  });
  t.after(async () => {
    await gw.close();
    rmSync(dir, { recursive: true, force: true });
  });
  // The client offers only the old version (and lowers its own security level so it is willing to).
  for (const version of ['TLSv1', 'TLSv1.1'] as const) {
    const result = await handshake(gw.port, {
      minVersion: version,
      maxVersion: version,
      ciphers: 'DEFAULT@SECLEVEL=0',
    });
    assert.equal(result.ok, false, `${version} must be refused`);
    // Refused by the server (protocol_version alert), not by a client that could not offer it.
    assert.match(!result.ok ? result.error : '', /PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL/);
  }
  for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
    const result = await handshake(gw.port, { minVersion: version, maxVersion: version });
    assert.ok(result.ok, `${version} must be accepted`);
    assert.equal(result.ok && result.protocol, version);
  }
});

test('tls: a renewed certificate is served to the next connection; a mismatched pair is refused', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kycgate-tls-'));
  const first = await writePair(dir);
  const gw = await startTestGateway({
    listeners: [{ name: 'https', port: 0, tls: { cert: first.cert, key: first.key } }],
    routes: [{ name: 'r', match: { prefix: '/' }, policies: [{ 'static-response': {} }] }],
  });
  t.after(async () => {
    await gw.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const watcher = gw.gateway.listeners[0]!.certificates!;
  const before = await handshake(gw.port, {});
  assert.ok(before.ok && before.serial === first.serial);

  // Renew: write a new pair over the same files.
  const renewed = await issueCertificate({ subject: 'CN=localhost', dns: ['localhost'] });
  const reloads = watcher.reloads;
  writeFileSync(first.key, renewed.keyPem);
  writeFileSync(first.cert, renewed.certPem);
  for (let i = 0; i < 300 && watcher.reloads === reloads; i++) await new Promise((r) => setTimeout(r, 10));
  const after = await handshake(gw.port, {});
  assert.ok(after.ok);
  assert.equal(after.ok && after.serial, renewed.cert.serialNumber.toUpperCase());

  // A certificate that does not match the key on disk is refused; the renewed one keeps serving.
  const other = await issueCertificate({ subject: 'CN=other' });
  writeFileSync(first.cert, other.certPem);
  assert.equal(watcher.reload(), false);
  const still = await handshake(gw.port, {});
  assert.ok(still.ok && still.serial === renewed.cert.serialNumber.toUpperCase());
});

test('tls: a plain listener can redirect to HTTPS or refuse', async (t) => {
  const gw = await startTestGateway({
    listeners: [
      { name: 'redirect', port: 0, plain: 'redirect', https_port: 8443 },
      { name: 'refuse', port: 0, plain: 'refuse' },
    ],
    routes: [{ name: 'r', match: { prefix: '/' }, policies: [{ 'static-response': {} }] }],
  });
  t.after(() => gw.close());
  const { httpRequest } = await import('../../testing/harness.js');
  const redirected = await httpRequest(gw.urlOf('redirect') + '/a?b=1', { headers: { host: 'api.example.test' } });
  assert.equal(redirected.status, 308);
  assert.equal(redirected.headers.location, 'https://api.example.test:8443/a?b=1');
  const refused = await httpRequest(gw.urlOf('refuse') + '/a');
  assert.equal(refused.status, 403);
  assert.equal(JSON.parse(refused.body).type, 'https://kycgate.dev/problems/https-required');
});
