/**
 * SPIFFE IDs (spiffe/spiffe standards/SPIFFE-ID.md): `spiffe://<trust-domain><path>`, parsed strictly by hand.
 * A general URL parser is deliberately not used: it would lower-case the scheme, decode percent-escapes and accept
 * userinfo, ports, queries and fragments, all of which the standard forbids.
 */

/** Longest SPIFFE ID a validator must accept (bytes). */
export const MAX_SPIFFE_ID_BYTES = 2048;
/** Longest trust domain name (bytes). */
export const MAX_TRUST_DOMAIN_BYTES = 255;

const SCHEME_PREFIX = 'spiffe://';

export interface SpiffeId {
  /** The whole ID, e.g. `spiffe://example.org/ns/payments/sa/api`. */
  readonly id: string;
  readonly trustDomain: string;
  /** The path including its leading `/`, or '' for the trust domain's root ID. */
  readonly path: string;
}

export type SpiffeIdResult = { ok: true; value: SpiffeId } | { ok: false; reason: string };

/** Characters allowed in a trust domain name: a-z 0-9 . - _ (lower case only). */
export function isTrustDomainChar(code: number): boolean {
  return (
    (code >= 0x61 && code <= 0x7a) || (code >= 0x30 && code <= 0x39) || code === 0x2e || code === 0x2d || code === 0x5f
  );
}

/** Characters allowed in a path segment: a-z A-Z 0-9 . - _ */
export function isPathChar(code: number): boolean {
  return isTrustDomainChar(code) || (code >= 0x41 && code <= 0x5a);
}

/** Checks a trust domain name on its own (as written in config or bundle maps). */
export function validateTrustDomain(name: string): string | undefined {
  if (name.length === 0) return 'the trust domain is empty';
  if (Buffer.byteLength(name, 'utf8') > MAX_TRUST_DOMAIN_BYTES)
    return `the trust domain is longer than ${MAX_TRUST_DOMAIN_BYTES} bytes`;
  for (let i = 0; i < name.length; i++) {
    if (!isTrustDomainChar(name.charCodeAt(i))) return 'the trust domain may only contain a-z, 0-9, ".", "-" and "_"';
  }
  return undefined;
}

/** Checks a path (leading `/`, or empty) on its own. */
export function validatePath(path: string): string | undefined {
  if (path === '') return undefined;
  if (path.charCodeAt(0) !== 0x2f) return 'the path must start with "/"';
  let segmentStart = 1;
  for (let i = 1; i <= path.length; i++) {
    if (i === path.length || path.charCodeAt(i) === 0x2f) {
      const segment = path.slice(segmentStart, i);
      if (segment === '') return i === path.length ? 'the path has a trailing "/"' : 'the path has an empty segment';
      if (segment === '.' || segment === '..') return 'the path has a "." or ".." segment';
      segmentStart = i + 1;
      continue;
    }
    if (!isPathChar(path.charCodeAt(i))) return 'the path may only contain a-z, A-Z, 0-9, ".", "-", "_" and "/"';
  }
  return undefined;
}

/** Parses and validates a SPIFFE ID; the reason on failure is safe to show a client. */
export function parseSpiffeId(value: string): SpiffeIdResult {
  if (value.length === 0) return { ok: false, reason: 'the SPIFFE ID is empty' };
  if (Buffer.byteLength(value, 'utf8') > MAX_SPIFFE_ID_BYTES)
    return { ok: false, reason: `the SPIFFE ID is longer than ${MAX_SPIFFE_ID_BYTES} bytes` };
  // Case-sensitive on purpose: `Spiffe://` and `SPIFFE://` are not SPIFFE IDs.
  if (!value.startsWith(SCHEME_PREFIX)) return { ok: false, reason: 'the scheme must be exactly "spiffe://"' };
  const rest = value.slice(SCHEME_PREFIX.length);
  const slash = rest.indexOf('/');
  const trustDomain = slash === -1 ? rest : rest.slice(0, slash);
  const path = slash === -1 ? '' : rest.slice(slash);
  // Userinfo (@), port (:), query (?), fragment (#) and escapes (%) all fail the character checks below; name
  // them anyway so operators see why a certificate was refused.
  for (const [char, what] of [
    ['@', 'userinfo'],
    [':', 'a port'],
    ['?', 'a query'],
    ['#', 'a fragment'],
    ['%', 'percent-encoding'],
  ] as const) {
    if (rest.includes(char)) return { ok: false, reason: `a SPIFFE ID may not contain ${what}` };
  }
  const tdProblem = validateTrustDomain(trustDomain);
  if (tdProblem) return { ok: false, reason: tdProblem };
  const pathProblem = validatePath(path);
  if (pathProblem) return { ok: false, reason: pathProblem };
  return { ok: true, value: { id: value, trustDomain, path } };
}
