/**
 * Claims mapping: which claims (kyc_full, age_over_18, aml_clear ...) an approved decision grants, each a CEL
 * expression over the decision's flat facts and the personal fields it carried. Compiled once per config; an
 * expression that fails on a decision (a missing fact) grants nothing.
 */
import { Environment } from '@marcbachmann/cel-js';
import type { VerificationResult } from '../providers/provider.js';
import { ageAt } from '../shared/age.js';
import { parseDuration } from '../auth/api-keys/format.js';

const claimsEnvironment = new Environment({ homogeneousAggregateLiterals: false })
  .registerVariable('facts', 'map')
  .registerVariable('personal', 'map')
  .registerFunction('age(string): int', (dateOfBirth: string) => BigInt(ageInYears(dateOfBirth, new Date())));

/** Whole years between a `YYYY-MM-DD` date of birth and `now`; throws on anything else (an impossible date too). */
export function ageInYears(dateOfBirth: string, now: Date): number {
  const age = ageAt(dateOfBirth, Math.floor(now.getTime() / 1000));
  if (age === undefined) throw new Error('date of birth is not a valid YYYY-MM-DD date in the past');
  return age;
}

export interface ClaimRule {
  readonly name: string;
  readonly evaluate: (context: Record<string, unknown>) => unknown;
  /** The claim lapses this long after the decision. */
  readonly maxAgeMs?: number | undefined;
  /** The claim lapses when the verified document expires. */
  readonly expireWithDocument?: boolean | undefined;
}

/** Milliseconds since the epoch at which a `YYYY-MM-DD` document expiry date has passed (the end of that day, UTC). */
export function documentExpiryMs(facts: VerificationResult['facts']): number | undefined {
  const d = facts.document_expires;
  if (typeof d !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(d)) return undefined;
  const ms = Date.parse(d + 'T00:00:00Z');
  return Number.isNaN(ms) ? undefined : ms + 86_400_000;
}

/**
 * The stored claims string of a decision made at `decidedAt`: names separated by spaces, a claim with a lifetime of
 * its own written `name@<expiry ms>` (the subject cache drops it at that instant, on every instance).
 */
export function storedClaims(
  rules: readonly ClaimRule[],
  decision: Pick<VerificationResult, 'facts' | 'personal'>,
  decidedAt: number,
): string {
  const granted = new Set(grantedClaims(rules, decision));
  const documentExpiry = documentExpiryMs(decision.facts);
  const out: string[] = [];
  for (const rule of rules) {
    if (!granted.has(rule.name)) continue;
    let until = rule.maxAgeMs !== undefined ? decidedAt + rule.maxAgeMs : Infinity;
    if (rule.expireWithDocument && documentExpiry !== undefined) until = Math.min(until, documentExpiry);
    out.push(until === Infinity ? rule.name : `${rule.name}@${until}`);
  }
  return out.join(' ');
}

/** Compiles `claims` of one workflow; throws an Error naming the claim and the CEL error. */
export function compileClaims(
  workflow: string,
  claims: Record<string, string | { when: string; max_age?: string; expire_with_document?: boolean }>,
): ClaimRule[] {
  return Object.entries(claims).map(([name, spec]) => {
    const expression = typeof spec === 'string' ? spec : spec.when;
    const maxAgeMs = typeof spec === 'string' || spec.max_age === undefined ? undefined : parseDuration(spec.max_age);
    const expireWithDocument = typeof spec === 'string' ? undefined : spec.expire_with_document;
    let evaluate: ClaimRule['evaluate'];
    try {
      evaluate = claimsEnvironment.parse(expression) as unknown as ClaimRule['evaluate'];
    } catch (err) {
      throw new Error(`kyc.workflows.${workflow}.claims.${name}: ${firstLine((err as Error).message)}`);
    }
    const checked = (evaluate as unknown as { check(): { valid: boolean; type?: string; error?: Error } }).check();
    if (!checked.valid)
      throw new Error(`kyc.workflows.${workflow}.claims.${name}: ${firstLine(checked.error?.message ?? 'invalid')}`);
    if (checked.type !== 'bool' && checked.type !== 'dyn')
      throw new Error(`kyc.workflows.${workflow}.claims.${name}: must be a boolean expression (it is ${checked.type})`);
    return { name, evaluate, maxAgeMs, expireWithDocument };
  });
}

/** The claims an approved decision grants. */
export function grantedClaims(
  rules: readonly ClaimRule[],
  decision: Pick<VerificationResult, 'facts' | 'personal'>,
): string[] {
  const personal: Record<string, string> = {};
  if (decision.personal.firstName !== undefined) personal.first_name = decision.personal.firstName;
  if (decision.personal.lastName !== undefined) personal.last_name = decision.personal.lastName;
  if (decision.personal.dateOfBirth !== undefined) personal.date_of_birth = decision.personal.dateOfBirth;
  const context = { facts: decision.facts, personal };
  const out: string[] = [];
  for (const rule of rules) {
    try {
      if (rule.evaluate(context) === true) out.push(rule.name);
    } catch {
      // A fact the expression needs is missing: the claim is not granted.
    }
  }
  return out;
}

export function firstLine(message: string): string {
  return message.split('\n')[0]!;
}
