/**
 * Trust bundles (spiffe/spiffe standards/SPIFFE_Trust_Domain_and_Bundle.md): the X.509 authorities and JWT
 * signing keys of one trust domain, read from a PEM file (X.509 authorities only) or a SPIFFE bundle (a JWK Set
 * with `use: x509-svid` keys carrying the CA in `x5c[0]` and `use: jwt-svid` keys with a `kid`).
 */
import { X509Certificate } from 'node:crypto';
import type { JWK } from 'jose';

export interface TrustBundle {
  /** CA certificates that may anchor X509-SVIDs (or plain client certificates) of this domain. */
  readonly x509Authorities: readonly X509Certificate[];
  /** JWT-SVID signing keys by `kid`. */
  readonly jwtAuthorities: ReadonlyMap<string, JWK>;
  /** `spiffe_sequence`, when the bundle has one. */
  readonly sequence: bigint | undefined;
  /** `spiffe_refresh_hint` in seconds, when present. */
  readonly refreshHintS: number | undefined;
}

const JWT_KEY_TYPES = new Set(['RSA', 'EC']);
const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** Parses bundle file content; throws an Error naming what is wrong (never key material). */
export function parseTrustBundle(content: string, source: string): TrustBundle {
  const trimmed = content.trimStart();
  if (trimmed.startsWith('{')) return parseSpiffeBundle(trimmed, source);
  const blocks = content.match(PEM_CERTIFICATE);
  if (!blocks || blocks.length === 0) throw new Error(`${source} holds neither PEM certificates nor a SPIFFE bundle`);
  const x509Authorities = blocks.map((pem, i) => {
    try {
      return new X509Certificate(pem);
    } catch {
      throw new Error(`${source}: certificate ${i + 1} cannot be parsed`);
    }
  });
  return { x509Authorities, jwtAuthorities: new Map(), sequence: undefined, refreshHintS: undefined };
}

function parseSpiffeBundle(content: string, source: string): TrustBundle {
  let doc: unknown;
  try {
    doc = JSON.parse(content);
  } catch {
    throw new Error(`${source} is not valid JSON`);
  }
  if (typeof doc !== 'object' || doc === null || !Array.isArray((doc as { keys?: unknown }).keys)) {
    throw new Error(`${source} is not a JWK Set (no "keys" array)`);
  }
  const set = doc as { keys: unknown[]; spiffe_sequence?: unknown; spiffe_refresh_hint?: unknown };
  const x509Authorities: X509Certificate[] = [];
  const jwtAuthorities = new Map<string, JWK>();
  set.keys.forEach((raw, i) => {
    if (typeof raw !== 'object' || raw === null) throw new Error(`${source}: key ${i} is not an object`);
    const key = raw as JWK & { use?: unknown };
    // Keys of an unknown type or with a missing or unknown `use` are ignored, as the standard asks.
    if (key.use === 'x509-svid') {
      if (!Array.isArray(key.x5c) || key.x5c.length !== 1 || typeof key.x5c[0] !== 'string') {
        throw new Error(`${source}: x509-svid key ${i} must carry exactly one certificate in x5c`);
      }
      try {
        x509Authorities.push(new X509Certificate(Buffer.from(key.x5c[0], 'base64')));
      } catch {
        throw new Error(`${source}: the certificate of x509-svid key ${i} cannot be parsed`);
      }
    } else if (key.use === 'jwt-svid') {
      if (typeof key.kty !== 'string' || !JWT_KEY_TYPES.has(key.kty)) return;
      if (typeof key.kid !== 'string' || key.kid === '') throw new Error(`${source}: jwt-svid key ${i} has no kid`);
      if (jwtAuthorities.has(key.kid)) throw new Error(`${source}: kid ${JSON.stringify(key.kid)} appears twice`);
      const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...publicPart } = key;
      if (_d !== undefined) throw new Error(`${source}: jwt-svid key ${i} contains private key material`);
      jwtAuthorities.set(key.kid, publicPart);
    }
  });
  let sequence: bigint | undefined;
  if (set.spiffe_sequence !== undefined) {
    if (typeof set.spiffe_sequence !== 'number' || !Number.isInteger(set.spiffe_sequence) || set.spiffe_sequence < 0) {
      throw new Error(`${source}: spiffe_sequence must be a non-negative integer`);
    }
    // JSON.parse loses precision above 2^53; sequences in practice stay far below it.
    sequence = BigInt(set.spiffe_sequence);
  }
  let refreshHintS: number | undefined;
  if (set.spiffe_refresh_hint !== undefined) {
    if (typeof set.spiffe_refresh_hint !== 'number' || !(set.spiffe_refresh_hint >= 0)) {
      throw new Error(`${source}: spiffe_refresh_hint must be a non-negative number of seconds`);
    }
    refreshHintS = set.spiffe_refresh_hint;
  }
  return { x509Authorities, jwtAuthorities, sequence, refreshHintS };
}
