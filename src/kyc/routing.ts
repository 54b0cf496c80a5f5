/**
 * Which provider a new verification session goes to. A workflow names a primary provider and fallbacks; routing
 * rules (CEL, first match wins) may pick another per request, over `request` (headers, path, method, client_ip) and
 * `bucket` (0-99, stable per subject: `bucket < 20` sends a fifth of the subjects). Providers whose breaker is
 * open are skipped while another is left, so new sessions go to a fallback during an outage; subjects already
 * verified never depend on it (their claims are in the store).
 */
import { createHash } from 'node:crypto';
import { Environment } from '@marcbachmann/cel-js';
import type { VerificationProvider } from '../providers/provider.js';
import { firstLine } from './claims.js';

const routingEnvironment = new Environment({ homogeneousAggregateLiterals: false })
  .registerVariable('request', 'map')
  .registerVariable('bucket', 'int');

/** What routing rules see of the request that needs a session. */
export interface RoutingInput {
  headers: Record<string, string>;
  path: string;
  method: string;
  client_ip: string;
}

export interface RoutingRule {
  readonly provider: string;
  readonly evaluate: (context: Record<string, unknown>) => unknown;
}

export function compileRouting(
  workflow: string,
  rules: ReadonlyArray<{ when: string; provider: string }>,
): RoutingRule[] {
  return rules.map((rule, i) => {
    let evaluate: RoutingRule['evaluate'];
    try {
      evaluate = routingEnvironment.parse(rule.when) as unknown as RoutingRule['evaluate'];
    } catch (err) {
      throw new Error(`kyc.workflows.${workflow}.routing[${i}].when: ${firstLine((err as Error).message)}`);
    }
    const checked = (evaluate as unknown as { check(): { valid: boolean; type?: string; error?: Error } }).check();
    if (!checked.valid)
      throw new Error(
        `kyc.workflows.${workflow}.routing[${i}].when: ${firstLine(checked.error?.message ?? 'invalid')}`,
      );
    if (checked.type !== 'bool' && checked.type !== 'dyn')
      throw new Error(
        `kyc.workflows.${workflow}.routing[${i}].when: must be a boolean expression (it is ${checked.type})`,
      );
    return { provider: rule.provider, evaluate };
  });
}

/** The subject's stable traffic bucket, 0-99. */
export function subjectBucket(subject: string): number {
  return createHash('sha256').update(subject).digest().readUInt32BE(0) % 100;
}

/** The provider the first matching rule names, if any (a rule that fails on the request matches nothing). */
export function routedProvider(
  rules: readonly RoutingRule[],
  subject: string,
  input: RoutingInput | undefined,
): string | undefined {
  if (rules.length === 0) return undefined;
  const context = {
    request: input ?? { headers: {}, path: '', method: '', client_ip: '' },
    bucket: BigInt(subjectBucket(subject)),
  };
  for (const rule of rules) {
    try {
      if (rule.evaluate(context) === true) return rule.provider;
    } catch {
      // A header the rule reads is absent: no match.
    }
  }
  return undefined;
}

/**
 * Providers to try, in order: the routed one, then the primary, then the fallbacks; those whose breaker is open are
 * left out unless none is left (then the first is tried, and answers at once that it is unavailable).
 */
export function providerOrder(
  routed: string | undefined,
  configured: readonly string[],
  providers: ReadonlyMap<string, VerificationProvider>,
): string[] {
  const order = [...new Set(routed === undefined ? configured : [routed, ...configured])];
  const usable = order.filter((name) => providers.get(name)?.health.state !== 'open');
  return usable.length > 0 ? usable : order.slice(0, 1);
}

/** The routing input of a request (built only when a session is needed). */
export function routingInput(
  headers: Readonly<Record<string, string | string[] | undefined>>,
  path: string,
  method: string,
  clientIp: string,
): RoutingInput {
  const h: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) if (typeof v === 'string') h[k] = v;
  return { headers: h, path, method, client_ip: clientIp };
}
