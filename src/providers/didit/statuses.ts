/**
 * Didit's session statuses (exact, case-sensitive strings) and what each means for a gate. Only `Approved` grants
 * anything; a string we do not know is treated as `unverified`, never as a pass.
 */
import type { VerificationState } from '../provider.js';

export const DIDIT_STATUSES = [
  'Not Started',
  'In Progress',
  'Approved',
  'Declined',
  'In Review',
  'Awaiting User',
  'Resubmitted',
  'Expired',
  'Abandoned',
  'Kyc Expired',
] as const;

const STATE_OF_STATUS: ReadonlyMap<string, VerificationState> = new Map<string, VerificationState>([
  ['Approved', 'approved'],
  ['In Review', 'in_review'],
  ['Not Started', 'pending'],
  ['In Progress', 'pending'],
  ['Awaiting User', 'pending'],
  ['Resubmitted', 'pending'],
  ['Declined', 'declined'],
  ['Expired', 'expired'],
  ['Abandoned', 'expired'],
  ['Kyc Expired', 'expired'],
]);

/** Maps a Didit status string to the gateway's verification state; unknown strings are `unverified`. */
export function diditStatusToState(status: unknown): VerificationState {
  return (typeof status === 'string' && STATE_OF_STATUS.get(status)) || 'unverified';
}

/** Statuses of a session the user can still complete (Didit reuses such a session for the same vendor_data). */
export const UNFINISHED_STATUSES: ReadonlySet<string> = new Set([
  'Not Started',
  'In Progress',
  'Resubmitted',
  'Awaiting User',
]);

/** Statuses whose webhook carries the decision. */
export const DECISION_STATUSES: ReadonlySet<string> = new Set(['Approved', 'Declined', 'In Review', 'Abandoned']);

/**
 * How bad a feature status is, for "the worst across items". Anything not known to be a pass ranks high, so a
 * new or unexpected status can never make a list look better than it is.
 */
const STATUS_SEVERITY: ReadonlyMap<string, number> = new Map([
  ['Approved', 0],
  ['Not Started', 1],
  ['In Progress', 1],
  ['Not Finished', 1],
  ['Awaiting User', 1],
  ['Resubmitted', 1],
  ['In Review', 2],
  ['Expired', 3],
  ['Abandoned', 3],
  ['Kyc Expired', 3],
  ['Declined', 4],
]);

export function statusSeverity(status: string): number {
  return STATUS_SEVERITY.get(status) ?? 3;
}
