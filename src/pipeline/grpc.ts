/**
 * Gateway-made answers to gRPC requests (HTTP/2, `content-type: application/grpc...`): a gRPC client reads
 * `grpc-status` and `grpc-message`, not a problem+json body, so a refusal is a Trailers-Only response (HTTP 200,
 * one HEADERS frame that ends the stream) with the status mapped from the problem's HTTP status, the request id,
 * and the problem type in `kycgate-problem-type`.
 */
import type http2 from 'node:http2';
import type { ServerResponse } from 'node:http';

/** gRPC status codes (grpc/doc/statuscodes.md) the gateway answers with. */
export const GrpcStatus = {
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

/** The gRPC status for a gateway answer's HTTP status. */
export function grpcStatusFor(httpStatus: number): number {
  switch (httpStatus) {
    case 400:
    case 413:
    case 414:
    case 415:
      return httpStatus === 413 ? GrpcStatus.RESOURCE_EXHAUSTED : GrpcStatus.INVALID_ARGUMENT;
    case 401:
      return GrpcStatus.UNAUTHENTICATED;
    case 403:
      return GrpcStatus.PERMISSION_DENIED;
    case 404:
      return GrpcStatus.UNIMPLEMENTED;
    case 405:
      return GrpcStatus.UNIMPLEMENTED;
    case 408:
    case 504:
      return GrpcStatus.DEADLINE_EXCEEDED;
    case 409:
    case 412:
    case 428:
      return GrpcStatus.FAILED_PRECONDITION;
    case 429:
    case 431:
      return GrpcStatus.RESOURCE_EXHAUSTED;
    case 499:
      return GrpcStatus.CANCELLED;
    case 500:
      return GrpcStatus.INTERNAL;
    case 501:
      return GrpcStatus.UNIMPLEMENTED;
    case 502:
    case 503:
      return GrpcStatus.UNAVAILABLE;
    default:
      return GrpcStatus.UNKNOWN;
  }
}

/** Percent-encodes a grpc-message value (bytes outside 0x20-0x7E, and '%'), as the gRPC HTTP/2 protocol says. */
export function grpcMessage(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    if (byte >= 0x20 && byte <= 0x7e && byte !== 0x25) out += String.fromCharCode(byte);
    else out += '%' + byte.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

/** The request of an HTTP/2 response is a gRPC call. */
export function isGrpcRequest(res: ServerResponse): boolean {
  const type = res.req?.headers['content-type'];
  return typeof type === 'string' && type.startsWith('application/grpc');
}

type Http2Answer = ServerResponse & { stream?: http2.ServerHttp2Stream };

/** What a gRPC answer reads of a gateway problem (problem.ts calls this module, so it names no type of it). */
export interface GrpcProblemFields {
  readonly type: string;
  readonly status: number;
  readonly title: string;
  readonly detail: string | undefined;
  readonly headers: Record<string, string | number | string[]> | undefined;
}

/** Answers a gRPC call with `p` as a Trailers-Only response. */
export function sendGrpcProblem(res: ServerResponse, p: GrpcProblemFields, requestId: string | undefined): void {
  const stream = (res as Http2Answer).stream;
  if (stream === undefined || stream.destroyed || stream.headersSent) {
    res.destroy();
    return;
  }
  const headers: http2.OutgoingHttpHeaders = {
    ':status': 200,
    'content-type': 'application/grpc',
    'grpc-status': String(grpcStatusFor(p.status)),
    'grpc-message': grpcMessage(p.detail ?? p.title),
    'kycgate-problem-type': p.type,
  };
  if (requestId !== undefined) headers['x-request-id'] = requestId;
  if (p.headers) for (const name of Object.keys(p.headers)) headers[name.toLowerCase()] = p.headers[name]!;
  stream.respond(headers, { endStream: true });
}
