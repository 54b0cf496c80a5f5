import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { issueCertificate, type IssuedCertificate } from '../../workload-identity/certificates.js';
import { startTestGateway, startUpstream, type TestGateway } from '../../../testing/harness.js';
import {
  KeyUsage,
  issueSvid,
  spiffeBundle,
  tempDir,
  tlsRequest,
  trustDomainCa,
  writeFile,
} from '../../../testing/spiffe.js';
import type { Identity } from '../../pipeline/context.js';
import type { GatewayEvent } from '../../pipeline/events.js';

const DAY = 24 * 3600_000;
let dir: string;
let serverCa: IssuedCertificate;
let caA: IssuedCertificate;
let caB: IssuedCertificate;
let caUnknown: IssuedCertificate;
let upstream: Awaited<ReturnType<typeof startUpstream>>;
let gw: TestGateway;
const completed: Array<{ route: string; status: number; identity: Identity | undefined }> = [];
const failures: GatewayEvent[] = [];

function portOf(name: string): number {
  return gw.gateway.listeners.find((l) => l.config.name === name)!.port;
}

function pemChain(...certs: IssuedCertificate[]): string {
  return certs.map((c) => c.certPem).join('');
}

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
  caA = await trustDomainCa('a.test');
  caB = await trustDomainCa('b.test');
  caUnknown = await trustDomainCa('a.test');
  writeFile(dir, 'a.json', spiffeBundle([caA], [], 1));
  writeFile(dir, 'b.pem', caB.certPem);
  upstream = await startUpstream((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ headers: req.headers }));
  });
  const tlsBase = {
    cert: 'server.pem',
    key: 'server-key.pem',
    trust_domains: [
      { name: 'a.test', bundle: 'a.json' },
      { name: 'b.test', bundle: 'b.pem' },
    ],
  };
  gw = await startTestGateway(
    {
      listeners: [
        { name: 'optional', port: 0, tls: { ...tlsBase, client_auth: 'optional' } },
        { name: 'required', port: 0, tls: { ...tlsBase, client_auth: 'required' } },
      ],
      upstreams: { echo: { targets: [{ url: upstream.url }] } },
      routes: [
        {
          name: 'svid',
          match: { prefix: '/svid' },
          upstream: 'echo',
          policies: [
            {
              'client-certificate': {
                consumers: [
                  { name: 'payments', spiffe_id: 'spiffe://a.test/ns/payments/sa/api' },
                  { name: 'b-partner', trust_domain: 'b.test' },
                ],
                allow_unmapped: true,
              },
            },
          ],
        },
        {
          name: 'open',
          match: { prefix: '/open' },
          upstream: 'echo',
          policies: [{ 'client-certificate': { required: false, allow_unmapped: true } }],
        },
        {
          name: 'strict',
          match: { prefix: '/strict' },
          upstream: 'echo',
          policies: [
            {
              'client-certificate': {
                consumers: [{ name: 'payments', spiffe_id: 'spiffe://a.test/ns/payments/sa/api' }],
              },
            },
          ],
        },
      ],
    },
    { baseDir: dir },
  );
  gw.gateway.services.events.subscribe({
    onRequestComplete: (ctx) => completed.push({ route: ctx.route.name, status: ctx.status, identity: ctx.identity }),
    onEvent: (e) => {
      if (e.type === 'auth.failure') failures.push(e);
    },
  });
});

after(async () => {
  await gw.close();
  await upstream.close();
  rmSync(dir, { recursive: true, force: true });
});

test('a valid X509-SVID passes; the SPIFFE ID and consumer reach the upstream and the audit record, forged headers do not', async () => {
  const svid = await issueSvid(caA, 'spiffe://a.test/ns/payments/sa/api');
  const r = await tlsRequest(portOf('optional'), {
    cert: svid.certPem,
    key: svid.keyPem,
    ca: serverCa.certPem,
    path: '/svid/x',
    headers: { 'x-kycgate-client-spiffe-id': 'spiffe://a.test/admin', 'x-kycgate-client-consumer': 'root' },
  });
  assert.equal(r.status, 200, r.body);
  const seen = JSON.parse(r.body.slice(r.body.indexOf('{'), r.body.lastIndexOf('}') + 1)) as {
    headers: Record<string, string>;
  };
  assert.equal(seen.headers['x-kycgate-client-spiffe-id'], 'spiffe://a.test/ns/payments/sa/api');
  assert.equal(seen.headers['x-kycgate-client-consumer'], 'payments');
  assert.match(seen.headers['x-kycgate-client-cert-sha256']!, /^[0-9a-f]{64}$/);
  const record = completed.find((c) => c.identity?.spiffeId === 'spiffe://a.test/ns/payments/sa/api');
  assert.ok(record, 'the finished request carries the identity');
  assert.equal(record.identity!.method, 'spiffe');
  assert.equal(record.identity!.consumer, 'payments');
});

test('federation: an SVID of the second trust domain (PEM bundle) passes, mapped by trust domain; also on the required listener', async () => {
  const svid = await issueSvid(caB, 'spiffe://b.test/billing/worker');
  for (const listener of ['optional', 'required']) {
    const r = await tlsRequest(portOf(listener), {
      cert: svid.certPem,
      key: svid.keyPem,
      ca: serverCa.certPem,
      path: '/svid',
    });
    assert.equal(r.status, 200, `${listener}: ${r.body}`);
    assert.match(r.body, /"x-kycgate-client-consumer":"b-partner"/);
  }
});

