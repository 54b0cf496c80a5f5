/**
 * Compiling a kyc-gate's config once per configuration: its subject source, its rules (CEL conditions, reroute
 * targets), and the workflow that grants every claim the route may ask for; a config that cannot work is refused
 * with the key path.
 */
import type { DecisionRecord } from '../../pipeline/context.js';
import type { PolicySetup } from '../../pipeline/policy.js';
import type { Upstream, UpstreamDirectory } from '../../pipeline/route.js';
import type { KycService } from '../../kyc/service.js';
import type { CompiledWorkflow } from '../../kyc/setup.js';
import type { KycGateConfig } from './schema.js';
import { compileCondition, type CompiledCondition } from './rules.js';
import { compileSubjectSource, type SubjectSource } from './subject-source.js';

export const POLICY = 'kyc-gate';

export interface CompiledRule {
  readonly name: string;
  readonly condition: CompiledCondition | undefined;
  readonly action: 'allow' | 'deny' | 'require' | 'reroute';
  readonly claims: readonly string[];
  readonly group: Upstream | undefined;
  /** Step-up: the assurance level this `require` rule demands. */
  readonly level?: string | undefined;
  /** The workflow a challenge of this rule offers, when not the policy's. */
  readonly workflow?: CompiledWorkflow | undefined;
  /** The decision recorded when this rule lets a request through (one shared, frozen object). */
  readonly passed: DecisionRecord;
}

export function compiledRule(
  name: string,
  condition: CompiledCondition | undefined,
  action: CompiledRule['action'],
  claims: readonly string[],
  group: Upstream | undefined,
  step: { level?: string | undefined; workflow?: CompiledWorkflow | undefined } = {},
): CompiledRule {
  const passed = Object.freeze({ outcome: action === 'reroute' ? 'reroute' : 'allow', policy: POLICY, rule: name });
  return { name, condition, action, claims, group, passed, level: step.level, workflow: step.workflow };
}

export interface CompiledKycGate {
  readonly kyc: KycService;
  readonly source: SubjectSource;
  readonly workflow: CompiledWorkflow;
  readonly rules: readonly CompiledRule[];
}

export async function compileKycGate(config: KycGateConfig, setup: PolicySetup): Promise<CompiledKycGate> {
  const where = `route "${setup.routeName}": kyc-gate`;
  const kyc = setup.services.find<KycService>('kyc');
  if (!kyc) throw new Error(`${where}: needs the kyc section (providers and workflows)`);
  const source = compileSubjectSource(config.subject, where);
  const needed = new Set<string>(config.required_claims);
  const rules: CompiledRule[] = [];
  const upstreams = setup.services.get<UpstreamDirectory>('upstreams');
  for (const [i, r] of config.rules.entries()) {
    const at = `${where}.rules[${i}] (${r.name})`;
    const condition = r.when === undefined ? undefined : compileCondition(r.when, `${at}.when`);
    let claims = r.claims ?? (r.level === undefined ? config.required_claims : []);
    let ruleWorkflow: CompiledWorkflow | undefined;
    if (r.level !== undefined) {
      const level = (kyc.setup.config.assurance_levels ?? []).find((l) => l.name === r.level);
      if (!level) throw new Error(`${at}.level: no assurance level named "${r.level}" in kyc.assurance_levels`);
      claims = [...new Set([...claims, ...level.claims])];
    }
    if (r.workflow !== undefined) {
      ruleWorkflow = kyc.workflow(r.workflow);
      if (!ruleWorkflow) throw new Error(`${at}.workflow: no workflow named "${r.workflow}" in kyc.workflows`);
    }
    if (r.action === 'require') {
      if (claims.length === 0) throw new Error(`${at}.claims: a require rule needs claims (or required_claims)`);
      // Claims a rule's own workflow grants need not come from the policy's.
      for (const c of claims) if (!ruleWorkflow?.grants.has(c)) needed.add(c);
    }
    let group: Upstream | undefined;
    if (r.action === 'reroute') {
      if (r.upstream === undefined) throw new Error(`${at}.upstream: required for reroute`);
      if (!setup.upstreamNames.has(r.upstream)) throw new Error(`${at}.upstream: no upstream named "${r.upstream}"`);
      group = await upstreams.groupFor(r.upstream, r.connect_timeout_ms);
    }
    rules.push(compiledRule(r.name, condition, r.action, claims, group, { level: r.level, workflow: ruleWorkflow }));
  }
  const workflow = chooseWorkflow(kyc, config, needed, where);
  for (const c of needed) {
    if (!workflow.grants.has(c)) throw new Error(`${where}: workflow "${workflow.name}" cannot grant claim "${c}"`);
  }
  return { kyc, source, workflow, rules };
}

function chooseWorkflow(
  kyc: KycService,
  config: KycGateConfig,
  needed: ReadonlySet<string>,
  where: string,
): CompiledWorkflow {
  if (config.workflow !== undefined) {
    const wf = kyc.workflow(config.workflow);
    if (!wf) throw new Error(`${where}.workflow: no workflow named "${config.workflow}" in kyc.workflows`);
    return wf;
  }
  const candidates = [...kyc.setup.workflows.values()].filter((wf) => [...needed].every((c) => wf.grants.has(c)));
  if (candidates.length !== 1) {
    throw new Error(
      `${where}.workflow: ${candidates.length === 0 ? 'no workflow grants' : 'several workflows grant'} ` +
        `every required claim (${[...needed].join(', ') || 'none'}); name one`,
    );
  }
  return candidates[0]!;
}
