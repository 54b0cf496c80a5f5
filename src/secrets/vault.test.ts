import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SignJWT } from 'jose';
import { stringify } from 'yaml';
import { startTestGateway, startUpstream, httpRequest } from '../../testing/harness.js';
import { clientConfig, startVault } from '../../testing/vault-server.js';
import { VaultClient, type VaultError } from './vault-client.js';
import { VaultSecrets } from './vault-secrets.js';
import { EventBus } from '../pipeline/events.js';
import pino from 'pino';
import { issueCertificate } from '../workload-identity/certificates.js';
import { ConfigValidator } from '../config/load.js';
import { SUBSYSTEMS, POLICIES } from '../bundled.js';
import type { GatewayEvent } from '../pipeline/events.js';
import type { GatewayConfig } from '../config/types.js';

const OLD_SECRET = 'old-hmac-secret-that-is-at-least-32-bytes-long';
const NEW_SECRET = 'new-hmac-secret-that-is-at-least-32-bytes-long';

async function tokenSignedWith(secret: string): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ iss: 'https://idp', aud: 'api', sub: 'u1', exp: now + 300 })
    .setProtectedHeader({ alg: 'HS256' })
    .sign(new TextEncoder().encode(secret));
}

test('vault secrets: a rotated JWT HMAC secret is picked up without a restart; Vault down keeps the last good value', async (t) => {
  const vault = await startVault({ roleId: 'role-1', secretId: 'secret-1' });
  t.after(() => vault.close());
  vault.put('kycgate/jwt', { hmac: OLD_SECRET });
  const upstream = await startUpstream((_req, res) => res.end('ok'));
  t.after(() => upstream.close());
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kycgate-vault-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(path.join(dir, 'role_id'), 'role-1');
  writeFileSync(path.join(dir, 'secret_id'), 'secret-1');
  const config = {
    listeners: [{ name: 'main', port: 0 }],
    admin: { port: 0 },
    log: { level: 'info' },
    vault: {
      address: vault.address,
      refresh_interval_s: 1,
      retry_interval_s: 1,
      auth: { approle: { role_id: { file: 'role_id' }, secret_id: { file: 'secret_id' } } },
    },
    upstreams: { app: { targets: [{ url: upstream.url }] } },
    routes: [
      {
        name: 'api',
        match: { prefix: '/' },
        upstream: 'app',
        policies: [
          {
            authenticate: {
              methods: [
                {
                  jwt: {
                    issuers: [
                      {
                        issuer: 'https://idp',
                        hmac_secret: { vault: { path: 'secret/data/kycgate/jwt', key: 'hmac' } },
                        audiences: ['api'],
                      },
                    ],
                  },
                },
              ],
            },
          },
        ],
      },
    ],
  };
  const file = path.join(dir, 'kycgate.yaml');
  writeFileSync(file, stringify(config));
  const gw = await startTestGateway(config, { file, baseDir: dir, watchConfig: false });
  t.after(() => gw.close());
  const events: GatewayEvent[] = [];
  const waiters: Array<{ type: string; resolve: (e: GatewayEvent) => void }> = [];
  gw.gateway.services.events.subscribe({
    onEvent(e) {
      events.push(e);
      for (const w of waiters.splice(0))
        if (w.type === e.type) w.resolve(e);
        else waiters.push(w);
    },
  });
  const nextEvent = (type: string) => new Promise<GatewayEvent>((resolve) => waiters.push({ type, resolve }));
  const call = async (secret: string) =>
    (await httpRequest(gw.url + '/x', { headers: { authorization: `Bearer ${await tokenSignedWith(secret)}` } }))
      .status;

  assert.equal(await call(OLD_SECRET), 200);
  assert.equal(await call(NEW_SECRET), 401);

  // Rotation in Vault: the background refresh sees the new version and the configuration is compiled again.
  const reloaded = nextEvent('config.reloaded');
  vault.put('kycgate/jwt', { hmac: NEW_SECRET });
  const event = await reloaded;
  assert.equal(event.data?.reason, 'secret rotated');
  assert.ok(
    events.some(
      (e) => e.type === 'secret.rotated' && e.data?.path === 'secret/data/kycgate/jwt' && e.data?.version === 2,
    ),
  );
  assert.equal(await call(NEW_SECRET), 200);
  assert.equal(await call(OLD_SECRET), 401);

  // Vault unavailable: a warning, an event, a readiness detail; the last good value keeps serving.
  vault.state.down = true;
  const failed = nextEvent('secret.refresh_failed');
  await gw.gateway.vault.refresh(true);
  assert.equal((await failed).outcome, 'status_503');
  assert.equal(await call(NEW_SECRET), 200);
  const ready = await httpRequest(gw.adminUrl + '/readyz');
  assert.equal(ready.status, 200);
  const vaultCheck = (
    JSON.parse(ready.body) as { checks: { vault: { detail: { stale: Array<{ path: string; error: string }> } } } }
  ).checks.vault;
  assert.equal(vaultCheck.detail.stale[0]?.path, 'secret/data/kycgate/jwt');
  assert.match(vaultCheck.detail.stale[0]!.error, /Vault is sealed \(503\)/);
  assert.ok(gw.logs.some((l) => l.msg === 'vault secret refresh failed; the last good value keeps serving'));

  // Back up: the stale mark clears.
  vault.state.down = false;
  await gw.gateway.vault.refresh(true);
  const readyAgain = JSON.parse((await httpRequest(gw.adminUrl + '/readyz')).body) as {
    checks: { vault: { detail: { stale: unknown[] } } };
  };
  assert.deepEqual(readyAgain.checks.vault.detail.stale, []);

  // No value ever reached a log line or an event.
  const text = JSON.stringify(gw.logs) + JSON.stringify(events);
  assert.ok(
    !text.includes(OLD_SECRET) && !text.includes(NEW_SECRET) && !text.includes('hvs.test'),
    'secret values or tokens were logged',
  );
});

