import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, rmSync } from 'node:fs';
import { pino } from 'pino';
import { validateX509Svid, validatePeerCertificate, type CertificateVerdict } from './svid.js';
import { TrustStore } from './trust-store.js';
import { issueCertificate } from './certificates.js';
import type { IssuedCertificate } from './certificates.js';
import {
  KeyUsage,
  derChain,
  issueSvid,
  spiffeBundle,
  tempDir,
  trustDomainCa,
  writeFile,
} from '../../testing/spiffe.js';

const logger = pino({ level: 'silent' });
const DAY = 24 * 3600_000;
let dir: string;
let caA: IssuedCertificate;
let caB: IssuedCertificate;
let caUnknown: IssuedCertificate;
let trust: TrustStore;

before(async () => {
  dir = tempDir();
  caA = await trustDomainCa('a.test');
  caB = await trustDomainCa('b.test');
  caUnknown = await trustDomainCa('a.test', { subject: 'CN=a.test CA, O=SPIFFE' });
  writeFile(dir, 'a.json', spiffeBundle([caA]));
  writeFile(dir, 'b.pem', caB.certPem);
  trust = new TrustStore(
    {
      trustDomains: [
        { name: 'a.test', bundle: 'a.json' },
        { name: 'b.test', bundle: 'b.pem' },
      ],
    },
    dir,
    logger,
  );
});

after(() => {
  trust.close();
  rmSync(dir, { recursive: true, force: true });
});

function refusedWith(verdict: CertificateVerdict, reason: string): void {
  assert.equal(verdict.ok, false, `expected refusal ${reason}`);
  if (!verdict.ok) assert.equal(verdict.reason, reason, verdict.detail);
}

test('a valid X509-SVID of each trust domain is accepted with its SPIFFE ID', async () => {
  const a = await issueSvid(caA, 'spiffe://a.test/ns/payments/sa/api');
  const va = validateX509Svid(derChain(a, caA), trust);
  assert.ok(va.ok);
  assert.equal(va.spiffeId?.id, 'spiffe://a.test/ns/payments/sa/api');
  assert.equal(va.kind, 'spiffe');
  assert.match(va.fingerprint, /^[0-9a-f]{64}$/);
  const b = await issueSvid(caB, 'spiffe://b.test/billing');
  const vb = validateX509Svid(derChain(b), trust);
  assert.ok(vb.ok);
  assert.equal(vb.spiffeId?.trustDomain, 'b.test');
});

test('an SVID signed through an intermediate CA is accepted when the intermediate is presented', async () => {
  const intermediate = await issueCertificate({
    subject: 'CN=a.test intermediate',
    issuer: caA,
    ca: true,
    uris: ['spiffe://a.test'],
  });
  const leaf = await issueSvid(intermediate, 'spiffe://a.test/via/intermediate');
  assert.ok(validateX509Svid(derChain(leaf, intermediate), trust).ok);
  refusedWith(validateX509Svid(derChain(leaf), trust), 'untrusted_chain');
});

test('every X509-SVID rule the standard lists is enforced', async () => {
  const now = Date.now();
  const cases: Array<[string, Promise<IssuedCertificate>, string, IssuedCertificate?]> = [
    ['two URI SANs', issueSvid(caA, ['spiffe://a.test/one', 'spiffe://a.test/two']), 'svid_uri_san'],
    ['no URI SAN', issueCertificate({ subject: 'CN=x', issuer: caA, dns: ['x.a.test'] }), 'svid_uri_san'],
    ['root-path ID', issueSvid(caA, 'spiffe://a.test'), 'invalid_spiffe_id'],
    [
      'cA=true leaf',
      issueSvid(caA, 'spiffe://a.test/ca', { ca: true, keyUsage: KeyUsage.digitalSignature }),
      'ca_leaf',
    ],
    [
      'keyCertSign leaf',
      issueSvid(caA, 'spiffe://a.test/kcs', { keyUsage: KeyUsage.digitalSignature | KeyUsage.keyCertSign }),
      'svid_key_usage',
    ],
    [
      'cRLSign leaf',
      issueSvid(caA, 'spiffe://a.test/crl', { keyUsage: KeyUsage.digitalSignature | KeyUsage.cRLSign }),
      'svid_key_usage',
    ],
    ['no keyUsage', issueSvid(caA, 'spiffe://a.test/noku', { noKeyUsage: true }), 'svid_key_usage'],
    [
      'no digitalSignature',
      issueSvid(caA, 'spiffe://a.test/nods', { keyUsage: KeyUsage.keyEncipherment }),
      'svid_key_usage',
    ],
    [
      'expired',
      issueSvid(caA, 'spiffe://a.test/old', { notBefore: new Date(now - 2 * DAY), notAfter: new Date(now - DAY) }),
      'expired',
    ],
    [
      'not yet valid',
      issueSvid(caA, 'spiffe://a.test/new', { notBefore: new Date(now + DAY), notAfter: new Date(now + 2 * DAY) }),
      'not_yet_valid',
    ],
    ['A-domain ID under B-domain root', issueSvid(caB, 'spiffe://a.test/forged'), 'untrusted_chain'],
    ['unknown CA with the same name', issueSvid(caUnknown, 'spiffe://a.test/x'), 'untrusted_chain'],
    ['trust domain without a bundle', issueSvid(caA, 'spiffe://c.test/x'), 'unknown_trust_domain'],
    ['scheme Spiffe://', issueSvid(caA, 'Spiffe://a.test/x'), 'invalid_spiffe_id'],
    ['upper-case trust domain', issueSvid(caA, 'spiffe://A.test/x'), 'invalid_spiffe_id'],
    ['percent-encoded path', issueSvid(caA, 'spiffe://a.test/x%2Fy'), 'invalid_spiffe_id'],
    ['dot segment', issueSvid(caA, 'spiffe://a.test/x/../y'), 'invalid_spiffe_id'],
    ['port', issueSvid(caA, 'spiffe://a.test:443/x'), 'invalid_spiffe_id'],
    [
      'EKU without clientAuth',
      issueSvid(caA, 'spiffe://a.test/srv', { extendedKeyUsage: ['1.3.6.1.5.5.7.3.1'] }),
      'wrong_extended_key_usage',
    ],
  ];
  for (const [name, cert, reason] of cases) {
    const leaf = await cert;
    refusedWith(validateX509Svid(derChain(leaf, caA, caB), trust), reason);
    assert.ok(reason, name);
  }
});

