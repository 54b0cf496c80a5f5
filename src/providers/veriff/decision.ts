/**
 * Veriff's verification statuses and decision documents (`GET /v1/sessions/{id}/decision` and the decision
 * webhook share the `verification` object). Only `approved` grants anything; an unknown status is `unverified`.
 */
import type { VerificationResult, VerificationState } from '../provider.js';
import { addDocumentFacts, addScalarFact } from '../identity-facts.js';
import { isObject, text } from '../webhook-hmac.js';

const STATE_OF_STATUS: ReadonlyMap<string, VerificationState> = new Map<string, VerificationState>([
  ['approved', 'approved'],
  ['declined', 'declined'],
  ['resubmission_requested', 'pending'],
  ['review', 'in_review'],
  ['expired', 'expired'],
  ['abandoned', 'expired'],
  ['created', 'pending'],
  ['started', 'pending'],
  ['submitted', 'in_review'],
]);

export function veriffStatusToState(status: unknown): VerificationState {
  return (typeof status === 'string' && STATE_OF_STATUS.get(status)) || 'unverified';
}

/** Maps a `verification` object; `fallbackSessionId` when it lacks an id (no decision yet). */
export function decisionFromVeriff(
  verification: unknown,
  nowSeconds: number,
  fallbackSessionId: string,
): VerificationResult {
  const v = isObject(verification) ? verification : {};
  const status = text(v.status) ?? 'created';
  const result: VerificationResult = {
    sessionId: text(v.id) ?? fallbackSessionId,
    status,
    state: veriffStatusToState(status),
    workflowId: '',
    vendorData: text(v.vendorData),
    facts: { provider: 'veriff', status },
    personal: {},
  };
  addScalarFact(result.facts, 'code', v.code);
  addScalarFact(result.facts, 'reason_code', v.reasonCode);
  addScalarFact(result.facts, 'decision_score', v.decisionScore);
  const person = isObject(v.person) ? v.person : {};
  const document = isObject(v.document) ? v.document : {};
  addScalarFact(result.facts, 'nationality', person.nationality);
  addDocumentFacts(
    result,
    {
      firstName: text(person.firstName),
      lastName: text(person.lastName),
      dateOfBirth: text(person.dateOfBirth),
      documentType: text(document.type),
      issuingCountry: text(document.country),
      documentExpires: text(document.validUntil),
    },
    nowSeconds,
  );
  return result;
}
