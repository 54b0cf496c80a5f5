/**
 * Claims mapping: which claims (kyc_full, age_over_18, aml_clear ...) an approved decision grants, each a CEL
 * expression over the decision's flat facts and the personal fields it carried. Compiled once per config; an
 * expression that fails on a decision (a missing fact) grants nothing.
 */
import { Environment } from '@marcbachmann/cel-js';
import type { VerificationResult } from '../providers/provider.js';
import { ageAt } from '../shared/age.js';

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
}

/** Compiles `claims` of one workflow; throws an Error naming the claim and the CEL error. */
export function compileClaims(workflow: string, claims: Record<string, string>): ClaimRule[] {
  return Object.entries(claims).map(([name, expression]) => {
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
    return { name, evaluate };
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
