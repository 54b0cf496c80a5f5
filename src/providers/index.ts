/**
 * Builds a verification provider from its config entry. `didit`, `veriff`, `onfido`, `sumsub` and `persona` talk to
 * that provider's API; `sandbox` starts the embedded stand-in in this process, speaking one provider's dialect, and
 * points that provider's adapter at it, so the sandbox and the real provider run the same code path.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { Store } from '../store/store.js';
import type { BreakerState } from './breaker.js';
import type {
  CreateSessionInput,
  VerificationProvider,
  VerificationResult,
  ProviderSession,
  WebhookVerification,
} from './provider.js';
import { DiditProvider, type DiditProviderOptions } from './didit/didit.js';
import { diditProviderSchema, type DiditProviderEntry } from './didit/schema.js';
import type { ClusterChannel } from '../pipeline/cluster.js';
import { SandboxServer, type RunningSandbox } from './sandbox/sandbox-server.js';
import { sandboxProviderSchema, type SandboxProviderEntry } from './sandbox/schema.js';
import type { DeliveryOutcome } from './sandbox/webhooks.js';
import { VeriffProvider } from './veriff/veriff.js';
import { OnfidoProvider } from './onfido/onfido.js';
import { SumsubProvider } from './sumsub/sumsub.js';
import { PersonaProvider } from './persona/persona.js';
import type { VendorAdapterOptions } from './vendor-adapter.js';
import type { SumsubDigestAlgorithm } from './sumsub/signature.js';
import {
  onfidoProviderSchema,
  personaProviderSchema,
  sumsubProviderSchema,
  veriffProviderSchema,
  type VendorProviderEntry,
} from './vendor-schema.js';

export type ProviderEntry = DiditProviderEntry | SandboxProviderEntry | VendorProviderEntry;

/** JSON Schema of one provider entry (`type: didit` or `type: sandbox`), for the KYC subsystem's config section. */
export const providerEntrySchema = {
  type: 'object',
  description:
    'A verification provider: `didit`, `veriff`, `onfido`, `sumsub`, `persona` (their APIs) or `sandbox` (the embedded ' +
    'stand-in for demos and tests, speaking any of their dialects).',
  required: ['type'],
  properties: {
    type: { enum: ['didit', 'sandbox', 'veriff', 'onfido', 'sumsub', 'persona'], description: 'Provider type.' },
  },
  allOf: [
    { if: { properties: { type: { const: 'didit' } } }, then: diditProviderSchema },
    { if: { properties: { type: { const: 'sandbox' } } }, then: sandboxProviderSchema },
    { if: { properties: { type: { const: 'veriff' } } }, then: veriffProviderSchema },
    { if: { properties: { type: { const: 'onfido' } } }, then: onfidoProviderSchema },
    { if: { properties: { type: { const: 'sumsub' } } }, then: sumsubProviderSchema },
    { if: { properties: { type: { const: 'persona' } } }, then: personaProviderSchema },
  ],
} as const;

export { diditProviderSchema, sandboxProviderSchema };

export interface ProviderDeps {
  /** Provider name (config key), used in `POST /webhooks/{name}`. */
  name: string;
  /** Resolves a secret reference (the subsystem context's resolveSecret). */
  resolveSecret(ref: unknown): string;
  /** The gateway store; the sandbox persists its sessions and deliveries there when `persist` is on. */
  store?: Store;
  /** Base URL of the gateway's first listener: the sandbox's default webhook URL is `<it>/webhooks/<name>`. */
  publicBaseUrl?: string;
  /** Breaker state changes, for logs and metrics. */
  onBreakerChange?: (state: BreakerState, lastError: string | undefined) => void;
  /** Each HTTP exchange with the provider's API (outcome, latency), for metrics and traces. */
  onCall?: DiditProviderOptions['onCall'];
  /** The fault armed on this provider for a call, if any (resilience tests). */
  faults?: DiditProviderOptions['faults'];
  /** Sandbox webhook delivery attempts, for logs. */
  onSandboxDelivery?: (outcome: DeliveryOutcome) => void;
  /** Set in a worker of several (`server.workers`): the sandbox runs once, in worker 0, the others call it. */
  cluster?: ClusterChannel;
}

/** What worker 0 tells the other workers about its embedded sandbox. */
interface SharedSandbox {
  url: string;
  /** The address users' browsers open (hosted pages). */
  publicUrl: string;
  apiKey: string;
  webhookSecret: string;
  /** The API secret of the dialects that sign requests. */
  apiSecret: string;
}