test('vault secrets: a start with an unreadable reference fails naming the reference, not a value', async (t) => {
  const vault = await startVault({ roleId: 'role-1', secretId: 'secret-1' });
  t.after(() => vault.close());
  process.env.KYCGATE_TEST_VAULT_BAD_TOKEN = 'hvs.not-issued';
  await assert.rejects(
    startTestGateway({
      vault: { address: vault.address, auth: { token: { env: 'KYCGATE_TEST_VAULT_BAD_TOKEN' } } },
      routes: [
        {
          name: 'api',
          match: { prefix: '/' },
          policies: [
            {
              authenticate: {
                methods: [
                  {
                    jwt: {
                      issuers: [
                        {
                          issuer: 'https://idp',
                          hmac_secret: { vault: { path: 'secret/data/kycgate/jwt', key: 'hmac' } },
                          audiences: ['api'],
                        },
                      ],
                    },
                  },
                ],
              },
            },
          ],
        },
      ],
    }),
    (err: Error & { problems?: string[] }) => {
      assert.deepEqual(err.problems, [
        'secret {vault: secret/data/kycgate/jwt#hmac}: vault: secret/data/kycgate/jwt: permission denied (403)',
      ]);
      return true;
    },
  );
});

test('vault secrets: KYC encryption keys from Vault; after rotation to a new key id, data sealed under the old key still opens', async (t) => {
  const vault = await startVault({ roleId: 'role-1', secretId: 'secret-1' });
  t.after(() => vault.close());
  const k1 = Buffer.alloc(32, 1).toString('base64');
  const k2 = Buffer.alloc(32, 2).toString('hex');
  vault.put('kycgate/data-keys', { k1 });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kycgate-vault-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(path.join(dir, 'role_id'), 'role-1');
  writeFileSync(path.join(dir, 'secret_id'), 'secret-1');
  const keyRef = (id: string) => ({ id, key: { vault: { path: 'secret/data/kycgate/data-keys', key: id } } });
  const config = (keys: string[]) => ({
    listeners: [{ name: 'main', port: 0 }],
    admin: { port: 0 },
    log: { level: 'info' },
    vault: {
      address: vault.address,
      auth: { approle: { role_id: { file: 'role_id' }, secret_id: { file: 'secret_id' } } },
    },
    kyc: { encryption_keys: keys.map(keyRef) },
    routes: [{ name: 'r', match: { prefix: '/' }, policies: [{ 'static-response': {} }] }],
  });
  const file = path.join(dir, 'kycgate.yaml');
  writeFileSync(file, stringify(config(['k1'])));
  const gw = await startTestGateway(config(['k1']), { file, baseDir: dir, watchConfig: false });
  t.after(() => gw.close());
  type Sealer = { currentKeyId: string; seal(p: string, a: string): string; open(s: string, a: string): string };
  const sealer = () => gw.gateway.services.get<{ setup: { sealer: Sealer } }>('kyc').setup.sealer;
  assert.equal(sealer().currentKeyId, 'k1');
  const old = sealer().seal('personal data', 'subject-1');

  // Rotation: the new key is added in Vault and put first in the list; the old one stays to decrypt.
  vault.put('kycgate/data-keys', { k1, k2 });
  writeFileSync(file, stringify(config(['k2', 'k1'])));
  assert.equal(await gw.gateway.reload('new data key'), true);
  assert.equal(sealer().currentKeyId, 'k2');
  assert.match(sealer().seal('new data', 'subject-2'), /^v1\.k2\./);
  assert.equal(sealer().open(old, 'subject-1'), 'personal data');
  assert.ok(!JSON.stringify(gw.logs).includes(k1) && !JSON.stringify(gw.logs).includes(k2));
});

