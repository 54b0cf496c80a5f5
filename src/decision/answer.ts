/**
 * Decision answers. Allow: 2xx with the headers to inject upstream (and those meant for the client). Deny: the
 * problem's status, problem+json body and the headers a proxy relays to the client (WWW-Authenticate, Retry-After,
 * RateLimit*). Every answer carries `x-kycgate-status` (nginx turns non-401/403 statuses into 500 and needs the real
 * one) and says how long the front proxy may reuse it.
 */
import type { ServerResponse } from 'node:http';
import { problemBody, type Problem } from '../pipeline/problem.js';
import type { Reply } from '../pipeline/policy.js';
import { answerHead } from '../server/answer-head.js';
import type { RoutedContext } from '../routing/router.js';

/** Header carrying a challenge's verification URL, so a proxy can redirect browsers. */
export const VERIFICATION_URL_HEADER = 'x-kycgate-verification-url';
/** The real answer status, for proxies that collapse statuses (nginx auth_request). */
export const STATUS_HEADER = 'x-kycgate-status';
/** The problem document as an ASCII header, for proxies that drop the decision body (nginx auth_request). */
export const PROBLEM_HEADER = 'x-kycgate-problem';

/**
 * Request headers policies removed from what the upstream may see (an API key with hide_credentials, ...), as a
 * comma-separated list: the front proxy clears them before forwarding (the nginx recipe maps it to empty values).
 */
export const REMOVE_HEADER = 'x-kycgate-remove-headers';

/** Headers the answer sets itself; a policy's copy would contradict them. */
const OWN_HEADERS = new Set([
  'cache-control',
  'vary',
  'x-accel-expires',
  'content-type',
  'content-length',
  STATUS_HEADER,
  PROBLEM_HEADER,
  REMOVE_HEADER,
  'x-request-id',
]);

/** Counters of one request: an answer that may be reused never carries them (they would be replayed to every client). */
function perRequestHeader(name: string): boolean {
  return (
    name === 'ratelimit' || name === 'ratelimit-policy' || name === 'retry-after' || name.startsWith('x-ratelimit-')
  );
}

/**
 * How long (seconds) a front proxy may reuse this answer: 0 unless every policy of the route declared its decisions
 * reusable, and never longer than the configured maximum nor the earliest expiry a policy reported.
 */
function reuseSeconds(ctx: RoutedContext, max: number): number {
  if (max <= 0 || !ctx.route.chain.decisionsReusable) return 0;
  const limit = ctx.cacheTtlLimit;
  return Math.min(limit, max);
}

export interface AnswerSettings {
  allowStatus: number;
  allowMaxAge: number;
  denyMaxAge: number;
  /** Vary value for this convention. */
  vary: string;
  browserRedirect: boolean;
  /** Copy the problem into PROBLEM_HEADER (nginx). */
  problemInHeader: boolean;
}

/** Pushes cache headers. X-Accel-Expires comes first: nginx then ignores `private` in Cache-Control and caches for N. */
function pushCache(out: string[], ttl: number, vary: string, ctx: RoutedContext | undefined): void {
  if (ttl > 0) out.push('x-accel-expires', String(ttl), 'cache-control', `private, max-age=${ttl}`);
  else out.push('x-accel-expires', '0', 'cache-control', 'no-store');
  // Headers a policy read to decide (e.g. the subject header) are added, so a cached answer is kept per value.
  const extra = ctx?.varyHeaders;
  out.push('vary', extra === undefined ? vary : vary + ', ' + extra.join(', '));
}

