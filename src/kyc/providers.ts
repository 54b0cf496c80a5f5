/**
 * Provider types: the one wiring point between the KYC subsystem and identity-provider adapters. The subsystem is given
 * a list of types (`didit`, `sandbox`, ...); the `kyc.providers` config names instances of those types
 * (`providers: {didit-live: {type: didit, api_key: {env: DIDIT_API_KEY}, ...}}`) and one provider is created per
 * entry. Type-specific keys are validated by the type's schema.
 */
import { Ajv2020 as Ajv } from 'ajv/dist/2020.js';
import type { ValidateFunction } from 'ajv';
import { ConfigError, formatErrors } from '../config/load.js';
import { suggestion } from '../shared/suggest.js';
import type { VerificationProvider, ProviderFactoryContext, ProviderType } from '../providers/provider.js';

export class ProviderTypes {
  private readonly types = new Map<string, { type: ProviderType; validate: ValidateFunction | undefined }>();

  constructor(list: readonly ProviderType[]) {
    for (const type of list) {
      if (this.types.has(type.type)) throw new Error(`provider type "${type.type}" is listed twice`);
      const validate = type.schema
        ? new Ajv({ allErrors: true, useDefaults: true, strict: false, verbose: true }).compile(type.schema)
        : undefined;
      this.types.set(type.type, { type, validate });
    }
  }

  names(): string[] {
    return [...this.types.keys()].sort();
  }

  /** What is wrong with a provider's config entry (unknown type, the type's schema), each with its key path. */
  check(name: string, config: Record<string, unknown>): string[] {
    const typeName = String(config.type);
    const entry = this.types.get(typeName);
    if (!entry)
      return [`kyc.providers.${name}.type: unknown provider type "${typeName}"${suggestion(typeName, this.names())}`];
    const copy = structuredClone(config);
    if (!entry.validate || entry.validate(copy)) return [];
    return formatErrors(entry.validate.errors, `kyc.providers.${name}`);
  }

  /** Creates a provider from its config entry; throws an Error naming the key path when the entry is invalid. */
  async create(ctx: ProviderFactoryContext): Promise<VerificationProvider> {
    const typeName = String(ctx.config.type);
    const entry = this.types.get(typeName);
    const problems = this.check(ctx.name, ctx.config);
    if (!entry || problems.length > 0) throw new ConfigError(problems);
    const config = structuredClone(ctx.config);
    entry.validate?.(config);
    return entry.type.create({ ...ctx, config });
  }
}
