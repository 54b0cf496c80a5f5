/**
 * Errors the gateway answers itself. Each kind has a stable `type` URI (documented in docs/PROBLEMS.md) so
 * clients and SIEM rules can key on it; the edge turns a Problem into RFC 9457 application/problem+json.
 * A Problem never carries a stack, a file path or an upstream's own error text.
 */
import type { ServerResponse } from 'node:http';
import { isGrpcRequest, sendGrpcProblem } from './grpc.js';

export const PROBLEM_BASE = 'https://kycgate.dev/problems/';

/**
 * A kind of problem: its stable kind (the last segment of the `type` URI), HTTP status and title. The core's kinds
 * are below; a feature declares its own (`problemType('kyc-required', 403, '...')`) in its folder and lists them in
 * its definition (`PolicyDefinition.problems`, `Subsystem.problems`), so every kind is known and documented.
 */
export interface ProblemType {
  readonly kind: string;
  readonly status: number;
  readonly title: string;
}

export function problemType(kind: string, status: number, title: string): ProblemType {
  return Object.freeze({ kind, status, title });
}

/** The core's problem kinds: the edge, routing, forwarding, and the answers any policy may give. */
export const CORE_PROBLEMS = {
  'bad-request': { status: 400, title: 'Bad request' },
  'invalid-request': { status: 400, title: 'Request failed validation' },
  'malformed-json': { status: 400, title: 'Malformed JSON body' },
  'ambiguous-request': { status: 400, title: 'Ambiguous request framing' },
  'invalid-path': { status: 400, title: 'Invalid request path' },
  'ambiguous-path': { status: 400, title: 'Ambiguous request path' },
  unauthenticated: { status: 401, title: 'Authentication required' },
  forbidden: { status: 403, title: 'Forbidden' },
  'https-required': { status: 403, title: 'HTTPS required' },
  'not-found': { status: 404, title: 'No route matches this request' },
  'method-not-allowed': { status: 405, title: 'Method not allowed' },
  'request-timeout': { status: 408, title: 'Request timeout' },
  'payload-too-large': { status: 413, title: 'Request body too large' },
  'unsupported-media-type': { status: 415, title: 'Unsupported media type' },
  'expectation-failed': { status: 417, title: 'Expectation failed' },
  'rate-limited': { status: 429, title: 'Too many requests' },
  'headers-too-large': { status: 431, title: 'Request header fields too large' },
  'client-closed-request': { status: 499, title: 'Client closed request' },
  'internal-error': { status: 500, title: 'Internal gateway error' },
  'bad-gateway': { status: 502, title: 'Upstream unavailable' },
  'response-unprocessable': { status: 502, title: 'Upstream response could not be made safe' },
  'service-unavailable': { status: 503, title: 'Service unavailable' },
  'gateway-timeout': { status: 504, title: 'Upstream timed out' },
} as const satisfies Record<string, { status: number; title: string }>;

export type CoreProblemKind = keyof typeof CORE_PROBLEMS;

/** The core's kinds as ProblemTypes. */
export const CORE_PROBLEM_TYPES: readonly ProblemType[] = Object.entries(CORE_PROBLEMS).map(([kind, k]) =>
  problemType(kind, k.status, k.title),
);

export interface ProblemInit {
  /** Overrides the kind's default status (e.g. a policy answering 403 with its own kind). */
  status?: number;
  title?: string;
  /** A human-readable explanation safe to show the client: never secrets, stack traces or upstream text. */
  detail?: string;
  /** Extension members (RFC 9457 section 3.2), e.g. `verification_url`. */
  extensions?: Record<string, unknown>;
  /** Extra response headers (WWW-Authenticate, Retry-After, Location ...). */
  headers?: Record<string, string | number | string[]>;
}

/** A gateway-made error answer. A value, not a thrown exception; policies return it to short-circuit. */
export class Problem {
  readonly kind: string;
  readonly type: string;
  readonly status: number;
  readonly title: string;
  readonly detail: string | undefined;
  readonly extensions: Record<string, unknown> | undefined;
  readonly headers: Record<string, string | number | string[]> | undefined;

  constructor(type: CoreProblemKind | ProblemType, init: ProblemInit = {}) {
    const known = typeof type === 'string' ? CORE_PROBLEMS[type] : type;
    const kind = typeof type === 'string' ? type : type.kind;
    this.kind = kind;
    this.type = PROBLEM_BASE + kind;
    this.status = init.status ?? known.status;
    this.title = init.title ?? known.title;
    this.detail = init.detail;
    this.extensions = init.extensions;
    this.headers = init.headers;
  }

  toJSON(instance?: string): Record<string, unknown> {
    const body: Record<string, unknown> = { type: this.type, title: this.title, status: this.status };
    if (this.detail !== undefined) body.detail = this.detail;
    if (instance !== undefined) body.instance = instance;
    if (this.extensions) {
      for (const key of Object.keys(this.extensions)) {
        // Extensions may not shadow the standard members.
        if (!(key in body)) body[key] = this.extensions[key];
      }
    }
    return body;
  }
}

export function problem(type: CoreProblemKind | ProblemType, init?: ProblemInit): Problem {
  return new Problem(type, init);
}

/** 413 for a request body over the route's limit, naming the limit. */
export function payloadTooLarge(limit: number): Problem {
  return new Problem('payload-too-large', { detail: `The body limit of this route is ${limit} bytes.` });
}

/** Serialises a problem. `instance` is the request id, so a client can quote it to support. */
export function problemBody(p: Problem, requestId: string | undefined): string {
  return JSON.stringify(p.toJSON(requestId === undefined ? undefined : 'urn:kycgate:request:' + requestId));
}

/**
 * Writes a problem to a response that has not started. Extra headers (e.g. x-request-id) are applied first so
 * the problem's own headers win.
 */
export function sendProblem(res: ServerResponse, p: Problem, requestId: string | undefined, close = false): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (res.req?.httpVersionMajor === 2) {
    // A gRPC client reads grpc-status, not a body; HTTP/2 has no Connection header (its stream ends the exchange).
    if (isGrpcRequest(res)) return sendGrpcProblem(res, p, requestId);
    close = false;
  }
  const body = problemBody(p, requestId);
  res.statusCode = p.status;
  res.setHeader('content-type', 'application/problem+json');
  res.setHeader('content-length', Buffer.byteLength(body));
  res.setHeader('cache-control', 'no-store');
  if (requestId !== undefined) res.setHeader('x-request-id', requestId);
  if (close) res.setHeader('connection', 'close');
  if (p.headers) {
    for (const name of Object.keys(p.headers)) res.setHeader(name, p.headers[name]!);
  }
  res.end(body);
}

/** A raw HTTP/1.1 problem answer for a socket whose request could not even be parsed. */
export function rawProblemResponse(p: Problem, requestId: string): string {
  const body = problemBody(p, requestId);
  return (
    `HTTP/1.1 ${p.status} ${p.title}\r\n` +
    'content-type: application/problem+json\r\n' +
    `content-length: ${Buffer.byteLength(body)}\r\n` +
    'cache-control: no-store\r\n' +
    `x-request-id: ${requestId}\r\n` +
    'connection: close\r\n\r\n' +
    body
  );
}
