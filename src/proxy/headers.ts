/**
 * Header rules for both directions of a proxied exchange.
 * - Hop-by-hop headers (RFC 9110 section 7.6.1), and any header a `Connection` header names, never cross.
 * - Headers the gateway sets (X-Forwarded-*, Forwarded, X-Request-Id, and whatever policies inject) are removed
 *   from the client's request first, so a client can never forge them; X-Forwarded-* and Forwarded values from the
 *   client are kept (and appended to) only when the TCP peer is a trusted proxy.
 * - Their underscore spellings (`x_kyc_status`), which CGI-style servers read as the same name, are dropped too
 *   (server.underscored_headers).
 */
import type { RequestContext } from '../pipeline/context.js';
import { problem, type Problem } from '../pipeline/problem.js';

export const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'proxy-authorization',
  'proxy-authenticate',
]);

/**
 * Headers the core sets itself on every forwarded request, and `expect`: the listener has already met the client's
 * `Expect: 100-continue` (Node sends 100 Continue before the request reaches the gateway), so the expectation ends
 * at this hop, and undici refuses to send the header at all.
 */
const CORE_MANAGED = [
  'host',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'forwarded',
  'x-request-id',
  'expect',
];

const UNDERSCORES = /_/g;

/** What happens to a header whose name is a stripped one once `_` is read as `-` (server.underscored_headers). */
export type UnderscoredHeaders = 'drop' | 'refuse' | 'allow';

/** Compiled once per config: every header name (and prefix) stripped from incoming requests. */
export class StripRules {
  readonly names: ReadonlySet<string>;
  readonly prefixes: readonly string[];

  constructor(
    injected: Iterable<string>,
    readonly underscored: UnderscoredHeaders = 'drop',
  ) {
    const names = new Set<string>([...HOP_BY_HOP, ...CORE_MANAGED]);
    const prefixes: string[] = [];
    for (const h of injected) {
      const lower = h.toLowerCase();
      if (lower.endsWith('*')) prefixes.push(lower.slice(0, -1));
      else names.add(lower);
    }
    this.names = names;
    this.prefixes = prefixes;
  }

  strips(lower: string): boolean {
    if (this.names.has(lower)) return true;
    const prefixes = this.prefixes;
    for (let i = 0; i < prefixes.length; i++) if (lower.startsWith(prefixes[i]!)) return true;
    return false;
  }

  /**
   * Whether a lower-case name with an underscore is a stripped name once `_` is read as `-` (`x_kyc_status`,
   * `x_forwarded_for`): CGI-style servers (WSGI, Rack, PHP) map both spellings to one variable, so such a header
   * could stand in for one the gateway sets.
   */
  twin(lower: string): boolean {
    return lower.indexOf('_') !== -1 && this.strips(lower.replace(UNDERSCORES, '-'));
  }

  /** The first raw header name that is a twin of a stripped one, or undefined. */
  findTwin(rawHeaders: readonly string[]): string | undefined {
    for (let i = 0; i < rawHeaders.length; i += 2) {
      const name = rawHeaders[i]!;
      if (name.indexOf('_') !== -1 && this.twin(name.toLowerCase())) return name;
    }
    return undefined;
  }
}

/** 400 for a header that CGI-style servers would read as one the gateway sets (server.underscored_headers: refuse). */
export function underscoredRefusal(name: string): Problem {
  return problem('ambiguous-request', {
    detail: `The header "${name.replace(/[^\x21-\x7e]/g, '')}" reads as a header the gateway sets once "_" is read as "-".`,
  });
}

const NO_TOKENS: readonly string[] = Object.freeze([]);

/** Tokens of a Connection header that name other headers (close and keep-alive are options, not names). */
function connectionTokens(value: string): readonly string[] {
  // Nearly every upstream sends exactly `keep-alive` (or `close`): no tokens, nothing to split.
  if (value.length <= 10) {
    const lower = value.toLowerCase();
    if (lower === 'keep-alive' || lower === 'close') return NO_TOKENS;
  }
  const out: string[] = [];
  for (const token of value.split(',')) {
    const t = token.trim().toLowerCase();
    if (t !== '' && t !== 'close' && t !== 'keep-alive') out.push(t);
  }
  return out;
}

export interface ForwardingFacts {
  /** The TCP peer is a configured trusted proxy. */
  trustedPeer: boolean;
}

function quoteForwardedNode(ip: string): string {
  return ip.includes(':') ? `"[${ip}]"` : ip;
}

/**
 * Builds the flat [name, value, ...] header list sent upstream from the client's raw headers.
 * `upstreamHost` is the Host to send (the target's, or the client's with preserve_host).
 */
