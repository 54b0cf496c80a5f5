/**
 * Sumsub applicants (`GET /resources/applicants/-;externalUserId={id}/one`) and review states. A review is final
 * when `reviewStatus` is `completed`: `reviewAnswer` GREEN approves, RED with `reviewRejectType` FINAL declines, RED
 * with RETRY asks the user to resubmit. The status string kept is `reviewStatus` plus the answer
 * (`completed/GREEN`, `completed/RED/FINAL`).
 */
import type { VerificationResult, VerificationState } from '../provider.js';
import { addDocumentFacts, addScalarFact } from '../identity-facts.js';
import { isObject, text } from '../webhook-hmac.js';

const STATE_OF_REVIEW: ReadonlyMap<string, VerificationState> = new Map<string, VerificationState>([
  ['init', 'pending'],
  ['awaitingUser', 'pending'],
  ['pending', 'in_review'],
  ['prechecked', 'in_review'],
  ['queued', 'in_review'],
  ['awaitingService', 'in_review'],
  ['onHold', 'in_review'],
]);

export interface SumsubReview {
  reviewStatus?: string | undefined;
  reviewAnswer?: string | undefined;
  reviewRejectType?: string | undefined;
}

export function sumsubState(r: SumsubReview): VerificationState {
  if (r.reviewStatus === 'completed') {
    if (r.reviewAnswer === 'GREEN') return 'approved';
    if (r.reviewAnswer === 'RED') return r.reviewRejectType === 'RETRY' ? 'pending' : 'declined';
    return 'unverified';
  }
  return (r.reviewStatus !== undefined && STATE_OF_REVIEW.get(r.reviewStatus)) || 'unverified';
}

export function sumsubStatus(r: SumsubReview): string {
  return [r.reviewStatus ?? 'unknown', r.reviewAnswer, r.reviewAnswer === 'RED' ? r.reviewRejectType : undefined]
    .filter((p) => p !== undefined)
    .join('/');
}

/** The review fields of an applicant's `review` or a webhook body (both carry `reviewStatus` and `reviewResult`). */
export function reviewOf(doc: Record<string, unknown>): SumsubReview & { rejectLabels?: string } {
  const result = isObject(doc.reviewResult) ? doc.reviewResult : {};
  const labels = Array.isArray(result.rejectLabels) ? result.rejectLabels.filter((l) => typeof l === 'string') : [];
  return {
    reviewStatus: text(doc.reviewStatus),
    reviewAnswer: text(result.reviewAnswer),
    reviewRejectType: text(result.reviewRejectType),
    ...(labels.length > 0 ? { rejectLabels: labels.join(',') } : {}),
  };
}

export function decisionFromSumsub(
  applicant: Record<string, unknown>,
  nowSeconds: number,
  sessionId: string,
): VerificationResult {
  const review = reviewOf(isObject(applicant.review) ? applicant.review : {});
  const status = sumsubStatus(review);
  const result: VerificationResult = {
    sessionId: text(applicant.externalUserId) ?? sessionId,
    status,
    state: sumsubState(review),
    workflowId: text(applicant.levelName) ?? '',
    vendorData: text(applicant.externalUserId),
    facts: { provider: 'sumsub', status },
    personal: {},
  };
  addScalarFact(result.facts, 'review_status', review.reviewStatus);
  addScalarFact(result.facts, 'review_answer', review.reviewAnswer);
  addScalarFact(result.facts, 'reject_type', review.reviewRejectType);
  addScalarFact(result.facts, 'reject_labels', review.rejectLabels);
  addScalarFact(result.facts, 'level_name', applicant.levelName);
  const info = isObject(applicant.info) ? applicant.info : {};
  const docs = Array.isArray(info.idDocs) ? info.idDocs.filter(isObject) : [];
  const idDoc = docs.find((d) => d.idDocType !== 'SELFIE') ?? {};
  addDocumentFacts(
    result,
    {
      firstName: text(info.firstName),
      lastName: text(info.lastName),
      dateOfBirth: text(info.dob),
      documentType: text(idDoc.idDocType),
      issuingCountry: text(idDoc.country) ?? text(info.country),
      documentExpires: text(idDoc.validUntil),
    },
    nowSeconds,
  );
  return result;
}