function adapterOptions(
  entry: DiditProviderEntry | SandboxProviderEntry,
  deps: ProviderDeps,
): Omit<DiditProviderOptions, 'apiKey' | 'webhookSecret' | 'baseUrl'> {
  return {
    name: deps.name,
    timeouts: {
      connectMs: entry.timeouts?.connect_ms,
      headersMs: entry.timeouts?.headers_ms,
      bodyMs: entry.timeouts?.body_ms,
      totalMs: entry.timeouts?.total_ms,
    },
    breaker: {
      failureThreshold: entry.breaker?.failure_threshold,
      cooldownMs: entry.breaker?.cooldown_ms,
      slowCallMs: entry.breaker?.slow_call_ms,
      ...(deps.onBreakerChange ? { onStateChange: deps.onBreakerChange } : {}),
    },
    webhook: {
      toleranceSeconds: entry.webhook?.tolerance_s,
      maxFutureSkewSeconds: entry.webhook?.max_future_skew_s,
      accept: entry.webhook?.signatures,
    },
    ...(deps.onCall ? { onCall: deps.onCall } : {}),
    ...(deps.faults ? { faults: deps.faults } : {}),
  };
}

/** Options shared by the Veriff, Onfido, Sumsub and Persona adapters. */
function vendorOptions(
  entry: VendorProviderEntry | SandboxProviderEntry,
  deps: ProviderDeps,
): Omit<VendorAdapterOptions, 'apiKey' | 'webhookSecret' | 'baseUrl'> {
  const common = adapterOptions({ ...entry, webhook: {} } as SandboxProviderEntry, deps);
  return {
    name: common.name,
    timeouts: common.timeouts,
    breaker: common.breaker,
    onCall: common.onCall,
    faults: common.faults,
    webhook: {
      toleranceSeconds: entry.webhook?.tolerance_s,
      maxFutureSkewSeconds: entry.webhook?.max_future_skew_s,
      maxEventAgeSeconds: entry.webhook?.max_event_age_s,
    },
  };
}

function createVendor(
  type: VendorProviderEntry['type'],
  options: VendorAdapterOptions,
  extra: {
    apiSecret?: string | undefined;
    digestAlgorithms?: readonly SumsubDigestAlgorithm[] | undefined;
    hostedUrl?: string | undefined;
    linkTtlSeconds?: number | undefined;
  },
): VerificationProvider {
  if (type === 'veriff') return new VeriffProvider(options);
  if (type === 'onfido') return new OnfidoProvider(options);
  if (type === 'sumsub')
    return new SumsubProvider({
      ...options,
      apiSecret: extra.apiSecret,
      digestAlgorithms: extra.digestAlgorithms,
      linkTtlSeconds: extra.linkTtlSeconds,
    });
  return new PersonaProvider({ ...options, hostedUrl: extra.hostedUrl });
}

/** Path of each dialect's API below the sandbox's origin (the adapters' base URLs carry it). */
const DIALECT_BASE_PATH = { veriff: '', onfido: '/v3.6', sumsub: '', persona: '/api/v1' } as const;

/** An adapter in front of an embedded sandbox it owns; closing it stops the sandbox too. */
export class EmbeddedSandboxProvider implements VerificationProvider {
  constructor(
    private readonly adapter: VerificationProvider,
    /** The running sandbox (its `url` is where hosted pages live). */
    readonly sandbox: RunningSandbox,
  ) {}
  get name(): string {
    return this.adapter.name;
  }
  get health(): VerificationProvider['health'] {
    return this.adapter.health;
  }
  get pageUrl(): string {
    return this.sandbox.url;
  }
  createSession(input: CreateSessionInput): Promise<ProviderSession> {
    return this.adapter.createSession(input);
  }
  fetchDecision(sessionId: string): Promise<VerificationResult> {
    return this.adapter.fetchDecision(sessionId);
  }
  verifyWebhook(rawBody: Buffer, headers: IncomingHttpHeaders, nowSeconds?: number): WebhookVerification {
    return this.adapter.verifyWebhook(rawBody, headers, nowSeconds);
  }
  async close(): Promise<void> {
    await this.adapter.close?.();
    await this.sandbox.close();
  }
}

