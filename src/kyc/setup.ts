/**
 * Turns the `kyc` config section into working parts: keys, providers and compiled workflows. Built on start and
 * on every reload; providers whose config did not change are kept (with their breakers and connections).
 */
import type { Logger } from 'pino';
import type { VerificationProvider } from '../providers/provider.js';
import type { Services } from '../pipeline/services.js';
import type { Dialect } from '../store/store.js';
import { ConfigError } from '../config/load.js';
import { suggestion } from '../shared/suggest.js';
import type { KycConfig, KycWorkflowConfig } from './schema.js';
import { compileClaims, type ClaimRule } from './claims.js';
import { compileRouting, type RoutingRule } from './routing.js';
import { parseDuration } from '../auth/api-keys/format.js';
import type { ProviderTypes } from './providers.js';
import { decodeKey32, persistedSecret, randomKeyHex } from './keys.js';
import { SubjectPseudonymiser } from './pseudonym.js';
import { DataSealer } from './sealed-data.js';
import { AssertionSigner, loadAssertionKey, persistedAssertionKeyPem } from './assertion.js';

export interface CompiledWorkflow {
  readonly name: string;
  /** The primary provider. */
  readonly provider: string;
  /** Primary then fallbacks, in the order they are tried. */
  readonly providers: readonly string[];
  readonly routing: readonly RoutingRule[];
  readonly workflowId: string;
  /** The provider's own workflow id per provider name (`workflow_id` unless `workflow_ids` says otherwise). */
  readonly workflowIds: ReadonlyMap<string, string>;
  readonly claimRules: readonly ClaimRule[];
  /** Every claim this workflow can grant. */
  readonly grants: ReadonlySet<string>;
  readonly maxAgeMs: number;
  /** The verification lapses when the verified document expires. */
  readonly expireWithDocument: boolean;
  readonly sessionReuseMs: number;
  readonly callbackUrl: string | undefined;
  /** Shown to the user on the hosted page and the gate's pages: who asks, and why. */
  readonly applicationName: string | undefined;
  readonly purpose: string | undefined;
  readonly retainPersonal: KycWorkflowConfig['retain_personal'];
}

export interface KycSetup {
  readonly config: KycConfig;
  readonly pseudonymiser: SubjectPseudonymiser;
  readonly sealer: DataSealer;
  readonly signer: AssertionSigner;
  readonly providers: ReadonlyMap<string, VerificationProvider>;
  /** Provider config JSON, to keep unchanged providers across reloads. */
  readonly providerConfigs: ReadonlyMap<string, string>;
  readonly workflows: ReadonlyMap<string, CompiledWorkflow>;
}

export interface SetupEnv {
  resolveSecret(ref: unknown): string;
  dataDir: string;
  publicBaseUrl: string;
  logger: Logger;
  services: Services;
  dialect: Dialect;
  /** The provider types `kyc.providers.*.type` may name. */
  providerTypes: ProviderTypes;
}

/**
 * What is wrong with the section without touching the environment: keys required with a shared store, workflow
 * references and claim rules, provider types and their options. Run by `kycgate validate` and on every (re)load.
 */
export function checkKyc(config: KycConfig, dialect: Dialect, providerTypes: ProviderTypes): string[] {
  const problems: string[] = [];
  for (const [name, pc] of Object.entries(config.providers))
    problems.push(...providerTypes.check(name, pc as Record<string, unknown>));
  compileSection(config, dialect, problems);
  return problems;
}

