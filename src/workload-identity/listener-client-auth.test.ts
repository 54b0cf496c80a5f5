import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import type tls from 'node:tls';
import { issueCertificate, type IssuedCertificate } from './certificates.js';
import { startTestGateway, startUpstream, type TestGateway } from '../../testing/harness.js';
import { issueSvid, spiffeBundle, tempDir, tlsRequest, trustDomainCa, writeFile } from '../../testing/spiffe.js';
import type { CertificateWatcher } from '../server/tls.js';

let dir: string;
let serverCa: IssuedCertificate;
let upstream: Awaited<ReturnType<typeof startUpstream>>;

before(async () => {
  dir = tempDir();
  serverCa = await issueCertificate({ subject: 'CN=Test server CA', ca: true });
  const server = await issueCertificate({
    subject: 'CN=localhost',
    issuer: serverCa,
    dns: ['localhost'],
    ips: ['127.0.0.1'],
  });
  writeFile(dir, 'server.pem', server.certPem);
  writeFile(dir, 'server-key.pem', server.keyPem);
  upstream = await startUpstream((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ headers: req.headers }));
  });
});

after(async () => {
  await upstream.close();
  rmSync(dir, { recursive: true, force: true });
});

function watcherOf(gw: TestGateway): CertificateWatcher {
  return gw.gateway.listeners[0]!.certificates!;
}

/** Waits (bounded) until the listener has swapped its TLS context `count` times in total. */
async function contextSwaps(gw: TestGateway, count: number): Promise<void> {
  for (let i = 0; i < 200 && watcherOf(gw).reloads < count; i++) await new Promise((r) => setTimeout(r, 25));
  assert.ok(watcherOf(gw).reloads >= count, 'the listener swapped its TLS context after the bundle changed');
}

async function gatewayWith(
  tlsConfig: Record<string, unknown>,
  policies: unknown[] = [{ 'client-certificate': { allow_unmapped: true } }],
): Promise<TestGateway> {
  return startTestGateway(
    {
      listeners: [{ name: 'mtls', port: 0, tls: { cert: 'server.pem', key: 'server-key.pem', ...tlsConfig } }],
      upstreams: { echo: { targets: [{ url: upstream.url }] } },
      routes: [{ name: 'all', match: { prefix: '/' }, upstream: 'echo', policies }],
    },
    { baseDir: dir },
  );
}

for (const version of ['TLSv1.3', 'TLSv1.2'] as const) {
  test(`${version}: a bundle change rotates session tickets; a client whose CA was removed cannot resume`, async () => {
    const caA = await trustDomainCa('a.test');
    const caOther = await trustDomainCa('a.test');
    const bundleFile = writeFile(dir, `resume-${version}.json`, spiffeBundle([caA], [], 1));
    const gw = await gatewayWith({
      client_auth: 'required',
      trust_domains: [{ name: 'a.test', bundle: `resume-${version}.json` }],
    });
    try {
      const svid = await issueSvid(caA, 'spiffe://a.test/resumer');
      const client = {
        cert: svid.certPem,
        key: svid.keyPem,
        ca: serverCa.certPem,
        maxVersion: version as tls.SecureVersion,
      };
      const first = await tlsRequest(gw.port, client);
      assert.equal(first.status, 200);
      assert.ok(first.session, 'the server issued a session');
      const resumed = await tlsRequest(gw.port, { ...client, session: first.session });
      assert.equal(resumed.status, 200);
      assert.equal(resumed.reused, true, 'sessions resume while trust is unchanged');

      // A new CA added: still trusted, but the old tickets no longer resume.
      const swaps = watcherOf(gw).reloads;
      writeFileSync(bundleFile, spiffeBundle([caA, caOther], [], 2));
      await contextSwaps(gw, swaps + 1);
      const afterRotation = await tlsRequest(gw.port, { ...client, session: resumed.session ?? first.session });
      assert.equal(afterRotation.status, 200);
      assert.equal(afterRotation.reused, false, 'ticket keys were rotated with the bundle');

      // The client's CA removed: neither a fresh handshake nor a resumption is served.
      writeFileSync(bundleFile, spiffeBundle([caOther], [], 3));
      await contextSwaps(gw, swaps + 2);
      const refused = await tlsRequest(gw.port, { ...client, session: afterRotation.session });
      assert.equal(refused.status, 0, 'a session of a removed CA is not served');
      assert.equal(refused.reused, false);
      assert.equal((await tlsRequest(gw.port, client)).status, 0);
    } finally {
      await gw.close();
    }
  });
}

