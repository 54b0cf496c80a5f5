import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { buildSetup } from './setup.js';
import { ProviderTypes } from './providers.js';
import { PROVIDERS } from '../bundled.js';
import { Services } from '../pipeline/services.js';
import type { KycConfig } from './schema.js';

const base: KycConfig = {
  encryption_keys: [],
  providers: {},
  workflows: {},
  cache: { ttl_seconds: 60, unverified_ttl_seconds: 5, max_entries: 1000 },
  webhook_tolerance_seconds: 300,
  webhook_path: '/webhooks/:provider',
  jwks_path: '/.well-known/jwks.json',
  session_lease_ms: 15000,
  reconcile_interval_seconds: 30,
  assertion: { issuer: 'kycgate', lifetime_seconds: 60, cache_seconds: 30 },
};

test('keys: a shared PostgreSQL store requires configured keys; alone, keys are generated once and kept in the data directory', async (t) => {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'kycgate-setup-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  const logger = pino({ level: 'silent' });
  const env = {
    resolveSecret: () => '',
    dataDir,
    publicBaseUrl: 'http://127.0.0.1',
    logger,
    services: new Services(logger, dataDir),
    providerTypes: new ProviderTypes(PROVIDERS),
  };
  await assert.rejects(
    buildSetup(base, { ...env, dialect: 'postgres' }, undefined),
    (err: Error & { problems?: string[] }) => {
      assert.deepEqual(
        err.problems?.map((p) => p.split(':')[0]),
        ['kyc.subject_key', 'kyc.encryption_keys', 'kyc.assertion.signing_key'],
      );
      return true;
    },
  );
  const first = await buildSetup(base, { ...env, dialect: 'sqlite' }, undefined);
  const second = await buildSetup(base, { ...env, dialect: 'sqlite' }, undefined);
  assert.equal(
    first.pseudonymiser.pseudonymise('', 'u1'),
    second.pseudonymiser.pseudonymise('', 'u1'),
    'the generated subject key is persisted',
  );
  assert.equal(first.signer.jwksBody, second.signer.jwksBody, 'the generated signing key is persisted');
  assert.equal(second.sealer.open(first.sealer.seal('x', 'c'), 'c'), 'x', 'the generated data key is persisted');
  await assert.rejects(
    buildSetup(
      { ...base, assertion: { ...base.assertion, cache_seconds: 60 } },
      { ...env, dialect: 'sqlite' },
      undefined,
    ),
    /cache_seconds/,
  );
});
