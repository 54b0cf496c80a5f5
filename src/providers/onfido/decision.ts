/**
 * Onfido Studio workflow runs (`GET /workflow_runs/{id}`): statuses and the result. Personal data and document
 * details come from the run's `output`, whose keys the workflow defines: kycgate reads `first_name`, `last_name`,
 * `date_of_birth`, `document_type`, `issuing_country` and `date_of_expiry` when the workflow outputs them, and
 * every other scalar output as the fact `output_<key>`.
 */
import type { VerificationResult, VerificationState } from '../provider.js';
import { addDocumentFacts, addScalarFact } from '../identity-facts.js';
import { isObject, text } from '../webhook-hmac.js';

const STATE_OF_STATUS: ReadonlyMap<string, VerificationState> = new Map<string, VerificationState>([
  ['awaiting_input', 'pending'],
  ['processing', 'pending'],
  ['awaiting_client_input', 'in_review'],
  ['review', 'in_review'],
  ['approved', 'approved'],
  ['declined', 'declined'],
  ['abandoned', 'expired'],
  ['error', 'expired'],
]);

export function onfidoStatusToState(status: unknown): VerificationState {
  return (typeof status === 'string' && STATE_OF_STATUS.get(status)) || 'unverified';
}

const PERSONAL_OUTPUTS = new Set(['first_name', 'last_name', 'date_of_birth', 'document_number']);

export function decisionFromOnfido(
  run: Record<string, unknown>,
  nowSeconds: number,
  sessionId: string,
): VerificationResult {
  const status = text(run.status) ?? 'awaiting_input';
  const result: VerificationResult = {
    sessionId: text(run.id) ?? sessionId,
    status,
    state: onfidoStatusToState(status),
    workflowId: text(run.workflow_id) ?? '',
    vendorData: text(run.customer_user_id),
    facts: { provider: 'onfido', status },
    personal: {},
  };
  const output = isObject(run.output) ? run.output : {};
  for (const [key, value] of Object.entries(output)) {
    if (!PERSONAL_OUTPUTS.has(key) && /^[a-z][a-z0-9_]{0,63}$/.test(key))
      addScalarFact(result.facts, `output_${key}`, value);
  }
  if (Array.isArray(run.reasons)) result.facts.reasons = run.reasons.filter((r) => typeof r === 'string').join(',');
  addDocumentFacts(
    result,
    {
      firstName: text(output.first_name),
      lastName: text(output.last_name),
      dateOfBirth: text(output.date_of_birth),
      documentType: text(output.document_type),
      issuingCountry: text(output.issuing_country),
      documentExpires: text(output.date_of_expiry),
    },
    nowSeconds,
  );
  return result;
}
