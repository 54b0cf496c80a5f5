/**
 * Provider types: the one wiring point between the KYC module and identity-provider adapters. An adapter registers
 * a factory under a type name (`didit`, `sandbox`, ...); the `kyc.providers` config names instances of those types
 * (`providers: {didit-live: {type: didit, api_key: {env: DIDIT_API_KEY}, ...}}`) and the module creates one provider
 * per entry through the factory. Type-specific keys are validated by the schema given at registration.
 */
import type { Logger } from 'pino';
import { Ajv2020 as Ajv } from 'ajv/dist/2020.js';
import type { ValidateFunction } from 'ajv';
import type { IdentityProvider } from '../providers/provider.js';
import type { Services } from '../pipeline/services.js';

export interface ProviderFactoryContext {
  /** Provider name from config (also the `:provider` of `POST /webhooks/:provider`). */
  readonly name: string;
  /** The provider's config entry, `type` included, defaults of the registered schema filled in. */
  readonly config: Record<string, unknown>;
  /** Resolves a secret reference (`{env}` / `{file}`); the value must never be logged. */
  resolveSecret(ref: unknown): string;
  /** Largest age, in seconds, of a webhook the provider may accept (`kyc.webhook_tolerance_seconds`). */
  readonly webhookToleranceSeconds: number;
  /** Base URL clients reach the gateway at; webhooks arrive at `${publicBaseUrl}/webhooks/${name}`. */
  readonly publicBaseUrl: string;
  readonly dataDir: string;
  readonly logger: Logger;
  readonly services: Services;
}

export type ProviderFactory = (ctx: ProviderFactoryContext) => IdentityProvider | Promise<IdentityProvider>;

interface ProviderType {
  factory: ProviderFactory;
  validate: ValidateFunction | undefined;
}

const types = new Map<string, ProviderType>();

/**
 * Registers a provider type. `schema` (JSON Schema of the whole entry, `type` included) validates and fills in
 * defaults before the factory runs. Registering a type twice replaces it (tests re-register their own).
 */
export function registerProviderType(type: string, factory: ProviderFactory, schema?: Record<string, unknown>): void {
  const validate = schema ? new Ajv({ allErrors: true, useDefaults: true, strict: false }).compile(schema) : undefined;
  types.set(type, { factory, validate });
}

export function providerTypes(): string[] {
  return [...types.keys()].sort();
}

/** Creates a provider from its config entry; throws an Error naming the key path when the entry is invalid. */
export async function createProvider(ctx: Omit<ProviderFactoryContext, 'config'> & { config: Record<string, unknown> }): Promise<IdentityProvider> {
  const type = String(ctx.config.type);
  const entry = types.get(type);
  if (!entry) {
    const known = providerTypes();
    throw new Error(`kyc.providers.${ctx.name}.type: unknown provider type "${type}" (known: ${known.length > 0 ? known.join(', ') : 'none registered'})`);
  }
  const config = structuredClone(ctx.config);
  if (entry.validate && !entry.validate(config)) {
    const problems = (entry.validate.errors ?? []).map((e) => `kyc.providers.${ctx.name}${e.instancePath.replace(/\//g, '.')}: ${e.message ?? 'is invalid'}`);
    throw new Error(problems.join('; '));
  }
  return entry.factory({ ...ctx, config });
}