/** Answers allow: upstream header changes (later sets of a name win) plus headers meant for the client. */
export function writeAllow(ctx: RoutedContext, res: ServerResponse, s: AnswerSettings): void {
  const out: string[] = [];
  const ttl = reuseSeconds(ctx, s.allowMaxAge);
  pushCache(out, ttl, s.vary, ctx);
  out.push(STATUS_HEADER, String(s.allowStatus), 'x-request-id', ctx.id);
  // RFC 9110 section 8.6: no Content-Length on a 204.
  if (s.allowStatus !== 204) out.push('content-length', '0');
  const set = ctx.upstreamHeaderChanges.set;
  if (set !== undefined) {
    for (let i = set.length - 1; i >= 0; i--) {
      const name = set[i]![0];
      let later = false;
      for (let j = i + 1; j < set.length; j++) if (set[j]![0] === name) later = true;
      if (!later && !OWN_HEADERS.has(name)) out.push(name, set[i]![1]);
    }
  }
  const removed = ctx.upstreamHeaderChanges.remove;
  if (removed !== undefined) out.push(REMOVE_HEADER, [...new Set(removed)].join(', '));
  const client = ctx.responseHeaderChanges;
  if (client !== undefined)
    for (const [k, v] of client) if (!OWN_HEADERS.has(k) && (ttl === 0 || !perRequestHeader(k))) pushValue(out, k, v);
  ctx.status = s.allowStatus;
  res.writeHead(s.allowStatus, out);
  res.end();
}

function pushValue(out: string[], name: string, value: string | string[] | number): void {
  if (Array.isArray(value)) for (const v of value) out.push(name, v);
  else out.push(name, typeof value === 'number' ? String(value) : value);
}

/** Whether the original request prefers HTML (a browser navigation) over JSON. */
export function prefersHtml(accept: string | undefined): boolean {
  if (accept === undefined) return false;
  const html = accept.indexOf('text/html');
  if (html === -1) return false;
  const json = accept.search(/application\/(?:problem\+)?json/);
  return json === -1 || html < json;
}

/** Only definite refusals may be reused; throttling, outages and gateway errors are momentary. */
function denialCacheable(status: number): boolean {
  return status === 401 || status === 403 || status === 404;
}

/** Answers deny with a problem, after the route's onResponse hooks saw the head (as in proxy mode). */
export function writeProblem(ctx: RoutedContext, res: ServerResponse, p: Problem, s: AnswerSettings): void {
  const verificationUrl = p.extensions?.verification_url;
  const head = answerHead(
    ctx,
    p.status,
    p.headers,
    typeof verificationUrl !== 'string'
      ? undefined
      : (h) => {
          h.headers.set(VERIFICATION_URL_HEADER, verificationUrl);
          if (s.browserRedirect && prefersHtml(ctx.header('accept'))) {
            h.status = 303;
            h.headers.set('location', verificationUrl);
          }
        },
  );

  const body = problemBody(p, ctx.id);
  const out: string[] = [];
  const ttl = denialCacheable(head.status) ? reuseSeconds(ctx, s.denyMaxAge) : 0;
  pushCache(out, ttl, s.vary, ctx);
  out.push('content-type', 'application/problem+json', 'content-length', String(Buffer.byteLength(body)));
  out.push(STATUS_HEADER, String(head.status), 'x-request-id', ctx.id);
  if (s.problemInHeader) out.push(PROBLEM_HEADER, asciiJson(body));
  for (const [k, v] of head.headers)
    if (!OWN_HEADERS.has(k) && (ttl === 0 || !perRequestHeader(k))) pushValue(out, k, v);
  ctx.errorKind = p.kind;
  ctx.status = head.status;
  res.writeHead(head.status, out);
  res.end(body);
}

/** Relays a gateway-made answer (a policy's Reply) that is not a 2xx: the front proxy passes it to the client. */
export function writeReply(ctx: RoutedContext, res: ServerResponse, reply: Reply, s: AnswerSettings): void {
  const head = answerHead(ctx, reply.status, reply.headers);
  if (head.withhold !== undefined) return writeProblem(ctx, res, head.withhold, s);
  const out: string[] = [];
  pushCache(out, 0, s.vary, ctx);
  out.push(STATUS_HEADER, String(head.status), 'x-request-id', ctx.id);
  for (const [k, v] of head.headers)
    if (k !== 'cache-control' && k !== 'vary' && k !== 'x-accel-expires') pushValue(out, k, v);
  ctx.status = head.status;
  res.writeHead(head.status, out);
  res.end(reply.body);
}

/** JSON with every non-ASCII character escaped, safe as a header value. */
export function asciiJson(json: string): string {
  return json.replace(/[^\x20-\x7e]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'));
}
