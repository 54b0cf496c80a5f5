/**
 * A KYC test bed: the test provider's server, an upstream that echoes the headers it received, a webhook secret
 * file, and a gateway config with a `kyc` section and a gated route. Tests start real gateways from it.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { startUpstream, httpRequest } from './harness.js';
import { TestProviderServer } from './kyc-test-provider.js';

export const WEBHOOK_SECRET = 'test-webhook-secret-0123456789';

export interface KycTestbed {
  provider: TestProviderServer;
  upstream: Awaited<ReturnType<typeof startUpstream>>;
  other: Awaited<ReturnType<typeof startUpstream>>;
  dir: string;
  secretFile: string;
  /** The `kyc` keys a shared (PostgreSQL) store requires, as secret files in `dir`: merge into `extra.kyc`. */
  sharedKeys(): Record<string, unknown>;
  /** A gateway config; `gate` is the kyc-gate policy config of route `gated` (prefix /api). */
  config(
    gate?: Record<string, unknown>,
    extra?: { kyc?: Record<string, unknown>; routes?: unknown[]; [key: string]: unknown },
  ): Record<string, unknown>;
}

export async function kycTestbed(t: TestContext): Promise<KycTestbed> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kycgate-kyc-'));
  const secretFile = path.join(dir, 'webhook-secret');
  writeFileSync(secretFile, WEBHOOK_SECRET);
  const provider = await new TestProviderServer(WEBHOOK_SECRET).start();
  const echo =
    (name: string) => (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => {
      req.resume();
      req.on('end', () =>
        res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ upstream: name, headers: req.headers })),
      );
    };
  const upstream = await startUpstream(echo('api'));
  const other = await startUpstream(echo('limited'));
  t.after(async () => {
    await provider.close();
    await upstream.close();
    await other.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    provider,
    upstream,
    other,
    dir,
    secretFile,
    sharedKeys() {
      const secret = (name: string, value: string) => {
        const file = path.join(dir, name);
        writeFileSync(file, value, { mode: 0o600 });
        return { file };
      };
      return {
        subject_key: secret('subject.key', randomBytes(32).toString('hex')),
        encryption_keys: [{ id: 'k1', key: secret('data.key', randomBytes(32).toString('base64')) }],
        assertion: {
          signing_key: secret(
            'assertion.pem',
            generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
          ),
        },
      };
    },
    config(gate = {}, extra = {}) {
      const { kyc, routes, ...rest } = extra;
      return {
        log: { level: 'warn', access: false },
        upstreams: { api: { targets: [{ url: upstream.url }] }, limited: { targets: [{ url: other.url }] } },
        kyc: {
          providers: { testprov: { type: 'test', url: provider.url, webhook_secret: { file: secretFile } } },
          workflows: {
            full: {
              provider: 'testprov',
              workflow_id: 'wf-full',
              claims: { kyc_full: 'true', kyc_basic: 'true', aml_clear: 'has(facts.aml) && facts.aml == "clear"' },
            },
          },
          reconcile_interval_seconds: 1,
          ...(kyc ?? {}),
        },
        routes: [
          {
            name: 'gated',
            match: { prefix: '/api' },
            upstream: 'api',
            policies: [
              {
                'kyc-gate': {
                  subject: { from: 'header', header: 'x-user-id', trust_unauthenticated_header: true },
                  required_claims: ['kyc_full'],
                  ...gate,
                },
              },
            ],
          },
          ...(routes ?? []),
        ],
        ...rest,
      };
    },
  };
}

export async function postWebhook(
  gatewayUrl: string,
  webhook: { body: string; headers: Record<string, string> },
  provider = 'testprov',
) {
  return httpRequest(`${gatewayUrl}/webhooks/${provider}`, {
    method: 'POST',
    headers: webhook.headers,
    body: webhook.body,
  });
}

/** Polls `check` until it returns true or `timeoutMs` passes (for state that changes in another process). */
export async function eventually(check: () => Promise<boolean>, timeoutMs = 1000, stepMs = 20): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > until) return false;
    await new Promise((r) => setTimeout(r, stepMs));
  }
}