test("vault over HTTPS: Vault's certificate is verified against vault.ca_file; a path with dot segments is refused", async (t) => {
  const ca = await issueCertificate({ subject: 'CN=Vault test CA', ca: true });
  const leaf = await issueCertificate({ subject: 'CN=vault', ips: ['127.0.0.1'], issuer: ca });
  const vault = await startVault({ roleId: 'r', secretId: 's', tls: { cert: leaf.certPem, key: leaf.keyPem } });
  t.after(() => vault.close());
  vault.tokens.add('hvs.tls');
  vault.put('app', { k: 'over-tls' });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kycgate-vault-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(path.join(dir, 'vault-ca.pem'), ca.certPem);
  writeFileSync(path.join(dir, 'token'), 'hvs.tls\n');
  const trusted = new VaultClient(
    { ...clientConfig(vault.address, { token: { file: 'token' } }), ca_file: 'vault-ca.pem' },
    dir,
  );
  t.after(() => trusted.close());
  assert.equal((await trusted.readKv('secret/data/app')).data.k, 'over-tls');
  const untrusted = new VaultClient(clientConfig(vault.address, { token: { file: 'token' } }), dir);
  t.after(() => untrusted.close());
  await assert.rejects(
    untrusted.readKv('secret/data/app'),
    (err: VaultError) => err.status === undefined && /unreachable/.test(err.message),
  );
  assert.throws(
    () =>
      new VaultClient({ ...clientConfig(vault.address, { token: { file: 'token' } }), ca_file: 'missing.pem' }, dir),
    /vault\.ca_file: missing\.pem cannot be read \(ENOENT\)/,
  );

  const validator = new ConfigValidator(SUBSYSTEMS, POLICIES);
  const withPath = (p: string) => ({
    listeners: [{ name: 'main', port: 0 }],
    vault: { address: vault.address, auth: { token: { file: 'token' } } },
    kyc: { subject_key: { vault: { path: p, key: 'k' } } },
  });
  assert.doesNotThrow(() => validator.validate(withPath('secret/data/kycgate/app')));
  assert.throws(() => validator.validate(withPath('secret/data/../../sys/seal')), /kyc\.subject_key/);
});