function compileSection(config: KycConfig, dialect: Dialect, problems: string[]): Map<string, CompiledWorkflow> {
  if (dialect === 'postgres') {
    // Instances sharing a database must share keys: a key generated per instance would split subjects and data.
    if (!config.subject_key)
      problems.push('kyc.subject_key: required when the store is shared (store.driver: postgres)');
    if (config.encryption_keys.length === 0)
      problems.push('kyc.encryption_keys: required when the store is shared (store.driver: postgres)');
    if (!config.assertion.signing_key)
      problems.push('kyc.assertion.signing_key: required when the store is shared (store.driver: postgres)');
  }
  if (config.assertion.cache_seconds >= config.assertion.lifetime_seconds)
    problems.push('kyc.assertion.cache_seconds: must be below lifetime_seconds');
  const workflows = new Map<string, CompiledWorkflow>();
  for (const [name, wf] of Object.entries(config.workflows)) {
    if (!(wf.provider in config.providers))
      problems.push(
        `kyc.workflows.${name}.provider: no provider named "${wf.provider}"${suggestion(wf.provider, Object.keys(config.providers))}`,
      );
    const fallbacks = wf.fallbacks ?? [];
    const rules = wf.routing ?? [];
    for (const f of fallbacks)
      if (!(f in config.providers)) problems.push(`kyc.workflows.${name}.fallbacks: no provider named "${f}"`);
    rules.forEach((r, i) => {
      if (!(r.provider in config.providers))
        problems.push(`kyc.workflows.${name}.routing[${i}].provider: no provider named "${r.provider}"`);
    });
    const providers = [...new Set([wf.provider, ...fallbacks])];
    const workflowIds = new Map<string, string>();
    for (const p of new Set([...providers, ...rules.map((r) => r.provider)]))
      workflowIds.set(p, wf.workflow_ids?.[p] ?? wf.workflow_id);
    try {
      const claimRules = compileClaims(name, wf.claims);
      workflows.set(name, {
        name,
        provider: wf.provider,
        providers,
        routing: compileRouting(name, rules),
        workflowId: wf.workflow_id,
        workflowIds,
        claimRules,
        grants: new Set(claimRules.map((c) => c.name)),
        maxAgeMs: wf.max_age !== undefined ? parseDuration(wf.max_age) : wf.max_age_days * 86_400_000,
        expireWithDocument: wf.expire_with_document ?? false,
        sessionReuseMs: wf.session_reuse_hours * 3_600_000,
        callbackUrl: wf.callback_url,
        applicationName: wf.application_name,
        purpose: wf.purpose,
        retainPersonal: wf.retain_personal,
      });
    } catch (err) {
      problems.push((err as Error).message);
    }
  }
  return workflows;
}

export async function buildSetup(config: KycConfig, env: SetupEnv, previous: KycSetup | undefined): Promise<KycSetup> {
  const problems: string[] = [];
  const workflows = compileSection(config, env.dialect, problems);
  if (problems.length > 0) throw new ConfigError(problems);

  const subjectKey = config.subject_key
    ? Buffer.from(env.resolveSecret(config.subject_key), 'utf8')
    : Buffer.from(persistedSecret(env.dataDir, 'kyc-subject.key', randomKeyHex), 'utf8');
  if (subjectKey.length < 32) throw new ConfigError(['kyc.subject_key: must be at least 32 bytes']);
  const dataKeys =
    config.encryption_keys.length > 0
      ? config.encryption_keys.map((k) => ({
          id: k.id,
          key: decodeKey32(env.resolveSecret(k.key), `kyc.encryption_keys[${k.id}]`),
        }))
      : [
          {
            id: 'local',
            key: decodeKey32(
              persistedSecret(env.dataDir, 'kyc-data.key', randomKeyHex),
              'data directory key kyc-data.key',
            ),
          },
        ];
  const pem = config.assertion.signing_key
    ? env.resolveSecret(config.assertion.signing_key)
    : persistedAssertionKeyPem(env.dataDir);
  const signer = new AssertionSigner(
    await loadAssertionKey(pem),
    config.assertion.issuer,
    config.assertion.lifetime_seconds,
  );

  const providers = new Map<string, VerificationProvider>();
  const providerConfigs = new Map<string, string>();
  try {
    for (const [name, pc] of Object.entries(config.providers)) {
      const json = JSON.stringify([pc, config.webhook_tolerance_seconds, env.publicBaseUrl]);
      providerConfigs.set(name, json);
      const kept = previous?.providerConfigs.get(name) === json ? previous.providers.get(name) : undefined;
      providers.set(
        name,
        kept ??
          (await env.providerTypes.create({
            name,
            config: pc,
            resolveSecret: env.resolveSecret,
            webhookToleranceSeconds: config.webhook_tolerance_seconds,
            publicBaseUrl: env.publicBaseUrl,
            dataDir: env.dataDir,
            logger: env.logger,
            services: env.services,
          })),
      );
    }
  } catch (err) {
    for (const [name, p] of providers)
      if (previous?.providers.get(name) !== p) await p.close?.().catch(() => undefined);
    throw err instanceof ConfigError ? err : new ConfigError([(err as Error).message]);
  }
  return {
    config,
    pseudonymiser: previous?.pseudonymiser.usesKey(subjectKey)
      ? previous.pseudonymiser
      : new SubjectPseudonymiser(subjectKey),
    sealer: new DataSealer(dataKeys),
    signer,
    providers,
    providerConfigs,
    workflows,
  };
}

/** Closes providers of `old` that `next` no longer uses. */
export async function retireSetup(old: KycSetup, next: KycSetup | undefined): Promise<void> {
  for (const [name, p] of old.providers) {
    if (next?.providers.get(name) !== p) await p.close?.().catch(() => undefined);
  }
}
