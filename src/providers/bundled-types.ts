/**
 * The bundled provider types: `didit`, `veriff`, `onfido`, `sumsub`, `persona` (their APIs) and `sandbox` (the
 * embedded stand-in, speaking one of their dialects, driven through that provider's adapter). Provider calls, breaker changes and sandbox deliveries become
 * gateway events (metrics, traces) and log lines; secrets are resolved through the subsystem's resolver and never logged.
 */
import { createProvider, type ProviderEntry } from './index.js';
import type { ProviderFactoryContext, ProviderType } from './provider.js';
import { diditProviderSchema } from './didit/schema.js';
import { sandboxProviderSchema } from './sandbox/schema.js';
import {
  onfidoProviderSchema,
  personaProviderSchema,
  sumsubProviderSchema,
  veriffProviderSchema,
} from './vendor-schema.js';
import type { Store } from '../store/store.js';
import type { ClusterChannel } from '../pipeline/cluster.js';
import type { FaultRegistry } from '../resilience/faults/registry.js';

async function build(ctx: ProviderFactoryContext) {
  const entry = structuredClone(ctx.config) as unknown as ProviderEntry & { webhook?: { tolerance_s?: number } };
  // The KYC section's tolerance applies unless the provider entry sets its own.
  entry.webhook = {
    ...(entry.webhook ?? {}),
    tolerance_s: entry.webhook?.tolerance_s ?? ctx.webhookToleranceSeconds,
  } as typeof entry.webhook;
  const store = ctx.services.find<Store>('store');
  const faults = ctx.services.find<FaultRegistry>('faults');
  const cluster = ctx.services.find<ClusterChannel>('cluster');
  const provider = await createProvider(entry, {
    ...(faults ? { faults: (operation: string) => faults.providerCall(ctx.name, operation) } : {}),
    name: ctx.name,
    resolveSecret: ctx.resolveSecret,
    ...(cluster ? { cluster } : {}),
    ...(store ? { store } : {}),
    publicBaseUrl: ctx.publicBaseUrl,
    onBreakerChange: (state, lastError) => {
      ctx.logger.warn(
        { provider: ctx.name, breaker: state, ...(lastError ? { last_error: lastError } : {}) },
        'provider circuit breaker changed state',
      );
      ctx.services.events.emit({ type: 'provider.breaker', outcome: state, data: { provider: ctx.name, state } });
    },
    onCall: (outcome, latencyMs, operation) => {
      ctx.services.events.emit({
        type: 'provider.call',
        outcome,
        data: { provider: ctx.name, latency_ms: latencyMs, operation },
      });
    },
    onSandboxDelivery: (outcome) => {
      ctx.logger.info({ provider: ctx.name, delivery: outcome }, 'sandbox webhook delivery');
    },
  });
  // The breaker gauge exists from the start, not only after the first change.
  const state = provider.health.state;
  ctx.services.events.emit({ type: 'provider.breaker', outcome: state, data: { provider: ctx.name, state } });
  return provider;
}

/** A bundled type: its name and schema, created by `build` like every other. */
function bundled(type: string, schema: unknown): ProviderType {
  return { type, schema: schema as Record<string, unknown>, create: build };
}

export const diditProviderType = bundled('didit', diditProviderSchema);
export const sandboxProviderType = bundled('sandbox', sandboxProviderSchema);
export const veriffProviderType = bundled('veriff', veriffProviderSchema);
export const onfidoProviderType = bundled('onfido', onfidoProviderSchema);
export const sumsubProviderType = bundled('sumsub', sumsubProviderSchema);
export const personaProviderType = bundled('persona', personaProviderSchema);
