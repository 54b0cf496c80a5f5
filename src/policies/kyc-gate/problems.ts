/** Problem types of the `kyc-gate` policy (docs/KYC.md, docs/PROBLEMS.md). */
import { problemType } from '../../pipeline/problem.js';

/** The user has not verified: the answer carries `verification_url`, `session_id` and `missing_claims`. */
export const KYC_REQUIRED = problemType('kyc-required', 403, 'Identity verification required');
/** A verification is being reviewed: the answer carries Retry-After. */
export const KYC_PENDING = problemType('kyc-pending', 403, 'Identity verification pending');
/** The verification was declined, or does not grant what the route needs. */
export const KYC_DENIED = problemType('kyc-denied', 403, 'Identity verification does not allow this request');
/** A session could not be started with the verification provider (breaker open, timeouts). */
export const KYC_PROVIDER_UNAVAILABLE = problemType(
  'kyc-provider-unavailable',
  503,
  'Identity verification provider unavailable',
);

/** An operator blocked the subject (admin API): refused whatever its verification state. */
export const SUBJECT_BLOCKED = problemType('subject-blocked', 403, 'Subject blocked');

export const KYC_GATE_PROBLEMS = [
  KYC_REQUIRED,
  KYC_PENDING,
  KYC_DENIED,
  KYC_PROVIDER_UNAVAILABLE,
  SUBJECT_BLOCKED,
] as const;