test('an SVID whose EKU includes clientAuth and serverAuth is accepted', async () => {
  const leaf = await issueSvid(caA, 'spiffe://a.test/both', {
    extendedKeyUsage: ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2'],
  });
  assert.ok(validateX509Svid(derChain(leaf), trust).ok);
});

test('an expired trust anchor anchors nothing', async () => {
  const now = Date.now();
  const oldCa = await trustDomainCa('old.test', { notBefore: new Date(now - 3 * DAY), notAfter: new Date(now - DAY) });
  const leaf = await issueSvid(oldCa, 'spiffe://old.test/x', { notBefore: new Date(now - 2 * DAY) });
  writeFile(dir, 'old.pem', oldCa.certPem);
  const store = new TrustStore({ trustDomains: [{ name: 'old.test', bundle: 'old.pem' }] }, dir, logger);
  try {
    refusedWith(validateX509Svid(derChain(leaf), store), 'untrusted_chain');
  } finally {
    store.close();
  }
});

test('plain client certificates: chain to a client CA, SPIFFE-looking ones take the SVID rules', async () => {
  const clientCa = await issueCertificate({ subject: 'CN=Client CA', ca: true });
  writeFile(dir, 'clients.pem', clientCa.certPem);
  const store = new TrustStore(
    { trustDomains: [{ name: 'a.test', bundle: 'a.json' }], caFiles: ['clients.pem'] },
    dir,
    logger,
  );
  try {
    const plain = await issueCertificate({ subject: 'CN=partner, O=Bank', issuer: clientCa, dns: ['partner.example'] });
    const v = validatePeerCertificate(derChain(plain), store);
    assert.ok(v.ok);
    assert.equal(v.kind, 'mtls');
    assert.equal(v.subject, 'CN=partner, O=Bank');
    assert.deepEqual(v.dnsNames, ['partner.example']);
    // A plain certificate from the SPIFFE CA is not a client-CA certificate.
    refusedWith(
      validatePeerCertificate(derChain(await issueCertificate({ subject: 'CN=x', issuer: caA })), store),
      'untrusted_chain',
    );
    // A client-CA certificate with a mis-cased SPIFFE URI is judged as an SVID, not waved through as plain.
    refusedWith(
      validatePeerCertificate(derChain(await issueSvid(clientCa, 'SPIFFE://a.test/x')), store),
      'invalid_spiffe_id',
    );
    const svid = await issueSvid(caA, 'spiffe://a.test/w');
    const vs = validatePeerCertificate(derChain(svid), store);
    assert.ok(vs.ok);
    assert.equal(vs.kind, 'spiffe');
  } finally {
    store.close();
  }
});

test('bundles: reload on change, rollback of spiffe_sequence refused, broken file keeps the old bundle', async () => {
  const d = tempDir();
  const ca1 = await trustDomainCa('r.test');
  const ca2 = await trustDomainCa('r.test', { subject: 'CN=r.test CA 2' });
  const file = writeFile(d, 'r.json', spiffeBundle([ca1], [], 5));
  const store = new TrustStore({ trustDomains: [{ name: 'r.test', bundle: 'r.json' }] }, d, logger);
  try {
    const leaf2 = await issueSvid(ca2, 'spiffe://r.test/x');
    refusedWith(validateX509Svid(derChain(leaf2), store), 'untrusted_chain');
    writeFileSync(file, spiffeBundle([ca1, ca2], [], 6));
    assert.equal(store.reload(), true);
    assert.ok(validateX509Svid(derChain(leaf2), store).ok);
    const generation = store.generation;
    writeFileSync(file, spiffeBundle([ca1], [], 4));
    assert.equal(store.reload(), false, 'a lower spiffe_sequence is a rollback');
    writeFileSync(file, '{"keys": [');
    assert.equal(store.reload(), false);
    assert.equal(store.generation, generation);
    assert.ok(validateX509Svid(derChain(leaf2), store).ok);
    // An empty key set means: trust nothing from this domain.
    writeFileSync(file, JSON.stringify({ keys: [], spiffe_sequence: 7 }));
    assert.equal(store.reload(), true);
    refusedWith(validateX509Svid(derChain(leaf2), store), 'unknown_trust_domain');
  } finally {
    store.close();
    rmSync(d, { recursive: true, force: true });
  }
});
