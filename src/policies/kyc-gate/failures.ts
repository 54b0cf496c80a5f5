/**
 * kyc-gate's answers when something it depends on fails: the store (503 with Retry-After, the provider session
 * kept for the next attempt), the provider (503 kyc-provider-unavailable with the breaker's Retry-After) or anything
 * else (502 without detail). Each is logged here with the request id; the gate records the decision.
 */
import type { Logger } from 'pino';
import { problem, type Problem } from '../../pipeline/problem.js';
import { ProviderRejected, ProviderUnavailable } from '../../providers/provider.js';
import { StoreUnavailable } from '../../store/store.js';
import { KYC_PROVIDER_UNAVAILABLE } from './problems.js';

/** Retry-After of the 503 answered while the store cannot be used. */
const STORE_RETRY_AFTER_SECONDS = 2;

/** The decision outcome and answer when a verification session could not be started. */
export function sessionFailure(logger: Logger, requestId: string, err: unknown): { outcome: string; answer: Problem } {
  if (err instanceof StoreUnavailable) {
    // A provider session created before the failure is kept and offered on the next attempt.
    logger.warn(
      { req_id: requestId, err: err.message, reason: err.reason },
      'verification session could not be started: store unavailable',
    );
    return {
      outcome: 'unavailable',
      answer: problem('service-unavailable', {
        detail: 'Identity verification cannot start right now. Try again shortly.',
        headers: { 'retry-after': STORE_RETRY_AFTER_SECONDS },
      }),
    };
  }
  if (err instanceof ProviderUnavailable) {
    return {
      outcome: 'unavailable',
      answer: problem(KYC_PROVIDER_UNAVAILABLE, {
        detail: 'Identity verification cannot start right now. Try again later.',
        headers: { 'retry-after': Math.max(1, Math.ceil(err.retryAfterSeconds)) },
      }),
    };
  }
  logger.error(
    { req_id: requestId, err: err instanceof ProviderRejected ? { message: err.message, status: err.status } : err },
    'verification session could not be created',
  );
  return {
    outcome: 'error',
    answer: problem('bad-gateway', { detail: 'Identity verification could not be started.' }),
  };
}

/** The answer when the subject's verification state could not be read. */
export function stateFailure(logger: Logger, requestId: string, err: unknown): Problem {
  logger.error({ req_id: requestId, err }, 'verification state could not be read');
  return problem('service-unavailable', {
    detail: 'Verification state is unavailable. Try again shortly.',
    headers: { 'retry-after': STORE_RETRY_AFTER_SECONDS },
  });
}