test('vault secrets: a reload pointing at a Vault that cannot be read is refused; the running config keeps its secrets', async (t) => {
  const vault = await startVault({ roleId: 'r', secretId: 's' });
  t.after(() => vault.close());
  vault.tokens.add('hvs.ok');
  vault.put('kycgate/jwt', { hmac: OLD_SECRET });
  const upstream = await startUpstream((_req, res) => res.end('ok'));
  t.after(() => upstream.close());
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kycgate-vault-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(path.join(dir, 'token'), 'hvs.ok');
  const config = (address: string) => ({
    listeners: [{ name: 'main', port: 0 }],
    admin: { port: 0 },
    vault: { address, timeout_ms: 1000, auth: { token: { file: 'token' } } },
    upstreams: { app: { targets: [{ url: upstream.url }] } },
    routes: [
      {
        name: 'api',
        match: { prefix: '/' },
        upstream: 'app',
        policies: [
          {
            authenticate: {
              methods: [
                {
                  jwt: {
                    issuers: [
                      {
                        issuer: 'https://idp',
                        hmac_secret: { vault: { path: 'secret/data/kycgate/jwt', key: 'hmac' } },
                        audiences: ['api'],
                      },
                    ],
                  },
                },
              ],
            },
          },
        ],
      },
    ],
  });
  const file = path.join(dir, 'kycgate.yaml');
  writeFileSync(file, stringify(config(vault.address)));
  const gw = await startTestGateway(config(vault.address), { file, baseDir: dir, watchConfig: false });
  t.after(() => gw.close());
  const call = async () =>
    (await httpRequest(gw.url + '/x', { headers: { authorization: `Bearer ${await tokenSignedWith(OLD_SECRET)}` } }))
      .status;
  assert.equal(await call(), 200);

  const closed = await startUpstream(() => undefined);
  const deadAddress = closed.url;
  await closed.close();
  writeFileSync(file, stringify(config(deadAddress)));
  assert.equal(await gw.gateway.reload('test'), false);
  const refused = gw.logs.find((l) => l.msg === 'configuration refused; the previous configuration keeps serving');
  assert.match(
    JSON.stringify(refused?.problems),
    /secret \{vault: secret\/data\/kycgate\/jwt#hmac\}: vault: secret\/data\/kycgate\/jwt: unreachable/,
  );
  assert.equal(await call(), 200);
  // The running setup still refreshes from the Vault it was configured with.
  await gw.gateway.vault.refresh(true);
  assert.ok(!gw.logs.some((l) => l.msg === 'vault secret refresh failed; the last good value keeps serving'));
});

test('vault secrets: a config without a file (as the built-in demo) is compiled again from memory when a secret rotates', async (t) => {
  const vault = await startVault({ roleId: 'r', secretId: 's' });
  t.after(() => vault.close());
  vault.tokens.add('hvs.mem');
  vault.put('kycgate/jwt', { hmac: OLD_SECRET });
  process.env.KYCGATE_TEST_VAULT_MEMORY_TOKEN = 'hvs.mem';
  const upstream = await startUpstream((_req, res) => res.end('ok'));
  t.after(() => upstream.close());
  const gw = await startTestGateway({
    vault: { address: vault.address, auth: { token: { env: 'KYCGATE_TEST_VAULT_MEMORY_TOKEN' } } },
    upstreams: { app: { targets: [{ url: upstream.url }] } },
    routes: [
      {
        name: 'api',
        match: { prefix: '/' },
        upstream: 'app',
        policies: [
          {
            authenticate: {
              methods: [
                {
                  jwt: {
                    issuers: [
                      {
                        issuer: 'https://idp',
                        hmac_secret: { vault: { path: 'secret/data/kycgate/jwt', key: 'hmac' } },
                        audiences: ['api'],
                      },
                    ],
                  },
                },
              ],
            },
          },
        ],
      },
    ],
  });
  t.after(() => gw.close());
  const reloaded = new Promise<GatewayEvent>((resolve) => {
    const off = gw.gateway.services.events.subscribe({
      onEvent: (e) => {
        if (e.type !== 'config.reloaded') return;
        off();
        resolve(e);
      },
    });
  });
  vault.put('kycgate/jwt', { hmac: NEW_SECRET });
  await gw.gateway.vault.refresh(true);
  assert.equal((await reloaded).data?.reason, 'secret rotated');
  const status = async (secret: string) =>
    (await httpRequest(gw.url + '/x', { headers: { authorization: `Bearer ${await tokenSignedWith(secret)}` } }))
      .status;
  assert.equal(await status(NEW_SECRET), 200);
  assert.equal(await status(OLD_SECRET), 401);
});

test('vault secrets: a lease shorter than refresh_interval_s sets when the secret is read again', async (t) => {
  const vault = await startVault({ roleId: 'r', secretId: 's', leaseSeconds: 1 });
  t.after(() => vault.close());
  vault.tokens.add('hvs.lease');
  vault.put('app', { k: 'one' });
  process.env.KYCGATE_TEST_VAULT_LEASE_TOKEN = 'hvs.lease';
  const events = new EventBus();
  const secrets = new VaultSecrets(pino({ level: 'silent' }), events);
  t.after(() => secrets.close());
  const config = {
    vault: {
      address: vault.address,
      timeout_ms: 2000,
      refresh_interval_s: 300,
      retry_interval_s: 10,
      auth: { token: { env: 'KYCGATE_TEST_VAULT_LEASE_TOKEN' } },
    },
    app: { key: { vault: { path: 'secret/data/app', key: 'k' } } },
  } as unknown as GatewayConfig;
  await secrets.prepare(config, '.');
  secrets.retain(config);
  assert.equal(secrets.cached({ path: 'secret/data/app', key: 'k' }), 'one');
  const rotated = new Promise<string[]>((resolve) => (secrets.onRotated = resolve));
  const startedAt = Date.now();
  vault.put('app', { k: 'two' });
  assert.deepEqual(await rotated, ['secret/data/app']);
  assert.ok(Date.now() - startedAt < 5000, 'read again after the 1 s lease, not the 300 s interval');
  assert.equal(secrets.cached({ path: 'secret/data/app', key: 'k' }), 'two');
});
