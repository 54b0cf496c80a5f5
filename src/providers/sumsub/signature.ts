/**
 * Sumsub webhooks as documented ("Webhook manager"): `X-Payload-Digest` is the hex HMAC of the raw body keyed with
 * the webhook secret key, the algorithm named by `X-Payload-Digest-Alg`: HMAC_SHA256_HEX (the default when the
 * header is absent), HMAC_SHA512_HEX or HMAC_SHA1_HEX; `accept` may narrow the list (an algorithm not accepted is
 * refused, never downgraded). No event id and no signed delivery time: the event id is the body's SHA-256 and
 * freshness and order come from `createdAtMs`.
 *
 * API requests are signed too: `X-App-Access-Sig` is the hex HMAC-SHA256 of `ts + METHOD + path?query + body` with
 * the app token's secret key, `X-App-Access-Ts` the unix time in seconds.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { WebhookVerification } from '../provider.js';
import {
  bodyEventId,
  eventTimeFresh,
  hexSignatureMatches,
  hmacDigest,
  hmacHexOf,
  isoSeconds,
  parseJsonObject,
  singleHeader,
  text,
  type HmacAlgorithm,
} from '../webhook-hmac.js';
import { reviewOf, sumsubState, sumsubStatus } from './decision.js';

export const SUMSUB_DIGEST_ALGORITHMS = ['HMAC_SHA256_HEX', 'HMAC_SHA512_HEX', 'HMAC_SHA1_HEX'] as const;
export type SumsubDigestAlgorithm = (typeof SUMSUB_DIGEST_ALGORITHMS)[number];

const HMAC_OF: Record<SumsubDigestAlgorithm, HmacAlgorithm> = {
  HMAC_SHA256_HEX: 'sha256',
  HMAC_SHA512_HEX: 'sha512',
  HMAC_SHA1_HEX: 'sha1',
};

export interface SumsubWebhookOptions {
  secret: string;
  nowSeconds: number;
  maxEventAgeSeconds: number;
  maxFutureSkewSeconds: number;
  accept?: readonly SumsubDigestAlgorithm[] | undefined;
}

export function signSumsubWebhook(
  secret: string,
  body: string,
  algorithm: SumsubDigestAlgorithm = 'HMAC_SHA256_HEX',
): Record<string, string> {
  return { 'x-payload-digest': hmacHexOf(HMAC_OF[algorithm], secret, body), 'x-payload-digest-alg': algorithm };
}

/** `X-App-Access-Sig` of one API request. */
export function sumsubRequestSignature(
  secret: string,
  ts: string,
  method: string,
  pathWithQuery: string,
  body = '',
): string {
  return hmacHexOf('sha256', secret, ts + method.toUpperCase() + pathWithQuery + body);
}

/** `createdAtMs`: "yyyy-MM-dd HH:mm:ss.SSS" in UTC as documented, or epoch milliseconds. */
function createdAtSeconds(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isFinite(v)) return Math.floor(v / 1000);
  if (typeof v === 'string' && /^\d{12,}$/.test(v)) return Math.floor(Number(v) / 1000);
  return isoSeconds(v);
}

export function verifySumsubWebhook(
  rawBody: Buffer,
  headers: IncomingHttpHeaders,
  o: SumsubWebhookOptions,
): WebhookVerification {
  const given = singleHeader(headers, 'x-payload-digest');
  if (given === undefined) return { ok: false, reason: 'missing_signature' };
  const named = singleHeader(headers, 'x-payload-digest-alg') ?? 'HMAC_SHA256_HEX';
  const accept = o.accept ?? SUMSUB_DIGEST_ALGORITHMS;
  if (!(accept as readonly string[]).includes(named)) return { ok: false, reason: 'invalid_signature' };
  const algorithm = HMAC_OF[named as SumsubDigestAlgorithm];
  if (!hexSignatureMatches(given.toLowerCase(), hmacDigest(algorithm, o.secret, rawBody)))
    return { ok: false, reason: 'invalid_signature' };
  const doc = parseJsonObject(rawBody);
  const sessionId = text(doc?.externalUserId);
  const type = text(doc?.type);
  if (!doc || !sessionId || !type) return { ok: false, reason: 'malformed' };
  const at = createdAtSeconds(doc.createdAtMs) ?? createdAtSeconds(doc.createdAt);
  if (!eventTimeFresh(at, o.nowSeconds, o.maxEventAgeSeconds, o.maxFutureSkewSeconds))
    return { ok: false, reason: 'stale' };
  const review = reviewOf(doc);
  const state = type === 'applicantDeleted' ? 'expired' : sumsubState(review);
  return {
    ok: true,
    event: {
      eventId: bodyEventId(rawBody),
      sessionId,
      status: type === 'applicantDeleted' ? 'deleted' : sumsubStatus(review),
      state,
      webhookType: type,
      timestamp: at ?? o.nowSeconds,
      createdAt: at ?? 0,
      signature: named.toLowerCase(),
      ...(text(doc.levelName) !== undefined ? { workflowId: text(doc.levelName)! } : {}),
    },
  };
}
