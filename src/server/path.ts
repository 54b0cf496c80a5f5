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
 * - dot-segments are removed (RFC 3986 section 5.2.4); climbing above the root is refused.
 */

export type NormalisedPath = { ok: true; path: string } | { ok: false; reason: string };

// Anything that may need work: a percent sign, a backslash, a double slash or a dot-segment.
const NEEDS_WORK = /[%\\]|\/\/|\/\.\.?(?:\/|$)/;
// Characters allowed raw in a path by RFC 3986 (pchar plus "/"); everything else must be percent-encoded.
const INVALID_RAW = /[^A-Za-z0-9\-._~!$&'()*+,;=:@/%]/;

function isHex(code: number): boolean {
  return (code >= 48 && code <= 57) || (code >= 65 && code <= 70) || (code >= 97 && code <= 102);
}

function isUnreserved(code: number): boolean {
  return (
    (code >= 65 && code <= 90) || (code >= 97 && code <= 122) || (code >= 48 && code <= 57) ||
    code === 45 || code === 46 || code === 95 || code === 126
  );
}

export function normalisePath(raw: string): NormalisedPath {
  if (raw.length === 0 || raw.charCodeAt(0) !== 47) return { ok: false, reason: 'the path must start with "/"' };
  if (INVALID_RAW.test(raw)) return { ok: false, reason: 'the path contains characters that must be percent-encoded' };
  if (!NEEDS_WORK.test(raw)) return { ok: true, path: raw };

  let decoded = '';
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
    decoded += isUnreserved(code) ? String.fromCharCode(code) : '%' + raw.slice(i + 1, i + 3).toUpperCase();
    i += 2;
  }

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
      out.push(segment);
    }
  }
  return { ok: true, path: '/' + out.join('/') };
}

export type RequestTarget =
  | { ok: true; path: string; query: string; host: string; hostname: string }
  | { ok: false; reason: 'target' | 'path' | 'host'; detail: string };

/**
 * Splits and checks a request target the way every entry point must (proxied requests and decision requests
 * alike): origin-form, or absolute-form whose authority replaces Host (RFC 9112 section 3.2.2); the path is
 * normalised and the host name validated.
 */
export function parseRequestTarget(rawTarget: string, hostHeader: string): RequestTarget {
  let target = rawTarget;
  let host = hostHeader;
  if (target.charCodeAt(0) !== 47) {
    const m = /^https?:\/\/([^/?#]+)([^#]*)$/i.exec(target);
    if (!m) return { ok: false, reason: 'target', detail: 'The request target must be a path or an absolute URL.' };
    host = m[1]!;
    target = m[2] === '' ? '/' : m[2]!;
  }
  const q = target.indexOf('?');
  const normalised = normalisePath(q === -1 ? target : target.slice(0, q));
  if (!normalised.ok) return { ok: false, reason: 'path', detail: `Refused: ${normalised.reason}.` };
  const hostname = hostnameOf(host);
  if (hostname === undefined) return { ok: false, reason: 'host', detail: 'The Host header is invalid.' };
  return { ok: true, path: normalised.path, query: q === -1 ? '' : target.slice(q + 1), host, hostname };
}

/** Lower-case host name without port, or undefined when the Host value is malformed. */
export function hostnameOf(host: string): string | undefined {
  if (host === '') return '';
  if (host.charCodeAt(0) === 91) {
    const end = host.indexOf(']');
    if (end === -1) return undefined;
    return host.slice(1, end).toLowerCase();
  }
  const colon = host.indexOf(':');
  const name = colon === -1 ? host : host.slice(0, colon);
  if (!/^[A-Za-z0-9.\-_]*$/.test(name)) return undefined;
  return name.toLowerCase();
}
