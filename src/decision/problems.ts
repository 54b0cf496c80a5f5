/** Problem types of decision listeners (docs/DECISION-SERVICE.md, docs/PROBLEMS.md). */
import { problemType } from '../pipeline/problem.js';

/** A decision request from a peer not in the listener's `front_proxies`. */
export const DECISION_UNTRUSTED_PEER = problemType('decision-untrusted-peer', 403, 'Not a trusted front proxy');
/** A policy needs the request body, and the front proxy does not send (all of) it. */
export const DECISION_NEEDS_BODY = problemType('decision-needs-body', 500, 'Decision needs the request body');
/** A policy answered with a 2xx of its own, which a front proxy would read as "allow". */
export const DECISION_REPLY_NOT_EXPRESSIBLE = problemType(
  'decision-reply-not-expressible',
  500,
  'Answer cannot be given as a decision',
);

export const DECISION_PROBLEMS = [
  DECISION_UNTRUSTED_PEER,
  DECISION_NEEDS_BODY,
  DECISION_REPLY_NOT_EXPRESSIBLE,
] as const;
