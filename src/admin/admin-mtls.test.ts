/**
 * The admin listener over HTTPS with client certificates: an X509-SVID whose SPIFFE ID `admin.api.mtls` maps gets
 * that role; an unmapped one, one from another CA, or none at all gets 401; `kycgate admin` reaches it with --ca,
 * --cert and --key.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { rmSync } from 'node:fs';
import { promisify } from 'node:util';
import { issueCertificate } from '../workload-identity/certificates.js';
import { startTestGateway } from '../../testing/harness.js';
import { issueSvid, tempDir, tlsRequest, trustDomainCa, writeFile } from '../../testing/spiffe.js';

const run = promisify(execFile);
const CLI = path.resolve('dist/src/cli/main.js');

test('admin API over mTLS: SPIFFE IDs mapped to roles', async (t) => {
  const dir = tempDir('kycgate-admin-mtls-');
  const serverCa = await issueCertificate({ subject: 'CN=admin server CA', ca: true });
  const server = await issueCertificate({ subject: 'CN=localhost', issuer: serverCa, dns: ['localhost'] });
  const clientCa = await trustDomainCa('ops.example');
  const consoleSvid = await issueSvid(clientCa, 'spiffe://ops.example/console');
  const stranger = await issueSvid(clientCa, 'spiffe://ops.example/stranger');
  const otherCa = await trustDomainCa('ops.example');
  const forged = await issueSvid(otherCa, 'spiffe://ops.example/console');
  const gw = await startTestGateway(
    {
      log: { level: 'warn' },
      admin: {
        port: 0,
        tls: {
          cert: writeFile(dir, 'server.pem', server.certPem),
          key: writeFile(dir, 'server.key', server.keyPem),
          client_ca: writeFile(dir, 'client-ca.pem', clientCa.certPem),
        },
        api: {
          enabled: true,
          store_keys: false,
          mtls: [{ spiffe_id: 'spiffe://ops.example/console', role: 'operator' }],
        },
      },
    },
    { baseDir: dir },
  );
  t.after(async () => {
    await gw.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const port = gw.gateway.admin!.port;
  const ca = serverCa.certPem;
  const me = await tlsRequest(port, {
    ca,
    cert: consoleSvid.certPem,
    key: consoleSvid.keyPem,
    path: '/admin/api/v1/me',
  });
  assert.equal(me.status, 200, me.body);
  assert.deepEqual(JSON.parse(me.body), {
    actor: 'spiffe://ops.example/console',
    role: 'operator',
    method: 'mtls',
  });
  const admin = await tlsRequest(port, {
    ca,
    cert: consoleSvid.certPem,
    key: consoleSvid.keyPem,
    path: '/admin/api/v1/admin-keys',
  });
  assert.equal(admin.status, 403);
  for (const [name, cert] of [
    ['unmapped', stranger],
    ['other CA', forged],
  ] as const) {
    const res = await tlsRequest(port, { ca, cert: cert.certPem, key: cert.keyPem, path: '/admin/api/v1/me' });
    assert.equal(res.status, 401, name);
  }
  assert.equal((await tlsRequest(port, { ca, path: '/admin/api/v1/me' })).status, 401, 'no certificate');
  const certs = await tlsRequest(port, {
    ca,
    cert: consoleSvid.certPem,
    key: consoleSvid.keyPem,
    path: '/admin/api/v1/runtime/certificates',
  });
  const items = JSON.parse(certs.body).items as Array<{ listener: string; serial: string }>;
  assert.deepEqual(
    items.map((c) => c.listener),
    ['admin'],
  );
  const { stdout } = await run(process.execPath, [
    CLI,
    'admin',
    '--admin-url',
    `https://localhost:${port}`,
    '--ca',
    writeFile(dir, 'server-ca.pem', ca),
    '--cert',
    writeFile(dir, 'consoleSvid.pem', consoleSvid.certPem),
    '--key',
    writeFile(dir, 'consoleSvid.key', consoleSvid.keyPem),
    'me',
    'show',
  ]);
  assert.equal(JSON.parse(stdout).actor, 'spiffe://ops.example/console');
});
