/** Problem types of the `kyc-webhook` policy (docs/PROVIDERS.md, docs/PROBLEMS.md). */
import { problemType } from '../../pipeline/problem.js';

/** A webhook whose signature did not verify (or that is too old, or replayed): it is not applied. */
export const WEBHOOK_SIGNATURE_INVALID = problemType('webhook-signature-invalid', 401, 'Webhook signature invalid');

export const KYC_WEBHOOK_PROBLEMS = [WEBHOOK_SIGNATURE_INVALID] as const;
