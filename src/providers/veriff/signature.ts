/**
 * Veriff webhooks as Veriff documents them ("HMAC authentication and endpoint security"): `X-HMAC-SIGNATURE` is the
 * lower-case hex HMAC-SHA256 of the raw body keyed with the integration's shared secret key; `X-AUTH-CLIENT` carries
 * the API key and authenticates nothing. Two kinds arrive: decision webhooks (`{status, verification: {...}}`) and
 * event webhooks (`{id, code: 7001|7002, action: started|submitted, ...}`). Neither carries a signed delivery
 * timestamp or an event id: the event id is the body's SHA-256 (a replay is the same event), and freshness is judged
 * on `verification.decisionTime` / `acceptanceTime`.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { WebhookVerification } from '../provider.js';
import {
  bodyEventId,
  eventTimeFresh,
  hexSignatureMatches,
  hmacDigest,
  hmacHexOf,
  isObject,
  isoSeconds,
  parseJsonObject,
  singleHeader,
  text,
} from '../webhook-hmac.js';
import { decisionFromVeriff, veriffStatusToState } from './decision.js';

export interface VeriffWebhookOptions {
  secret: string;
  nowSeconds: number;
  maxEventAgeSeconds: number;
  maxFutureSkewSeconds: number;
}

/** Headers Veriff sends with a body (used by the sandbox, which signs like Veriff). */
export function signVeriffWebhook(secret: string, apiKey: string, body: string): Record<string, string> {
  return { 'x-auth-client': apiKey, 'x-hmac-signature': hmacHexOf('sha256', secret, body) };
}

const EVENT_ACTIONS: ReadonlyMap<string, string> = new Map([
  ['started', 'started'],
  ['submitted', 'submitted'],
]);

export function verifyVeriffWebhook(
  rawBody: Buffer,
  headers: IncomingHttpHeaders,
  o: VeriffWebhookOptions,
): WebhookVerification {
  const given = singleHeader(headers, 'x-hmac-signature');
  if (given === undefined) return { ok: false, reason: 'missing_signature' };
  if (!hexSignatureMatches(given.toLowerCase(), hmacDigest('sha256', o.secret, rawBody)))
    return { ok: false, reason: 'invalid_signature' };
  const doc = parseJsonObject(rawBody);
  if (!doc) return { ok: false, reason: 'malformed' };
  const eventId = bodyEventId(rawBody);
  if (isObject(doc.verification)) {
    const v = doc.verification;
    const sessionId = text(v.id);
    const status = text(v.status);
    if (!sessionId || !status) return { ok: false, reason: 'malformed' };
    const at = isoSeconds(v.decisionTime) ?? isoSeconds(v.acceptanceTime);
    if (!eventTimeFresh(at, o.nowSeconds, o.maxEventAgeSeconds, o.maxFutureSkewSeconds))
      return { ok: false, reason: 'stale' };
    const decision = decisionFromVeriff(v, o.nowSeconds, sessionId);
    return {
      ok: true,
      event: {
        eventId,
        sessionId,
        status,
        state: decision.state,
        webhookType: 'decision',
        timestamp: at ?? o.nowSeconds,
        createdAt: at ?? o.nowSeconds,
        signature: 'hmac-sha256',
        ...(decision.vendorData !== undefined ? { vendorData: decision.vendorData } : {}),
        decision,
      },
    };
  }
  const sessionId = text(doc.id);
  const action = typeof doc.action === 'string' ? EVENT_ACTIONS.get(doc.action) : undefined;
  if (!sessionId || !action) return { ok: false, reason: 'malformed' };
  const at = isoSeconds(doc.acceptanceTime);
  if (!eventTimeFresh(at, o.nowSeconds, o.maxEventAgeSeconds, o.maxFutureSkewSeconds))
    return { ok: false, reason: 'stale' };
  return {
    ok: true,
    event: {
      eventId,
      sessionId,
      status: action,
      state: veriffStatusToState(action),
      webhookType: 'event',
      timestamp: at ?? o.nowSeconds,
      // Without a time, a progress event is ordered before everything else: it can never overwrite a decision.
      createdAt: at ?? 0,
      signature: 'hmac-sha256',
      ...(text(doc.vendorData) !== undefined ? { vendorData: text(doc.vendorData)! } : {}),
    },
  };
}
