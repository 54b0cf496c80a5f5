/** The verdict of the rate limits on one request: admitted or not, and what its headers report. */
export class Verdict {
  allowed = true;
  /** When rejected: milliseconds until the request would be admitted. */
  retryAfterMs = 0;
  /** Index (in the request's active limits) of the most restrictive limit: the one reported in headers. */
  limitIndex = 0;
  /** Requests left under that limit after this one. */
  remaining = 0;
  /** Milliseconds until that limit is fully replenished. */
  resetMs = 0;
}
