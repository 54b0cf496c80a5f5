/**
 * The provider factory: entries validate against the published schema (defaults applied, inline secrets
 * refused), and a `sandbox` entry yields a working provider whose webhooks reach `<gateway>/webhooks/<name>`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { createProvider, providerEntrySchema, EmbeddedSandboxProvider, type ProviderEntry } from './index.js';
import { DiditProvider } from './didit/didit.js';
import { resolveSecret } from '../config/secrets.js';
import { SqliteStore } from '../store/sqlite.js';
import { httpRequest } from '../../testing/harness.js';
import { startWebhookReceiver } from '../../testing/webhook-receiver.js';

const validate = new Ajv2020({
  allErrors: true,
  useDefaults: true,
  strict: true,
  allowUnionTypes: true,
  strictRequired: false,
}).compile(providerEntrySchema);

test('provider entries: defaults applied, secrets must be references, unknown keys and types refused', () => {
  const didit: Record<string, unknown> = {
    type: 'didit',
    api_key: { env: 'DIDIT_API_KEY' },
    webhook_secret: { file: 'didit.secret' },
  };
  assert.equal(validate(didit), true, JSON.stringify(validate.errors));
  assert.equal(didit.base_url, 'https://verification.didit.me');
  const sandbox: Record<string, unknown> = { type: 'sandbox' };
  assert.equal(validate(sandbox), true, JSON.stringify(validate.errors));
  assert.deepEqual(sandbox.retry_delays_ms, [60000, 240000]);
  assert.equal(
    validate({ type: 'didit', api_key: 'inline-key', webhook_secret: { env: 'X' } }),
    false,
    'an inline secret is refused',
  );
  assert.equal(
    validate({ type: 'didit', webhook_secret: { env: 'X' } }),
    true,
    'without api_key the provider verifies webhooks only',
  );
  assert.equal(validate({ type: 'didit', api_key: { env: 'X' } }), false, 'webhook_secret is required');
  assert.equal(validate({ type: 'sandbox', base_url: 'https://x' }), false, 'keys of another type are refused');
  assert.equal(validate({ type: 'onfido' }), false);
  assert.equal(
    validate({
      type: 'didit',
      api_key: { env: 'A' },
      webhook_secret: { env: 'B' },
      proxy: { url: 'http://proxy.internal:3128', token: { env: 'P' } },
    }),
    true,
  );
  assert.equal(
    validate({
      type: 'didit',
      api_key: { env: 'A' },
      webhook_secret: { env: 'B' },
      proxy: { url: 'http://user:pass@proxy.internal:3128' },
    }),
    false,
    'no credentials in the proxy URL',
  );
  assert.equal(
    validate({
      type: 'didit',
      api_key: { env: 'A' },
      webhook_secret: { env: 'B' },
      webhook: { signatures: ['v2', 'raw'] },
      breaker: { failure_threshold: 2 },
    }),
    true,
  );
});

test('createProvider: didit resolves its secret references; sandbox starts and delivers to the gateway webhook path', async (t) => {
  const didit = await createProvider(
    {
      type: 'didit',
      api_key: { env: 'KYCGATE_TEST_DIDIT_KEY' },
      webhook_secret: { env: 'KYCGATE_TEST_DIDIT_SECRET' },
    } as ProviderEntry,
    {
      name: 'didit',
      resolveSecret: (ref) =>
        resolveSecret(ref, process.cwd(), { KYCGATE_TEST_DIDIT_KEY: 'k', KYCGATE_TEST_DIDIT_SECRET: 's' }),
    },
  );
  assert.ok(didit instanceof DiditProvider);
  assert.equal(didit.health.state, 'closed');
  await didit.close?.();
  assert.throws(() => resolveSecret({ env: 'KYCGATE_TEST_UNSET_VAR' }, process.cwd(), {}), /not set/);

  const dir = mkdtempSync(path.join(os.tmpdir(), 'kycgate-providers-'));
  const store = new SqliteStore(path.join(dir, 'db.sqlite'));
  const receiver = await startWebhookReceiver();
  t.after(async () => {
    await receiver.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const gatewayBase = new URL(receiver.url).origin;
  const provider = await createProvider(
    { type: 'sandbox' },
    { name: 'didit', resolveSecret: () => assert.fail('no secret to resolve'), store, publicBaseUrl: gatewayBase },
  );
  t.after(() => provider.close?.());
  assert.ok(provider instanceof EmbeddedSandboxProvider);
  assert.equal(provider.name, 'didit');
  const session = await provider.createSession({
    workflowId: '6f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f',
    vendorData: 'subject-hmac-1',
  });
  const done = await httpRequest(session.url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: 'decision=approved',
  });
  assert.equal(done.status, 200);
  const [hook] = await receiver.waitFor(1, (w) => w.json.status === 'Approved');
  assert.equal(new URL(receiver.url).pathname, '/webhooks/didit');
  const verified = provider.verifyWebhook(hook!.body, hook!.headers);
  assert.equal(verified.ok && verified.event.state, 'approved');
  const rows = await store.query<{ n: number }>('SELECT COUNT(*) AS n FROM sandbox_sessions');
  assert.equal(Number(rows[0]!.n), 1, 'sandbox sessions are persisted in the gateway store');
});
