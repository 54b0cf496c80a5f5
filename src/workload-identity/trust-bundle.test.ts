import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseTrustBundle } from './trust-bundle.js';
import { trustDomainCa } from '../../testing/spiffe.js';

test('SPIFFE bundle parsing: x509-svid and jwt-svid keys, sequence and refresh hint; unknown keys ignored', async () => {
  const ca = await trustDomainCa('a.test');
  const x5c = Buffer.from(ca.cert.rawData).toString('base64');
  const bundle = parseTrustBundle(
    JSON.stringify({
      spiffe_sequence: 12,
      spiffe_refresh_hint: 60,
      keys: [
        { use: 'x509-svid', kty: 'EC', x5c: [x5c] },
        { use: 'jwt-svid', kty: 'EC', kid: 'k1', crv: 'P-256', x: 'x', y: 'y' },
        { use: 'jwt-svid', kty: 'OKP', kid: 'k2', crv: 'Ed25519', x: 'x' },
        { kty: 'EC', kid: 'no-use' },
        { use: 'something-else', kty: 'EC', kid: 'k3' },
      ],
    }),
    'test',
  );
  assert.equal(bundle.x509Authorities.length, 1);
  assert.deepEqual([...bundle.jwtAuthorities.keys()], ['k1']);
  assert.equal(bundle.sequence, 12n);
  assert.equal(bundle.refreshHintS, 60);
  assert.equal(parseTrustBundle(ca.certPem + ca.certPem, 'pem').x509Authorities.length, 2);
  assert.equal(parseTrustBundle('{"keys": []}', 'empty').x509Authorities.length, 0);
});

test('SPIFFE bundle parsing refuses malformed documents', async () => {
  const ca = await trustDomainCa('a.test');
  const x5c = Buffer.from(ca.cert.rawData).toString('base64');
  for (const [doc, message] of [
    ['not a bundle', /neither PEM certificates nor a SPIFFE bundle/],
    ['{"keys": ', /not valid JSON/],
    ['{"no": "keys"}', /no "keys" array/],
    [JSON.stringify({ keys: [{ use: 'x509-svid', kty: 'EC', x5c: [x5c, x5c] }] }), /exactly one certificate/],
    [JSON.stringify({ keys: [{ use: 'x509-svid', kty: 'EC', x5c: ['AAAA'] }] }), /cannot be parsed/],
    [JSON.stringify({ keys: [{ use: 'jwt-svid', kty: 'EC', crv: 'P-256', x: 'x', y: 'y' }] }), /has no kid/],
    [JSON.stringify({ keys: [{ use: 'jwt-svid', kty: 'EC', kid: 'a', d: 'secret' }] }), /private key material/],
    [
      JSON.stringify({
        keys: [
          { use: 'jwt-svid', kty: 'EC', kid: 'a' },
          { use: 'jwt-svid', kty: 'EC', kid: 'a' },
        ],
      }),
      /appears twice/,
    ],
    [JSON.stringify({ keys: [], spiffe_sequence: -1 }), /spiffe_sequence/],
  ] as const) {
    assert.throws(() => parseTrustBundle(doc, 'bundle.json'), message, doc.slice(0, 60));
  }
});