test('an SVID signed by an intermediate passes when the client sends the chain', async () => {
  const intermediate = await issueCertificate({
    subject: 'CN=a.test intermediate',
    issuer: caA,
    ca: true,
    uris: ['spiffe://a.test'],
  });
  const svid = await issueSvid(intermediate, 'spiffe://a.test/chained');
  const r = await tlsRequest(portOf('required'), {
    cert: pemChain(svid, intermediate),
    key: svid.keyPem,
    ca: serverCa.certPem,
    path: '/svid',
  });
  assert.equal(r.status, 200, r.body);
  assert.match(r.body, /spiffe:\/\/a\.test\/chained/);
});

test('no client certificate: 401 problem+json where required by the route, passes where optional, closed on a required listener', async () => {
  const r = await tlsRequest(portOf('optional'), { ca: serverCa.certPem, path: '/svid' });
  assert.equal(r.status, 401);
  const body = JSON.parse(r.body) as { type: string };
  assert.equal(body.type, 'https://kycgate.dev/problems/unauthenticated');
  const open = await tlsRequest(portOf('optional'), { ca: serverCa.certPem, path: '/open' });
  assert.equal(open.status, 200);
  assert.doesNotMatch(open.body, /x-kycgate-client-spiffe-id/);
  const closed = await tlsRequest(portOf('required'), { ca: serverCa.certPem, path: '/open' });
  assert.equal(closed.status, 0, 'the required listener serves nothing without a certificate');
});

test('a valid SVID that no consumer rule maps is refused where unmapped certificates are not allowed', async () => {
  const svid = await issueSvid(caA, 'spiffe://a.test/someone/else');
  const r = await tlsRequest(portOf('optional'), {
    cert: svid.certPem,
    key: svid.keyPem,
    ca: serverCa.certPem,
    path: '/strict',
  });
  assert.equal(r.status, 401);
  assert.ok(failures.some((f) => f.outcome === 'unmapped_certificate'));
});

test('every invalid X509-SVID fails the request: 401 on the optional listener, connection closed on the required one', async () => {
  const now = Date.now();
  const cases: Array<[string, IssuedCertificate]> = [
    ['two URI SANs', await issueSvid(caA, ['spiffe://a.test/one', 'spiffe://a.test/two'])],
    ['no URI SAN', await issueCertificate({ subject: 'CN=x', issuer: caA, dns: ['x.a.test'] })],
    ['root-path ID', await issueSvid(caA, 'spiffe://a.test')],
    ['cA=true leaf', await issueSvid(caA, 'spiffe://a.test/ca', { ca: true, keyUsage: KeyUsage.digitalSignature })],
    [
      'keyCertSign leaf',
      await issueSvid(caA, 'spiffe://a.test/kcs', { keyUsage: KeyUsage.digitalSignature | KeyUsage.keyCertSign }),
    ],
    [
      'cRLSign leaf',
      await issueSvid(caA, 'spiffe://a.test/crl', { keyUsage: KeyUsage.digitalSignature | KeyUsage.cRLSign }),
    ],
    ['no keyUsage', await issueSvid(caA, 'spiffe://a.test/noku', { noKeyUsage: true })],
    ['no digitalSignature', await issueSvid(caA, 'spiffe://a.test/nods', { keyUsage: KeyUsage.keyEncipherment })],
    [
      'expired',
      await issueSvid(caA, 'spiffe://a.test/old', {
        notBefore: new Date(now - 2 * DAY),
        notAfter: new Date(now - DAY),
      }),
    ],
    [
      'not yet valid',
      await issueSvid(caA, 'spiffe://a.test/new', {
        notBefore: new Date(now + DAY),
        notAfter: new Date(now + 2 * DAY),
      }),
    ],
    ['A-domain ID under B-domain root', await issueSvid(caB, 'spiffe://a.test/ns/payments/sa/api')],
    ['unknown CA', await issueSvid(caUnknown, 'spiffe://a.test/ns/payments/sa/api')],
    ['trust domain without a bundle', await issueSvid(caA, 'spiffe://c.test/x')],
    ['scheme Spiffe://', await issueSvid(caA, 'Spiffe://a.test/x')],
    ['upper-case trust domain', await issueSvid(caA, 'spiffe://A.test/x')],
    ['percent-encoded path', await issueSvid(caA, 'spiffe://a.test/x%2Fy')],
  ];
  const before = upstream.requests;
  for (const [name, cert] of cases) {
    const optional = await tlsRequest(portOf('optional'), {
      cert: cert.certPem,
      key: cert.keyPem,
      ca: serverCa.certPem,
      path: '/open',
    });
    assert.equal(optional.status, 401, `${name} (optional listener): ${optional.body}`);
    assert.match(optional.body, /"type":"https:\/\/kycgate\.dev\/problems\/unauthenticated"/);
    const required = await tlsRequest(portOf('required'), {
      cert: cert.certPem,
      key: cert.keyPem,
      ca: serverCa.certPem,
      path: '/open',
    });
    assert.equal(required.status, 0, `${name} (required listener) must not be served`);
  }
  assert.equal(upstream.requests, before, 'no invalid SVID reached the upstream');
  const handshakeRefusals = failures.filter((f) => f.data?.stage === 'handshake' && f.data?.listener === 'required');
  assert.ok(handshakeRefusals.length >= cases.length, 'every closed connection is an auth.failure event');
  assert.ok(handshakeRefusals.some((f) => f.outcome === 'svid_uri_san'));
  assert.ok(handshakeRefusals.some((f) => f.outcome === 'untrusted_chain'));
});