/** Creates (and for `sandbox`, starts) the provider an entry describes. Secrets are resolved here. */
export async function createProvider(entry: ProviderEntry, deps: ProviderDeps): Promise<VerificationProvider> {
  if (entry.type === 'didit') {
    return new DiditProvider({
      ...adapterOptions(entry, deps),
      baseUrl: entry.base_url,
      ...(entry.proxy
        ? {
            proxy: {
              url: entry.proxy.url,
              ...(entry.proxy.token !== undefined ? { token: deps.resolveSecret(entry.proxy.token) } : {}),
            },
          }
        : {}),
      apiKey: entry.api_key !== undefined ? deps.resolveSecret(entry.api_key) : undefined,
      webhookSecret: deps.resolveSecret(entry.webhook_secret),
    });
  }
  if (entry.type === 'veriff' || entry.type === 'onfido' || entry.type === 'sumsub' || entry.type === 'persona') {
    return createVendor(
      entry.type,
      {
        ...vendorOptions(entry, deps),
        baseUrl: entry.base_url,
        ...(entry.proxy
          ? {
              proxy: {
                url: entry.proxy.url,
                ...(entry.proxy.token !== undefined ? { token: deps.resolveSecret(entry.proxy.token) } : {}),
              },
            }
          : {}),
        apiKey: entry.api_key !== undefined ? deps.resolveSecret(entry.api_key) : undefined,
        webhookSecret: deps.resolveSecret(entry.webhook_secret),
      },
      {
        apiSecret: entry.api_secret !== undefined ? deps.resolveSecret(entry.api_secret) : undefined,
        digestAlgorithms: entry.webhook?.digest_algorithms,
        hostedUrl: entry.hosted_url,
        linkTtlSeconds: entry.link_ttl_s,
      },
    );
  }
  if (entry.type === 'sandbox') {
    const cluster = deps.cluster;
    const sharedKey = `sandbox:${deps.name}`;
    const known = cluster?.shared[sharedKey] as SharedSandbox | undefined;
    const apiKey =
      entry.api_key !== undefined
        ? deps.resolveSecret(entry.api_key)
        : (known?.apiKey ?? 'sbx_' + randomBytes(24).toString('base64url'));
    const webhookSecret =
      entry.webhook_secret !== undefined
        ? deps.resolveSecret(entry.webhook_secret)
        : (known?.webhookSecret ?? randomBytes(32).toString('base64url'));
    const dialect = entry.dialect ?? 'didit';
    const apiSecret = known?.apiSecret ?? randomBytes(32).toString('base64url');
    const adapterFor = (localUrl: string, publicUrl: string) =>
      dialect === 'didit'
        ? new DiditProvider({ ...adapterOptions(entry, deps), baseUrl: localUrl, apiKey, webhookSecret })
        : createVendor(
            dialect,
            { ...vendorOptions(entry, deps), baseUrl: localUrl + DIALECT_BASE_PATH[dialect], apiKey, webhookSecret },
            { apiSecret, hostedUrl: publicUrl },
          );
    if (cluster !== undefined && cluster.slot !== 0) {
      // Worker 0 runs the sandbox (one set of sessions, one webhook delivery each); this worker only calls it.
      if (known === undefined) throw new Error(`sandbox ${deps.name}: worker 0 did not announce its address`);
      return adapterFor(known.url, known.publicUrl);
    }
    const webhookUrl =
      entry.webhook_url ??
      (deps.publicBaseUrl
        ? `${deps.publicBaseUrl.replace(/\/+$/, '')}/webhooks/${encodeURIComponent(deps.name)}`
        : undefined);
    const sandbox = await new SandboxServer().start({
      dialect,
      apiSecret,
      host: entry.host ?? '127.0.0.1',
      // A replacement worker 0 binds the port its predecessor had, which the other workers call.
      port: entry.port || (known ? Number(new URL(known.url).port) : 0),
      apiKey,
      webhookSecret,
      ...(webhookUrl ? { webhookUrl } : {}),
      ...(entry.persist !== false && deps.store ? { store: deps.store } : {}),
      retryDelaysMs: entry.retry_delays_ms ?? [60_000, 240_000],
      ...(entry.public_base_url ? { publicBaseUrl: entry.public_base_url } : {}),
      ...(deps.onSandboxDelivery ? { onDelivery: deps.onSandboxDelivery } : {}),
    });
    const adapter = adapterFor(sandbox.localUrl, sandbox.url);
    cluster?.share(sharedKey, {
      url: sandbox.localUrl,
      publicUrl: sandbox.url,
      apiKey,
      webhookSecret,
      apiSecret,
    } satisfies SharedSandbox);
    return new EmbeddedSandboxProvider(adapter, sandbox);
  }
  throw new TypeError(`unknown provider type ${(entry as { type: unknown }).type as string}`);
}
