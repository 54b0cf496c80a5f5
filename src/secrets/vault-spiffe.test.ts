/**
 * Provider credentials without a static secret: the gateway logs in to Vault with its own SPIFFE identity, a
 * JWT-SVID fetched from the Workload API and presented to Vault's JWT auth method (the Vault stand-in in testing/
 * verifies it with the trust domain's key and enforces the role's bound audience and subject), then reads the
 * provider keys; a token Vault stops honouring is replaced by a new login with a fresh JWT-SVID; a workload with
 * another SPIFFE ID is refused, and the error names the login, never a token.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { SignJWT, generateKeyPair } from 'jose';
import { tempDir, trustDomainCa } from '../../testing/spiffe.js';
import { TestWorkloadApi, svidMessage } from '../../testing/workload-api.js';
import { issueCertificate } from '../workload-identity/certificates.js';
import { clientConfig, startVault } from '../../testing/vault-server.js';
import { VaultClient, VaultError } from './vault-client.js';

test('Vault login with the gateway JWT-SVID: provider keys read, re-login on a revoked token, other identities refused', async (t) => {
  const dir = tempDir();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const { publicKey, privateKey } = await generateKeyPair('ES256');
  const api = new TestWorkloadApi();
  await api.start(dir);
  t.after(() => api.close());
  let identity = 'spiffe://example.org/ns/kyc/sa/kycgate';
  api.mintJwt = async (audience) => {
    const now = Math.floor(Date.now() / 1000);
    const svid = await new SignJWT({})
      .setProtectedHeader({ alg: 'ES256', kid: 'k1', typ: 'JWT' })
      .setSubject(identity)
      .setAudience(audience)
      .setIssuedAt(now)
      .setExpirationTime(now + 300)
      .sign(privateKey);
    return [{ spiffeId: identity, svid, hint: '' }];
  };
  const vault = await startVault({
    roleId: 'unused',
    secretId: 'unused',
    jwt: {
      role: 'kycgate',
      boundAudiences: ['vault'],
      boundSubject: 'spiffe://example.org/ns/kyc/sa/kycgate',
      key: publicKey,
    },
  });
  t.after(() => vault.close());
  vault.put('providers/veriff', { api_key: 'veriff-key-1', webhook_secret: 'veriff-shared-1' });

  const client = new VaultClient(
    clientConfig(vault.address, {
      jwt_svid: { mount: 'jwt', role: 'kycgate', audience: 'vault', socket: api.address },
    }),
    dir,
  );
  t.after(() => client.close());
  const first = await client.readKv('secret/data/providers/veriff');
  assert.deepEqual(first.data, { api_key: 'veriff-key-1', webhook_secret: 'veriff-shared-1' });
  assert.equal(vault.state.logins, 1);
  assert.deepEqual(api.jwtRequests.at(-1)?.audience, ['vault'], 'the JWT-SVID was asked for Vault');
  await client.readKv('secret/data/providers/veriff');
  assert.equal(vault.state.logins, 1, 'the token is reused while its lease runs');

  // Vault stops honouring the token (revoked, expired early): one new login, with a JWT-SVID, and the read succeeds.
  vault.tokens.clear();
  vault.put('providers/veriff', { api_key: 'veriff-key-2', webhook_secret: 'veriff-shared-2' });
  assert.equal((await client.readKv('secret/data/providers/veriff')).data.api_key, 'veriff-key-2');
  assert.equal(vault.state.logins, 2);

  // Another workload identity is not bound to the role: refused, and the error says so without any secret.
  identity = 'spiffe://example.org/ns/other/sa/intruder';
  const other = new VaultClient(
    clientConfig(vault.address, {
      jwt_svid: { mount: 'jwt', role: 'kycgate', audience: 'vault', socket: api.address },
    }),
    dir,
  );
  t.after(() => other.close());
  await assert.rejects(other.readKv('secret/data/providers/veriff'), (err: unknown) => {
    assert.ok(err instanceof VaultError);
    assert.match(err.message, /^vault: JWT-SVID login: .*bound subject \(400\)$/);
    assert.doesNotMatch(err.message, /eyJ|hvs\./, 'no JWT or token in the message');
    return true;
  });
  assert.equal(vault.state.logins, 2);
});

test('Vault login with the gateway X509-SVID as client certificate (cert auth); another identity is refused', async (t) => {
  const dir = tempDir();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const trustDomain = await trustDomainCa('example.org');
  const vaultCa = await issueCertificate({ subject: 'CN=Vault CA', ca: true });
  const vaultCert = await issueCertificate({ subject: 'CN=vault', issuer: vaultCa, ips: ['127.0.0.1'] });
  const api = new TestWorkloadApi();
  await api.start(dir);
  t.after(() => api.close());
  const gateway = 'spiffe://example.org/ns/kyc/sa/kycgate';
  api.push({ svids: [(await svidMessage(trustDomain, gateway)).svid], crl: [], federatedBundles: new Map() });
  const vault = await startVault({
    roleId: 'unused',
    secretId: 'unused',
    tls: { cert: vaultCert.certPem, key: vaultCert.keyPem, clientCa: trustDomain.certPem },
    cert: { role: 'kycgate', allowedUriSans: [gateway] },
  });
  t.after(() => vault.close());
  vault.put('providers/onfido', { api_key: 'onfido-token-1' });
  writeFileSync(path.join(dir, 'vault-ca.pem'), vaultCa.certPem);
  const config = {
    ...clientConfig(vault.address, { x509_svid: { mount: 'cert', role: 'kycgate', socket: api.address } }),
    ca_file: 'vault-ca.pem',
  };
  const client = new VaultClient(config, dir);
  t.after(() => client.close());
  assert.equal((await client.readKv('secret/data/providers/onfido')).data.api_key, 'onfido-token-1');
  assert.equal(vault.state.logins, 1);

  // A workload with another identity from the same trust domain presents its SVID and is refused.
  const otherDir = path.join(dir, 'other');
  mkdirSync(otherDir);
  const otherApi = new TestWorkloadApi();
  await otherApi.start(otherDir);
  t.after(() => otherApi.close());
  const intruder = 'spiffe://example.org/ns/other/sa/intruder';
  otherApi.push({ svids: [(await svidMessage(trustDomain, intruder)).svid], crl: [], federatedBundles: new Map() });
  const other = new VaultClient(
    { ...config, auth: { x509_svid: { mount: 'cert', role: 'kycgate', socket: otherApi.address } } },
    dir,
  );
  t.after(() => other.close());
  await assert.rejects(other.readKv('secret/data/providers/onfido'), (err: unknown) => {
    assert.ok(err instanceof VaultError);
    assert.match(err.message, /^vault: X509-SVID login: invalid certificate/);
    return true;
  });
  assert.equal(vault.state.logins, 1);
});
