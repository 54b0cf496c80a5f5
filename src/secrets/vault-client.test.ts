/** The Vault client and reference discovery, against a stand-in that follows Vault's documented HTTP API. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { clientConfig, startVault } from '../../testing/vault-server.js';
import { VaultClient, type VaultError } from './vault-client.js';
import { collectVaultRefs } from './vault-secrets.js';

test('vault client: KV v2 read with a token, permission denied and not found name the path and never a value', async (t) => {
  const vault = await startVault({ roleId: 'role', secretId: 'sid' });
  t.after(() => vault.close());
  vault.tokens.add('hvs.static');
  vault.put('kycgate/didit', { api_key: 'didit-key-value', webhook_secret: 'whsec-value' });
  process.env.KYCGATE_TEST_VAULT_TOKEN = 'hvs.static';
  const client = new VaultClient(clientConfig(vault.address, { token: { env: 'KYCGATE_TEST_VAULT_TOKEN' } }), '.');
  t.after(() => client.close());
  const secret = await client.readKv('secret/data/kycgate/didit');
  assert.deepEqual(secret.data, { api_key: 'didit-key-value', webhook_secret: 'whsec-value' });
  assert.equal(secret.version, 1);
  await assert.rejects(
    client.readKv('secret/data/kycgate/missing'),
    (err: VaultError) => err.status === 404 && /not found/.test(err.message),
  );
  process.env.KYCGATE_TEST_VAULT_TOKEN = 'hvs.revoked';
  await assert.rejects(client.readKv('secret/data/kycgate/didit'), (err: VaultError) => {
    assert.equal(err.status, 403);
    assert.match(err.message, /secret\/data\/kycgate\/didit: permission denied \(403\)/);
    assert.doesNotMatch(err.message, /hvs\.|didit-key-value/);
    return true;
  });
});

test('vault client: AppRole logs in once, reuses the token and logs in again when it is refused', async (t) => {
  const vault = await startVault({ roleId: 'role-1', secretId: 'secret-1' });
  t.after(() => vault.close());
  vault.put('app', { k: 'v1' });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kycgate-vault-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(path.join(dir, 'role_id'), 'role-1\n');
  writeFileSync(path.join(dir, 'secret_id'), 'secret-1\n');
  const client = new VaultClient(
    clientConfig(vault.address, {
      approle: { mount: 'approle', role_id: { file: 'role_id' }, secret_id: { file: 'secret_id' } },
    }),
    dir,
  );
  t.after(() => client.close());
  assert.equal((await client.readKv('secret/data/app')).data.k, 'v1');
  assert.equal((await client.readKv('secret/data/app')).data.k, 'v1');
  assert.equal(vault.state.logins, 1);
  vault.tokens.clear(); // revoked
  assert.equal((await client.readKv('secret/data/app')).data.k, 'v1');
  assert.equal(vault.state.logins, 2);
  writeFileSync(path.join(dir, 'secret_id'), 'wrong\n');
  vault.tokens.clear();
  await assert.rejects(
    client.readKv('secret/data/app'),
    (err: VaultError) =>
      /AppRole login: invalid role or secret ID \(400\)/.test(err.message) && !/wrong/.test(err.message),
  );
});

test('vault client: concurrent reads share one AppRole login, and one login again after the token is revoked', async (t) => {
  const vault = await startVault({ roleId: 'role-1', secretId: 'secret-1' });
  t.after(() => vault.close());
  vault.put('a', { k: 'va' });
  vault.put('b', { k: 'vb' });
  process.env.KYCGATE_TEST_VAULT_ROLE_ID = 'role-1';
  process.env.KYCGATE_TEST_VAULT_SECRET_ID = 'secret-1';
  const client = new VaultClient(
    clientConfig(vault.address, {
      approle: {
        mount: 'approle',
        role_id: { env: 'KYCGATE_TEST_VAULT_ROLE_ID' },
        secret_id: { env: 'KYCGATE_TEST_VAULT_SECRET_ID' },
      },
    }),
    '.',
  );
  t.after(() => client.close());
  const readAll = () =>
    Promise.all(Array.from({ length: 12 }, (_, i) => client.readKv(i % 2 === 0 ? 'secret/data/a' : 'secret/data/b')));
  const first = await readAll();
  assert.deepEqual(
    first.map((s) => s.data.k),
    Array.from({ length: 12 }, (_, i) => (i % 2 === 0 ? 'va' : 'vb')),
  );
  assert.equal(vault.state.logins, 1, 'one login for twelve parallel reads');
  vault.tokens.clear(); // revoked: every read in flight gets 403 with the same token
  const second = await readAll();
  assert.ok(second.every((s) => s.data.k === 'va' || s.data.k === 'vb'));
  assert.equal(vault.state.logins, 2, 'one login again, not one per refused read');
  assert.equal(vault.tokens.size, 1);
  // A failed login is shared too, and not kept: the next read tries again.
  vault.tokens.clear();
  process.env.KYCGATE_TEST_VAULT_SECRET_ID = 'wrong';
  const failed = await Promise.allSettled(Array.from({ length: 6 }, () => client.readKv('secret/data/a')));
  assert.ok(
    failed.every(
      (r) =>
        r.status === 'rejected' && /AppRole login: invalid role or secret ID \(400\)/.test((r.reason as Error).message),
    ),
  );
  process.env.KYCGATE_TEST_VAULT_SECRET_ID = 'secret-1';
  assert.equal((await client.readKv('secret/data/a')).data.k, 'va');
  assert.equal(vault.state.logins, 3);
});

test('vault refs: every reference in a config is found, policy configs included', () => {
  const refs = collectVaultRefs({
    kyc: { encryption_keys: [{ id: 'k1', key: { vault: { path: 'secret/data/kyc', key: 'k1' } } }] },
    routes: [
      {
        policies: [
          {
            authenticate: {
              methods: [{ jwt: { issuers: [{ hmac_secret: { vault: { path: 'secret/data/jwt', key: 'hmac' } } }] } }],
            },
          },
        ],
      },
    ],
    other: { env: 'X' },
  });
  assert.deepEqual(refs, [
    { path: 'secret/data/kyc', key: 'k1' },
    { path: 'secret/data/jwt', key: 'hmac' },
  ]);
});