function setsName(sets: ReadonlyArray<readonly [string, string]>, lower: string): boolean {
  for (let i = 0; i < sets.length; i++) if (sets[i]![0] === lower) return true;
  return false;
}

export function buildUpstreamHeaders(
  ctx: RequestContext,
  rawHeaders: readonly string[],
  rules: StripRules,
  facts: ForwardingFacts,
  upstreamHost: string,
): string[] {
  const out: string[] = [];
  const removeExtra = ctx.upstreamRemovals;
  const setExtra = ctx.upstreamSets;
  let named: readonly string[] | undefined;
  let xff: string | undefined;
  let xfProto: string | undefined;
  let xfHost: string | undefined;
  let forwarded: string | undefined;
  const dropTwins = rules.underscored !== 'allow';

  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    const lower = name.toLowerCase();
    if (rules.strips(lower)) {
      if (lower === 'connection') named = connectionTokens(rawHeaders[i + 1]!);
      else if (facts.trustedPeer) {
        // Repeated lines are one list (RFC 9110 5.3), read the same way as for the client address (shared/forwarded.ts).
        if (lower === 'x-forwarded-for') xff = xff === undefined ? rawHeaders[i + 1] : xff + ', ' + rawHeaders[i + 1];
        else if (lower === 'x-forwarded-proto') xfProto = rawHeaders[i + 1];
        else if (lower === 'x-forwarded-host') xfHost = rawHeaders[i + 1];
        else if (lower === 'forwarded')
          forwarded = forwarded === undefined ? rawHeaders[i + 1] : forwarded + ', ' + rawHeaders[i + 1];
      }
      continue;
    }
    if (dropTwins && rules.twin(lower)) continue;
    if (removeExtra?.includes(lower)) continue;
    if (setExtra !== undefined && setsName(setExtra, lower)) continue;
    out.push(name, rawHeaders[i + 1]!);
  }

  if (named !== undefined && named.length > 0) {
    for (let i = out.length - 2; i >= 0; i -= 2) {
      if (named.includes(out[i]!.toLowerCase())) out.splice(i, 2);
    }
  }

  const client = ctx.remoteAddress;
  out.push('host', upstreamHost);
  out.push('x-forwarded-for', xff !== undefined ? xff + ', ' + client : client);
  out.push('x-forwarded-proto', xfProto ?? ctx.protocol);
  out.push('x-forwarded-host', xfHost ?? ctx.host);
  // This hop's own element: how the TCP peer reached us, whatever a trusted proxy says about the client before it.
  const hopProto = ctx.tlsSocket !== undefined ? 'https' : 'http';
  const host = ctx.host;
  const quotedHost = host.includes('"') || host.includes('\\') ? host.replace(/["\\]/g, '') : host;
  const own = `for=${quoteForwardedNode(client)};proto=${hopProto};host="${quotedHost}"`;
  out.push('forwarded', forwarded !== undefined ? forwarded + ', ' + own : own);
  out.push('x-request-id', ctx.id);
  if (setExtra !== undefined) {
    // Later sets of the same name win: skip an entry when a later one sets the same name.
    for (let i = 0; i < setExtra.length; i++) {
      const entry = setExtra[i]!;
      let overridden = false;
      for (let j = i + 1; j < setExtra.length; j++) {
        if (setExtra[j]![0] === entry[0]) {
          overridden = true;
          break;
        }
      }
      if (!overridden) out.push(entry[0], entry[1]);
    }
  }
  return out;
}

/** Lengths of the names filterResponseHeaders drops (hop-by-hop and x-request-id): others skip the lower-casing. */
const DROPPED_LENGTHS = new Set([...HOP_BY_HOP, 'x-request-id'].map((h) => h.length));

/**
 * Filters the upstream's raw response headers for the client: drops hop-by-hop ones and those the upstream's
 * Connection header names. Returns a flat [name, value, ...] list.
 */
export function filterResponseHeaders(raw: readonly Buffer[]): string[] {
  const out: string[] = [];
  let named: readonly string[] | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toString('latin1');
    const len = name.length;
    if (DROPPED_LENGTHS.has(len)) {
      const lower = name.toLowerCase();
      // The gateway's own x-request-id is the one the client gets.
      if (lower === 'x-request-id') continue;
      if (HOP_BY_HOP.has(lower)) {
        if (lower === 'connection') named = connectionTokens(raw[i + 1]!.toString('latin1'));
        continue;
      }
    }
    out.push(name, raw[i + 1]!.toString('latin1'));
  }
  if (named !== undefined && named.length > 0) {
    for (let i = out.length - 2; i >= 0; i -= 2) {
      if (named.includes(out[i]!.toLowerCase())) out.splice(i, 2);
    }
  }
  return out;
}
