/**
 * Persona inquiries (`GET /inquiries/{id}`, JSON:API with kebab-case keys) and their statuses. `completed` means the
 * user finished the flow and the decision (`approved` / `declined`, by a workflow or a reviewer) is still to come:
 * only `approved` grants anything. Document details come from the included government-id verification.
 */
import type { VerificationResult, VerificationState } from '../provider.js';
import { addDocumentFacts, addScalarFact } from '../identity-facts.js';
import { isObject, text } from '../webhook-hmac.js';

const STATE_OF_STATUS: ReadonlyMap<string, VerificationState> = new Map<string, VerificationState>([
  ['created', 'pending'],
  ['pending', 'pending'],
  ['completed', 'in_review'],
  ['needs_review', 'in_review'],
  ['approved', 'approved'],
  ['declined', 'declined'],
  ['failed', 'declined'],
  ['expired', 'expired'],
]);

export function personaStatusToState(status: unknown): VerificationState {
  return (typeof status === 'string' && STATE_OF_STATUS.get(status)) || 'unverified';
}

/** Maps `{data: inquiry, included?: [...]}`. */
export function decisionFromPersona(
  doc: Record<string, unknown>,
  nowSeconds: number,
  sessionId: string,
): VerificationResult {
  const data = isObject(doc.data) ? doc.data : {};
  const a = isObject(data.attributes) ? data.attributes : {};
  const status = text(a.status) ?? 'created';
  const result: VerificationResult = {
    sessionId: text(data.id) ?? sessionId,
    status,
    state: personaStatusToState(status),
    workflowId: text(a['inquiry-template-id']) ?? '',
    vendorData: text(a['reference-id']),
    facts: { provider: 'persona', status },
    personal: {},
  };
  const included = Array.isArray(doc.included) ? doc.included.filter(isObject) : [];
  const gov = included.find((i) => i.type === 'verification/government-id');
  const g = gov && isObject(gov.attributes) ? gov.attributes : {};
  addScalarFact(result.facts, 'government_id', g.status);
  const selfie = included.find((i) => i.type === 'verification/selfie');
  if (selfie && isObject(selfie.attributes)) addScalarFact(result.facts, 'selfie', selfie.attributes.status);
  addDocumentFacts(
    result,
    {
      firstName: text(a['name-first']) ?? text(g['name-first']),
      lastName: text(a['name-last']) ?? text(g['name-last']),
      dateOfBirth: text(a.birthdate) ?? text(g.birthdate),
      documentType: text(g['id-class']),
      issuingCountry: text(g['country-code']),
      documentExpires: text(g['expiration-date']),
    },
    nowSeconds,
  );
  return result;
}
