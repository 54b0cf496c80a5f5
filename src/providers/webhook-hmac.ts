/**
 * What the HMAC webhook schemes of Veriff, Onfido, Sumsub and Persona share: a keyed digest over raw bytes, a
 * constant-time comparison against a hex signature (anything that is not hex of the digest's length never
 * matches), one header value only (a repeated header is ambiguous: Node joins it with commas, which no hex check passes), and an event id for providers
 * that send none: the SHA-256 of the raw body, so a replayed delivery is recognised as the same event.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

export type HmacAlgorithm = 'sha1' | 'sha256' | 'sha512';

export function hmacDigest(algorithm: HmacAlgorithm, secret: string, data: string | Buffer): Buffer {
  return createHmac(algorithm, Buffer.from(secret, 'utf8')).update(data).digest();
}

export function hmacHexOf(algorithm: HmacAlgorithm, secret: string, data: string | Buffer): string {
  return hmacDigest(algorithm, secret, data).toString('hex');
}

const HEX = /^[0-9a-fA-F]+$/;

/** Constant-time check of a hex signature against the expected digest; malformed or mis-sized hex never matches. */
export function hexSignatureMatches(given: string, expected: Buffer): boolean {
  if (given.length !== expected.length * 2 || !HEX.test(given)) return false;
  return timingSafeEqual(Buffer.from(given, 'hex'), expected);
}

/** One header's value; undefined when absent, empty or sent more than once (ambiguous: refused). */
export function singleHeader(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  if (Array.isArray(v)) return v.length === 1 ? v[0] : undefined;
  if (typeof v !== 'string') return undefined;
  const t = v.trim();
  return t === '' ? undefined : t;
}

/** Event id of a provider that sends none: a replay of the same bytes is the same event. */
export function bodyEventId(rawBody: Buffer): string {
  return 'sha256:' + createHash('sha256').update(rawBody).digest('hex');
}

export function parseJsonObject(rawBody: Buffer): Record<string, unknown> | undefined {
  try {
    const doc = JSON.parse(rawBody.toString('utf8')) as unknown;
    return isObject(doc) ? doc : undefined;
  } catch {
    return undefined;
  }
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function text(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** Unix seconds of an ISO 8601 time (or Sumsub's `yyyy-MM-dd HH:mm:ss.SSS`, UTC); undefined when not a time. */
export function isoSeconds(v: unknown): number | undefined {
  if (typeof v !== 'string' || v === '') return undefined;
  const iso = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d+)?$/.test(v) ? v.replace(' ', 'T') + 'Z' : v;
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? undefined : Math.floor(ms / 1000);
}

/**
 * Freshness of an event judged on the time the provider gives it: refused when older than `maxAgeSeconds` or
 * further in the future than `maxFutureSkewSeconds`. Without a time the event is not judged (and is ordered as the
 * oldest, so it can never overwrite a later status).
 */
export function eventTimeFresh(
  eventSeconds: number | undefined,
  nowSeconds: number,
  maxAgeSeconds: number,
  maxFutureSkewSeconds: number,
): boolean {
  if (eventSeconds === undefined) return true;
  return eventSeconds >= nowSeconds - maxAgeSeconds && eventSeconds <= nowSeconds + maxFutureSkewSeconds;
}
