/**
 * The API key format. Keys are recognisable and self-checking so that secret scanners (GitHub push protection,
 * gitleaks, trufflehog) can find leaked keys with few false positives, and so that the gateway can refuse a
 * mistyped or random string without a store lookup:
 *
 *   kg_<lookup id: 8 base62>_<secret: 32 base62><checksum: 6 base62>
 *
 * The checksum is CRC32 of everything before it (`kg_<id>_<secret>`), written in base62 and left-padded with `0`
 * to 6 characters. The lookup id is not secret (it names the key in `keys list`, logs and audit); the secret has
 * about 190 bits of entropy, so a plain SHA-256 of the whole key is a safe stored verifier.
 * Scanner regex: `\bkg_[0-9A-Za-z]{8}_[0-9A-Za-z]{38}\b`.
 */
import { hash, randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';

export const KEY_PREFIX = 'kg_';
export const LOOKUP_ID_LENGTH = 8;
export const SECRET_LENGTH = 32;
export const CHECKSUM_LENGTH = 6;
/** Total length of a key: prefix, id, separator, secret, checksum. */
export const KEY_LENGTH = KEY_PREFIX.length + LOOKUP_ID_LENGTH + 1 + SECRET_LENGTH + CHECKSUM_LENGTH;
/** For secret scanners and docs. */
export const KEY_PATTERN = /\bkg_[0-9A-Za-z]{8}_[0-9A-Za-z]{38}\b/;

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const SEPARATOR_AT = KEY_PREFIX.length + LOOKUP_ID_LENGTH;

/** Uniform random base62 string (rejection sampling: no modulo bias). */
export function randomBase62(length: number): string {
  let out = '';
  while (out.length < length) {
    const bytes = randomBytes(length * 2);
    for (let i = 0; i < bytes.length && out.length < length; i++) {
      const b = bytes[i]! & 0x3f; // 0..63; 62 and 63 are rejected
      if (b < 62) out += ALPHABET[b];
    }
  }
  return out;
}

function base62Checksum(body: string): string {
  let n = crc32(body);
  let out = '';
  while (n > 0) {
    out = ALPHABET[n % 62] + out;
    n = Math.floor(n / 62);
  }
  return out.padStart(CHECKSUM_LENGTH, '0');
}

export interface GeneratedKey {
  /** The full key: shown once, never stored. */
  key: string;
  /** Public lookup id. */
  id: string;
  /** Hex SHA-256 of the full key: what the store keeps. */
  hash: string;
}

export function generateKey(): GeneratedKey {
  const id = randomBase62(LOOKUP_ID_LENGTH);
  const body = `${KEY_PREFIX}${id}_${randomBase62(SECRET_LENGTH)}`;
  const key = body + base62Checksum(body);
  return { key, id, hash: hashKey(key) };
}

export function hashKey(key: string): string {
  return hash('sha256', key, 'hex');
}

/**
 * The lookup id of a candidate that has the shape of a key (prefix, length, separator), without checking the
 * checksum: the hot path for keys already cached, where the hash comparison that follows is the real check.
 */
export function lookupIdOf(candidate: string): string | undefined {
  if (candidate.length !== KEY_LENGTH || candidate.charCodeAt(SEPARATOR_AT) !== 95 || !candidate.startsWith(KEY_PREFIX))
    return undefined;
  return candidate.slice(KEY_PREFIX.length, SEPARATOR_AT);
}

function isBase62(code: number): boolean {
  return (code >= 48 && code <= 57) || (code >= 65 && code <= 90) || (code >= 97 && code <= 122);
}

/**
 * The lookup id of a well-formed key whose checksum matches, or undefined. Cheap enough for every request:
 * a string that is not one of our keys never reaches the cache or the store.
 */
export function parseKey(candidate: string): string | undefined {
  if (candidate.length !== KEY_LENGTH || !candidate.startsWith(KEY_PREFIX) || candidate.charCodeAt(SEPARATOR_AT) !== 95)
    return undefined;
  for (let i = KEY_PREFIX.length; i < KEY_LENGTH; i++) {
    if (i !== SEPARATOR_AT && !isBase62(candidate.charCodeAt(i))) return undefined;
  }
  const body = candidate.slice(0, KEY_LENGTH - CHECKSUM_LENGTH);
  if (base62Checksum(body) !== candidate.slice(KEY_LENGTH - CHECKSUM_LENGTH)) return undefined;
  return candidate.slice(KEY_PREFIX.length, SEPARATOR_AT);
}

/** Parses `90d`, `24h`, `30m`, `45s`, `500ms` into milliseconds. */
export function parseDuration(text: string): number {
  const m = /^(\d+)(ms|s|m|h|d)$/.exec(text.trim());
  if (!m) throw new Error(`"${text}" is not a duration (use e.g. 90d, 24h, 30m, 45s)`);
  const n = Number(m[1]);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'ms' | 's' | 'm' | 'h' | 'd'];
  return n * unit;
}
