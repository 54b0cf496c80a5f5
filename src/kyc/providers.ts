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
  private readonly types = new Map<string, ProviderType>();
  /** Compiled on first use: every CLI command loads the list, few validate a provider entry. */
  private readonly validators = new Map<string, ValidateFunction | undefined>();
  private ajv: Ajv | undefined;

  constructor(list: readonly ProviderType[]) {
    for (const type of list) {
      if (this.types.has(type.type)) throw new Error(`provider type "${type.type}" is listed twice`);
      this.types.set(type.type, type);
    }
  }

  private validator(type: ProviderType): ValidateFunction | undefined {
    if (!this.validators.has(type.type)) {
      this.ajv ??= new Ajv({ allErrors: true, useDefaults: true, strict: false, verbose: true });
      this.validators.set(type.type, type.schema ? this.ajv.compile(type.schema) : undefined);
    }
    return this.validators.get(type.type);
  }

  names(): string[] {
    return [...this.types.keys()].sort();
  }

  /** What is wrong with a provider's config entry (unknown type, the type's schema), each with its key path. */
  check(name: string, config: Record<string, unknown>): string[] {
    const typeName = String(config.type);
    const type = this.types.get(typeName);
    if (!type)
      return [`kyc.providers.${name}.type: unknown provider type "${typeName}"${suggestion(typeName, this.names())}`];
    const validate = this.validator(type);
    const copy = structuredClone(config);
    if (!validate || validate(copy)) return [];
    return formatErrors(validate.errors, `kyc.providers.${name}`);
  }

  /** Creates a provider from its config entry; throws an Error naming the key path when the entry is invalid. */
  async create(ctx: ProviderFactoryContext): Promise<VerificationProvider> {
    const typeName = String(ctx.config.type);
    const type = this.types.get(typeName);
    const problems = this.check(ctx.name, ctx.config);
    if (!type || problems.length > 0) throw new ConfigError(problems);
    const config = structuredClone(ctx.config);
    this.validator(type)?.(config);
    return type.create({ ...ctx, config });
  }
}