test('a keep-alive connection admitted before its CA was removed is refused on its next request', async () => {
  const caA = await trustDomainCa('a.test');
  const caOther = await trustDomainCa('a.test');
  const bundleFile = writeFile(dir, 'keepalive.pem', caA.certPem);
  const gw = await gatewayWith({
    client_auth: 'optional',
    trust_domains: [{ name: 'a.test', bundle: 'keepalive.pem' }],
  });
  try {
    const svid = await issueSvid(caA, 'spiffe://a.test/long-lived');
    const https = await import('node:https');
    const agent = new https.Agent({
      keepAlive: true,
      maxSockets: 1,
      cert: svid.certPem,
      key: svid.keyPem,
      ca: serverCa.certPem,
    });
    const get = () =>
      new Promise<number>((resolve, reject) => {
        const req = https.request(
          { host: '127.0.0.1', port: gw.port, servername: 'localhost', path: '/', agent },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode!));
          },
        );
        req.on('error', reject);
        req.end();
      });
    const sockets = new Set<unknown>();
    agent.on('free', (s) => sockets.add(s));
    assert.equal(await get(), 200);
    const swaps = watcherOf(gw).reloads;
    writeFileSync(bundleFile, caOther.certPem);
    await contextSwaps(gw, swaps + 1);
    assert.equal(await get(), 401);
    assert.equal(sockets.size, 1, 'both requests used the same connection');
    agent.destroy();
  } finally {
    await gw.close();
  }
});

test('CA-based required listener: OpenSSL refuses unknown CAs, certificates map to consumers by subject and DNS name', async () => {
  const clientCa = await issueCertificate({ subject: 'CN=Partner CA', ca: true });
  const stranger = await issueCertificate({ subject: 'CN=Stranger CA', ca: true });
  writeFile(dir, 'partners.pem', clientCa.certPem);
  const gw = await gatewayWith({ client_auth: 'required', client_ca: ['partners.pem'] }, [
    {
      'client-certificate': {
        consumers: [
          { name: 'bank-a', subject: 'CN=bank-a, O=Bank A' },
          { name: 'bank-b', dns: 'api.bank-b.example' },
        ],
      },
    },
  ]);
  try {
    const a = await issueCertificate({ subject: 'CN=bank-a, O=Bank A', issuer: clientCa });
    const b = await issueCertificate({ subject: 'CN=whatever', issuer: clientCa, dns: ['API.bank-b.example'] });
    const unmapped = await issueCertificate({ subject: 'CN=bank-c', issuer: clientCa });
    const foreign = await issueCertificate({ subject: 'CN=bank-a, O=Bank A', issuer: stranger });
    const caLeaf = await issueCertificate({ subject: 'CN=bank-a, O=Bank A', issuer: clientCa, ca: true });
    const ra = await tlsRequest(gw.port, { cert: a.certPem, key: a.keyPem, ca: serverCa.certPem });
    assert.equal(ra.status, 200);
    assert.match(ra.body, /"x-kycgate-client-consumer":"bank-a"/);
    assert.doesNotMatch(ra.body, /x-kycgate-client-spiffe-id/);
    const rb = await tlsRequest(gw.port, { cert: b.certPem, key: b.keyPem, ca: serverCa.certPem });
    assert.match(rb.body, /"x-kycgate-client-consumer":"bank-b"/);
    assert.equal(
      (await tlsRequest(gw.port, { cert: unmapped.certPem, key: unmapped.keyPem, ca: serverCa.certPem })).status,
      401,
    );
    const rf = await tlsRequest(gw.port, { cert: foreign.certPem, key: foreign.keyPem, ca: serverCa.certPem });
    assert.equal(rf.status, 0);
    assert.ok(rf.error, 'the handshake was refused');
    // OpenSSL accepts a CA certificate as a client leaf; the gateway does not.
    assert.equal(
      (await tlsRequest(gw.port, { cert: caLeaf.certPem, key: caLeaf.keyPem, ca: serverCa.certPem })).status,
      0,
    );
  } finally {
    await gw.close();
  }
});

