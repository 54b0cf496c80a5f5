/**
 * mTLS inside the `authenticate` policy: a route accepts an X509-SVID or an API key (any of), and `authorize`
 * allows SPIFFE IDs by path prefix. The identity comes from the validated certificate, never from headers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { issueCertificate } from '../../../workload-identity/certificates.js';
import { startTestGateway, startUpstream } from '../../../../testing/harness.js';
import { issueSvid, spiffeBundle, tempDir, tlsRequest, trustDomainCa, writeFile } from '../../../../testing/spiffe.js';

test('authenticate + authorize: SPIFFE client certificates by trust domain and path prefix', async (t) => {
  const dir = tempDir();
  const serverCa = await issueCertificate({ subject: 'CN=Test server CA', ca: true });
  const server = await issueCertificate({
    subject: 'CN=localhost',
    issuer: serverCa,
    dns: ['localhost'],
    ips: ['127.0.0.1'],
  });
  writeFile(dir, 'server.pem', server.certPem);
  writeFile(dir, 'server-key.pem', server.keyPem);
  const ca = await trustDomainCa('bank.test');
  writeFile(dir, 'bank.json', spiffeBundle([ca], [], 1));
  const payments = await issueSvid(ca, 'spiffe://bank.test/ns/payments/sa/api');
  const marketing = await issueSvid(ca, 'spiffe://bank.test/ns/marketing/sa/web');
  const upstream = await startUpstream((req, res) => res.end(JSON.stringify(req.headers)));
  const gw = await startTestGateway(
    {
      listeners: [
        {
          name: 'mtls',
          port: 0,
          tls: {
            cert: 'server.pem',
            key: 'server-key.pem',
            client_auth: 'optional',
            trust_domains: [{ name: 'bank.test', bundle: 'bank.json' }],
          },
        },
      ],
      upstreams: { u: { targets: [{ url: upstream.url }] } },
      routes: [
        {
          name: 'payments-api',
          match: { prefix: '/' },
          upstream: 'u',
          policies: [
            {
              authenticate: {
                methods: [
                  { mtls: { consumers: [{ name: 'payments', trust_domain: 'bank.test' }] } },
                  { 'api-key': {} },
                ],
                mode: 'any',
              },
            },
            { authorize: { spiffe_ids: ['spiffe://bank.test/ns/payments/*'] } },
          ],
        },
      ],
    },
    { baseDir: dir },
  );
  t.after(async () => {
    await gw.close();
    await upstream.close();
  });
  const ok = await tlsRequest(gw.port, {
    cert: payments.certPem,
    key: payments.keyPem,
    ca: serverCa.certPem,
    path: '/pay',
  });
  assert.equal(ok.status, 200, ok.body);
  const denied = await tlsRequest(gw.port, {
    cert: marketing.certPem,
    key: marketing.keyPem,
    ca: serverCa.certPem,
    path: '/pay',
  });
  assert.equal(denied.status, 403, 'a valid SVID outside the allowed path prefix is forbidden');
  const anonymous = await tlsRequest(gw.port, {
    ca: serverCa.certPem,
    path: '/pay',
    headers: { 'x-kycgate-client-spiffe-id': 'spiffe://bank.test/ns/payments/sa/api' },
  });
  assert.equal(anonymous.status, 401, 'no certificate and no key: a forged identity header does not count');
  assert.match(anonymous.body, /unauthenticated/);
});
