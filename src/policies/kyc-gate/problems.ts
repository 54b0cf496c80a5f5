/** Problem types of the `kyc-gate` policy (docs/KYC.md, docs/PROBLEMS.md). */
import { problem, problemType, type Problem } from '../../pipeline/problem.js';

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

/**
 * Step-up: the user is verified, but not at the assurance level this request needs (RFC 9470 style): 401 with
 * `WWW-Authenticate: Bearer error="insufficient_user_authentication", acr_values="<level>"`, `required_level`,
 * `current_level` and the `verification_url` of the higher-assurance verification.
 */
export const KYC_STEP_UP = problemType('kyc-step-up-required', 401, 'Higher identity assurance required');

/** The step-up answer for an API client. */
export function stepUpProblem(
  offer: { url: string; sessionId: string },
  missing: string[],
  workflow: string,
  level: string,
  current: string | undefined,
): Problem {
  return problem(KYC_STEP_UP, {
    detail: `This request needs identity assurance level "${level}": verify at verification_url, then retry.`,
    headers: {
      'www-authenticate':
        'Bearer error="insufficient_user_authentication", ' +
        `error_description="A higher identity assurance level is required", acr_values="${level}"`,
    },
    extensions: {
      error: 'insufficient_user_authentication',
      required_level: level,
      current_level: current ?? null,
      verification_url: offer.url,
      session_id: offer.sessionId,
      missing_claims: missing,
      workflow,
    },
  });
}

/** An operator blocked the subject (admin API): refused whatever its verification state. */
export const SUBJECT_BLOCKED = problemType('subject-blocked', 403, 'Subject blocked');

export const KYC_GATE_PROBLEMS = [
  KYC_REQUIRED,
  KYC_PENDING,
  KYC_DENIED,
  KYC_PROVIDER_UNAVAILABLE,
  KYC_STEP_UP,
  SUBJECT_BLOCKED,
] as const;