test('client_auth required without client_ca or trust_domains is a start-up error', async () => {
  await assert.rejects(
    gatewayWith({ client_auth: 'required' }),
    /neither client_ca, trust_domains nor workload_api.client_trust/,
  );
});

test('an SVID issued through an intermediate CA resumes its session', async () => {
  const caA = await trustDomainCa('a.test');
  writeFile(dir, 'intermediate.json', spiffeBundle([caA]));
  const gw = await gatewayWith({
    client_auth: 'required',
    trust_domains: [{ name: 'a.test', bundle: 'intermediate.json' }],
  });
  try {
    const intermediate = await issueCertificate({
      subject: 'CN=a.test intermediate',
      issuer: caA,
      ca: true,
      uris: ['spiffe://a.test'],
    });
    const svid = await issueSvid(intermediate, 'spiffe://a.test/chained');
    const client = { cert: svid.certPem + intermediate.certPem, key: svid.keyPem, ca: serverCa.certPem };
    const first = await tlsRequest(gw.port, client);
    assert.equal(first.status, 200);
    const resumed = await tlsRequest(gw.port, { ...client, session: first.session });
    assert.equal(resumed.reused, true);
    assert.equal(resumed.status, 200);
  } finally {
    await gw.close();
  }
});

test('a config reload that changes the listener trust applies to connections opened before it', async () => {
  const caA = await trustDomainCa('a.test');
  const caOther = await trustDomainCa('a.test');
  writeFile(dir, 'reload-1.pem', caA.certPem);
  writeFile(dir, 'reload-2.pem', caOther.certPem);
  const configFor = (bundle: string) => ({
    listeners: [
      {
        name: 'mtls',
        port: 0,
        tls: {
          cert: 'server.pem',
          key: 'server-key.pem',
          client_auth: 'optional',
          trust_domains: [{ name: 'a.test', bundle }],
        },
      },
    ],
    admin: { port: 0 },
    upstreams: { echo: { targets: [{ url: upstream.url }] } },
    routes: [
      {
        name: 'all',
        match: { prefix: '/' },
        upstream: 'echo',
        policies: [{ 'client-certificate': { allow_unmapped: true } }],
      },
    ],
  });
  const file = writeFile(dir, 'reload.yaml', JSON.stringify(configFor('reload-1.pem')));
  const gw = await startTestGateway(configFor('reload-1.pem'), { file, baseDir: dir, watchConfig: false });
  const svid = await issueSvid(caA, 'spiffe://a.test/reloaded');
  const https = await import('node:https');
  const agent = new https.Agent({
    keepAlive: true,
    maxSockets: 1,
    cert: svid.certPem,
    key: svid.keyPem,
    ca: serverCa.certPem,
  });
  const port = gw.port;
  const get = () =>
    new Promise<number>((resolve, reject) => {
      const req = https.request({ host: '127.0.0.1', port, servername: 'localhost', path: '/', agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      });
      req.on('error', reject);
      req.end();
    });
  try {
    const sockets = new Set<unknown>();
    agent.on('free', (s) => sockets.add(s));
    assert.equal(await get(), 200);
    writeFileSync(file, JSON.stringify(configFor('reload-2.pem')));
    assert.equal(await gw.gateway.reload('test'), true);
    assert.equal(await get(), 401);
    assert.equal(sockets.size, 1, 'the same connection, judged by the new trust');
  } finally {
    agent.destroy();
    await gw.close();
  }
});
