/**
 * How forwarding failures are told apart and answered: the request's own faults (a body over the route's limit, a
 * Content-Length mismatch) from a target that could not be reached, reset the connection or did not answer in time.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { payloadTooLarge, problem, type Problem } from '../pipeline/problem.js';

/** Counts a chunked request body and fails it once it passes the route's limit. */
export class BodyLimit extends Transform {
  private seen = 0;
  constructor(private readonly limit: number) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen > this.limit) callback(new BodyLimitExceeded(this.limit));
    else callback(null, chunk);
  }
}

class BodyLimitExceeded extends Error {
  readonly code = 'KYCGATE_BODY_LIMIT';
  constructor(readonly limit: number) {
    super('request body over the route limit');
  }
}

export function problemForUpstreamError(err: Error & { code?: string }): Problem {
  switch (err.code) {
    case 'UND_ERR_CONNECT_TIMEOUT':
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_BODY_TIMEOUT':
      return problem('gateway-timeout');
    case 'KYCGATE_BODY_LIMIT':
      return payloadTooLarge((err as BodyLimitExceeded).limit);
    case 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH':
      return problem('bad-request', { detail: 'The request body did not match its Content-Length.' });
    default:
      return problem('bad-gateway');
  }
}

/**
 * Errors of the request's own making, not the target's: body over the route limit, a body that does not match its
 * Content-Length, an option undici refuses, an abort of ours. undici raises them before writing the request too, so
 * they are told apart from a failed connection by code.
 */
export const REQUEST_FAULTS = new Set([
  'KYCGATE_BODY_LIMIT',
  'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH',
  'UND_ERR_INVALID_ARG',
  'UND_ERR_NOT_SUPPORTED',
  'UND_ERR_ABORTED',
]);

/** The connection was reset or closed under a request that had been sent, before any answer. */
export const RESETS = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET']);

/** Methods whose repetition has the effect of one request (RFC 9110 9.2.2). */
export const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);
