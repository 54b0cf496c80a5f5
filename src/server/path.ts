/**
 * Request-target normalisation, done once before routing so that the path a route matches is exactly the path the
 * upstream receives. Without it `/public/../admin` or `/public/%2e%2e/admin` would match a public route and reach
 * an admin handler upstream.
 *
 * Rules:
 * - percent-encoded unreserved characters (ALPHA DIGIT - . _ ~) are decoded; other escapes keep upper-case hex;
 * - an encoded slash (%2F), backslash (%5C) or NUL (%00), a raw backslash, malformed escapes and control
 *   characters are refused: their meaning differs between servers, so no answer is safe;
 * - repeated slashes collapse to one;
 * - dot-segments are removed (RFC 3986 section 5.2.4); climbing above the root is refused;
 * - what a server behind us could read as another path is refused as ambiguous: a dot-segment carrying path
 *   parameters (`..;x`, `.;x`, `%2e%2e%3bx`), a double-encoded delimiter (`%252e`, `%252f`), a character that Unicode
 *   folding turns into a delimiter (full-width dot U+FF0E ...), and with `refuseSemicolons` any `;`.
 */
import { isIPv6 } from 'node:net';
import { problem, type Problem } from '../pipeline/problem.js';

export type NormalisedPath =
  | { ok: true; path: string }
  | {
      ok: false;
      reason: string /** Readable two ways by servers behind us (ambiguous-path), not merely malformed. */;
      ambiguous?: true;
    };

/** How paths are checked beyond the rules every path follows (server.* settings, compiled once per config). */
export interface PathRules {
  /** Refuse every `;` (raw or %3B) in a path: for upstreams that read `;` as the start of path parameters (Java servlet containers). */
  readonly refuseSemicolons: boolean;
}

const DEFAULT_PATH_RULES: PathRules = { refuseSemicolons: false };

