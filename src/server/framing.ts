/**
 * Refuses requests whose meaning two HTTP implementations could disagree on (request smuggling, header
 * confusion). Node's parser already refuses Content-Length with Transfer-Encoding, duplicate or invalid
 * Content-Length, obsolete line folding and bare LF; what it lets through is checked here:
 * - a duplicate of a header that decides routing, framing or identity (Host, Content-Length, Authorization ...);
 * - any Transfer-Encoding other than exactly `chunked`, and Transfer-Encoding on an HTTP/1.0 request
 *   (RFC 9112 section 6.1: the framing is faulty).
 */
import { problem, type Problem } from '../pipeline/problem.js';

/** Headers that must appear at most once: a second copy could be read differently by the upstream. */
const SINGLETON_HEADERS = new Set([
  'host',
  'content-length',
  'transfer-encoding',
  'authorization',
  'proxy-authorization',
  'content-type',
  'x-api-key',
  'x-request-id',
  'x-forwarded-host',
  'x-forwarded-proto',
  'x-original-uri',
  'x-original-method',
  'traceparent',
]);
const SINGLETON_LENGTHS = new Set([...SINGLETON_HEADERS].map((h) => h.length));

export interface FramingResult {
  /** A problem to answer with, when the request is ambiguous. */
  problem: Problem | undefined;
  /** Whether a body follows the head (Content-Length > 0 or chunked). */
  hasBody: boolean;
  /** Content-Length when declared. */
  contentLength: number | undefined;
  /** Host header value. */
  host: string | undefined;
  /** Incoming x-request-id value. */
  requestId: string | undefined;
  /** X-Forwarded-Proto value (used only when the peer is a trusted proxy). */
  forwardedProto: string | undefined;
}

/** The refusal, with what was read so far (a plain function: no closure allocated for every request). */
function ambiguous(
  detail: string,
  hasBody: boolean,
  contentLength: number | undefined,
  host: string | undefined,
  requestId: string | undefined,
): FramingResult {
  return {
    problem: problem('ambiguous-request', { detail }),
    hasBody,
    contentLength,
    host,
    requestId,
    forwardedProto: undefined,
  };
}

export function inspectFraming(rawHeaders: string[], httpVersionMinor: number): FramingResult {
  let seen: string | undefined; // names seen so far, joined: few headers matter, so a string beats a Set
  let hasBody = false;
  let contentLength: number | undefined;
  let host: string | undefined;
  let requestId: string | undefined;
  let forwardedProto: string | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    if (!SINGLETON_LENGTHS.has(name.length)) continue;
    const lower = name.toLowerCase();
    if (!SINGLETON_HEADERS.has(lower)) continue;
    const marker = '|' + lower + '|';
    if (seen?.includes(marker)) {
      return ambiguous(`The ${lower} header appears more than once.`, hasBody, contentLength, host, requestId);
    }
    seen = seen === undefined ? marker : seen + marker;
    if (lower === 'transfer-encoding') {
      if (httpVersionMinor === 0) {
        return ambiguous('Transfer-Encoding is not allowed in HTTP/1.0.', hasBody, contentLength, host, requestId);
      }
      if (rawHeaders[i + 1]!.trim().toLowerCase() !== 'chunked') {
        return ambiguous('Only "Transfer-Encoding: chunked" is accepted.', hasBody, contentLength, host, requestId);
      }
      hasBody = true;
    } else if (lower === 'content-length') {
      contentLength = Number(rawHeaders[i + 1]);
      if (contentLength > 0) hasBody = true;
    } else if (lower === 'host') {
      host = rawHeaders[i + 1];
    } else if (lower === 'x-request-id') {
      requestId = rawHeaders[i + 1];
    } else if (lower === 'x-forwarded-proto') {
      forwardedProto = rawHeaders[i + 1];
    }
  }
  return { problem: undefined, hasBody, contentLength, host, requestId, forwardedProto };
}