// Anything that may need work: a percent sign, a backslash, a semicolon, a double slash or a dot-segment.
const NEEDS_WORK = /[%\\;]|\/\/|\/\.\.?(?:\/|$)/;
// Characters allowed raw in a path by RFC 3986 (pchar plus "/"); everything else must be percent-encoded.
const INVALID_RAW = /[^A-Za-z0-9\-._~!$&'()*+,;=:@/%]/;
// A dot-segment carrying path parameters (`..;jsessionid=1`, `.;x`): servlet containers drop the parameters and
// then resolve the dots, so `/public/..;/admin` reaches /admin there while it matched /public here.
const DOT_SEGMENT_WITH_PARAMETERS = /^\.\.?(?:;|%3B)/i;
// Characters that, when a server decodes a second time or folds Unicode (NFKC), change how a path splits or climbs.
const DELIMITERS = /[./\\;%?#]/;
const AMBIGUOUS_SEMICOLON = /;|%3b/i;

function isHex(code: number): boolean {
  return (code >= 48 && code <= 57) || (code >= 65 && code <= 70) || (code >= 97 && code <= 102);
}

function isUnreserved(code: number): boolean {
  return (
    (code >= 65 && code <= 90) ||
    (code >= 97 && code <= 122) ||
    (code >= 48 && code <= 57) ||
    code === 45 ||
    code === 46 ||
    code === 95 ||
    code === 126
  );
}

function ambiguous(reason: string): NormalisedPath {
  return { ok: false, reason, ambiguous: true };
}

/**
 * Whether a decoded path holds a character outside ASCII that Unicode compatibility folding (NFKC, as Java and .NET
 * stacks and some WAFs apply) turns into a delimiter: a full-width dot (U+FF0E) or slash (U+FF0F), a one-dot leader
 * (U+2024) ... A server that folds would read another path than the one routed here.
 */
function foldsToDelimiter(decoded: string): boolean {
  let text: string;
  try {
    text = decodeURIComponent(decoded);
  } catch {
    return false; // not UTF-8: no Unicode folding can apply to it
  }
  for (const ch of text) {
    if (ch.charCodeAt(0) < 0x80) continue;
    if (DELIMITERS.test(ch.normalize('NFKC'))) return true;
  }
  return false;
}

const ENCODED_PERCENT = /%25([0-9A-Fa-f]{2})/g;

/**
 * Whether the path as forwarded (`decoded`: unreserved characters decoded, other escapes kept) holds an escaped `%`
 * whose next two characters decode to a delimiter or a control character: `%252e` (also sent as `%25%32%65`) is
 * `.` to a server that decodes twice.
 */
function doubleEncodesDelimiter(decoded: string): boolean {
  for (const m of decoded.matchAll(ENCODED_PERCENT)) {
    const second = parseInt(m[1]!, 16);
    if (second < 0x20 || second === 0x7f || DELIMITERS.test(String.fromCharCode(second))) return true;
  }
  return false;
}

export function normalisePath(raw: string, rules: PathRules = DEFAULT_PATH_RULES): NormalisedPath {
  if (raw.length === 0 || raw.charCodeAt(0) !== 47) return { ok: false, reason: 'the path must start with "/"' };
  if (INVALID_RAW.test(raw)) return { ok: false, reason: 'the path contains characters that must be percent-encoded' };
  if (!NEEDS_WORK.test(raw)) return { ok: true, path: raw };
  if (rules.refuseSemicolons && AMBIGUOUS_SEMICOLON.test(raw))
    return ambiguous('the path contains a ";" (path parameters are refused on this gateway)');

  let decoded = '';
  let nonAscii = false;
  let percent = false;
  for (let i = 0; i < raw.length; i++) {
    const ch = raw.charCodeAt(i);
    if (ch === 92) return { ok: false, reason: 'the path contains a backslash' };
    if (ch !== 37) {
      decoded += raw[i];
      continue;
    }
    const h1 = raw.charCodeAt(i + 1);
    const h2 = raw.charCodeAt(i + 2);
    if (!isHex(h1) || !isHex(h2)) return { ok: false, reason: 'the path contains a malformed percent-escape' };
    const code = parseInt(raw.slice(i + 1, i + 3), 16);
    if (code === 0x2f) return { ok: false, reason: 'the path contains an encoded slash' };
    if (code === 0x5c) return { ok: false, reason: 'the path contains an encoded backslash' };
    if (code < 0x20 || code === 0x7f) return { ok: false, reason: 'the path contains an encoded control character' };
    if (code === 0x25) percent = true;
    if (code >= 0x80) nonAscii = true;
    decoded += isUnreserved(code) ? String.fromCharCode(code) : '%' + raw.slice(i + 1, i + 3).toUpperCase();
    i += 2;
  }
  if (percent && doubleEncodesDelimiter(decoded)) return ambiguous('the path contains a double-encoded delimiter');
  if (nonAscii && foldsToDelimiter(decoded))
    return ambiguous('the path contains a character that Unicode folding turns into a delimiter');

  const segments = decoded.split('/');
  const out: string[] = [];
  const last = segments.length - 1;
  for (let i = 1; i <= last; i++) {
    const segment = segments[i]!;
    if (segment === '..') {
      if (out.length === 0) return { ok: false, reason: 'the path climbs above the root' };
      out.pop();
      if (i === last) out.push('');
    } else if (segment === '.') {
      if (i === last) out.push('');
    } else if (segment === '' && i !== last) {
      // repeated slash: skip the empty segment
    } else {
      if (segment.charCodeAt(0) === 46 && DOT_SEGMENT_WITH_PARAMETERS.test(segment))
        return ambiguous('the path has a dot-segment with path parameters');
      out.push(segment);
    }
  }
  return { ok: true, path: '/' + out.join('/') };
}

export type RequestTarget =
  | { ok: true; path: string; query: string; host: string; hostname: string }
  | { ok: false; reason: 'target' | 'path' | 'ambiguous-path' | 'host'; detail: string };

/**
 * Splits and checks a request target the way every entry point must (proxied requests and decision requests
 * alike): origin-form, or absolute-form whose authority replaces Host (RFC 9112 section 3.2.2); the path is
 * normalised and the host validated.
 */
export function parseRequestTarget(
  rawTarget: string,
  hostHeader: string,
  rules: PathRules = DEFAULT_PATH_RULES,
): RequestTarget {
  let target = rawTarget;
  let host = hostHeader;
  if (target.charCodeAt(0) !== 47) {
    const m = /^https?:\/\/([^/?#]+)([^#]*)$/i.exec(target);
    if (!m) return { ok: false, reason: 'target', detail: 'The request target must be a path or an absolute URL.' };
    host = m[1]!;
    target = m[2] === '' ? '/' : m[2]!;
  }
  const q = target.indexOf('?');
  const normalised = normalisePath(q === -1 ? target : target.slice(0, q), rules);
  if (!normalised.ok)
    return {
      ok: false,
      reason: normalised.ambiguous ? 'ambiguous-path' : 'path',
      detail: `Refused: ${normalised.reason}.`,
    };
  const hostname = hostnameOf(host);
  if (hostname === undefined)
    return {
      ok: false,
      reason: 'host',
      detail: 'The Host header is invalid: a host name or IP address and an optional numeric port, nothing else.',
    };
  return { ok: true, path: normalised.path, query: q === -1 ? '' : target.slice(q + 1), host, hostname };
}

/** The answer to a refused request target: 400 with the kind that says what was wrong. */
export function targetProblem(refused: Extract<RequestTarget, { ok: false }>): Problem {
  switch (refused.reason) {
    case 'host':
      return problem('bad-request', { detail: refused.detail });
    case 'ambiguous-path':
      return problem('ambiguous-path', { detail: refused.detail });
    default:
      return problem('invalid-path', { detail: refused.detail });
  }
}

const REG_NAME = /^[A-Za-z0-9._-]+$/;
const IPV6_CHARS = /^[0-9A-Fa-f:.]+$/;

/** Whether `s` from `from` on is `:` and a port (1 to 5 digits, at most 65535), or empty. */
function portOnly(s: string, from: number): boolean {
  if (from === s.length) return true;
  if (s.charCodeAt(from) !== 58) return false;
  const digits = s.length - from - 1;
  if (digits < 1 || digits > 5) return false;
  let port = 0;
  for (let i = from + 1; i < s.length; i++) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return false;
    port = port * 10 + c;
  }
  return port <= 65535;
}

/**
 * Lower-case host name without port, or undefined when the Host (or :authority) value is anything but a host name
 * or IP literal with an optional numeric port: userinfo (`a@b`), a port that is not a number, a path or spaces would
 * be read differently by whatever builds links from X-Forwarded-Host or Forwarded upstream.
 */
export function hostnameOf(host: string): string | undefined {
  if (host === '') return '';
  if (host.charCodeAt(0) === 91) {
    const end = host.indexOf(']');
    if (end === -1) return undefined;
    const literal = host.slice(1, end);
    if (!IPV6_CHARS.test(literal) || !isIPv6(literal) || !portOnly(host, end + 1)) return undefined;
    return literal.toLowerCase();
  }
  const colon = host.indexOf(':');
  const name = colon === -1 ? host : host.slice(0, colon);
  if (!REG_NAME.test(name) || (colon !== -1 && !portOnly(host, colon))) return undefined;
  return name.toLowerCase();
}
