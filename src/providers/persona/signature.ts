/**
 * Persona webhooks as documented ("Webhooks best practices"): `Persona-Signature: t=<unix seconds>,v1=<hex>` where
 * v1 is the HMAC-SHA256 of `"{t}.{raw body}"` keyed with the webhook secret. While a secret is being rotated the
 * header carries two space-separated `t=...,v1=...` pairs, one per secret: either matching is enough. The signed
 * `t` is judged against the tolerance (a replay after it is refused as stale); within it the event id
 * (`data.id`, evt_...) makes a replay a duplicate. Events are ordered by the event's `created-at`.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { WebhookVerification } from '../provider.js';
import {
  hexSignatureMatches,
  hmacDigest,
  hmacHexOf,
  isObject,
  isoSeconds,
  parseJsonObject,
  singleHeader,
  text,
} from '../webhook-hmac.js';
import { personaStatusToState } from './decision.js';

export interface PersonaWebhookOptions {
  secret: string;
  nowSeconds: number;
  toleranceSeconds: number;
  maxFutureSkewSeconds: number;
}

export function signPersonaWebhook(secret: string, body: string, t: number): Record<string, string> {
  return { 'persona-signature': `t=${t},v1=${hmacHexOf('sha256', secret, `${t}.${body}`)}` };
}

/** The `t=...,v1=...` pairs of a header; undefined when any pair is not well formed (ambiguous: refused). */
export function parsePersonaSignature(header: string): Array<{ t: number; v1: string }> | undefined {
  const pairs: Array<{ t: number; v1: string }> = [];
  for (const part of header.trim().split(/\s+/)) {
    const fields = new Map<string, string>();
    for (const kv of part.split(',')) {
      const i = kv.indexOf('=');
      if (i <= 0 || fields.has(kv.slice(0, i))) return undefined;
      fields.set(kv.slice(0, i), kv.slice(i + 1));
    }
    const t = fields.get('t');
    const v1 = fields.get('v1');
    if (t === undefined || v1 === undefined || !/^\d{1,12}$/.test(t)) return undefined;
    pairs.push({ t: Number(t), v1 });
  }
  return pairs.length > 0 && pairs.length <= 4 ? pairs : undefined;
}

export function verifyPersonaWebhook(
  rawBody: Buffer,
  headers: IncomingHttpHeaders,
  o: PersonaWebhookOptions,
): WebhookVerification {
  const header = singleHeader(headers, 'persona-signature');
  if (header === undefined) return { ok: false, reason: 'missing_signature' };
  const pairs = parsePersonaSignature(header);
  if (!pairs) return { ok: false, reason: 'invalid_signature' };
  let signedAt: number | undefined;
  // Every pair is checked (no early exit), so the time taken does not say which one matched.
  for (const { t, v1 } of pairs) {
    const expected = hmacDigest('sha256', o.secret, Buffer.concat([Buffer.from(`${t}.`), rawBody]));
    if (hexSignatureMatches(v1.toLowerCase(), expected) && signedAt === undefined) signedAt = t;
  }
  if (signedAt === undefined) return { ok: false, reason: 'invalid_signature' };
  if (signedAt < o.nowSeconds - o.toleranceSeconds || signedAt > o.nowSeconds + o.maxFutureSkewSeconds)
    return { ok: false, reason: 'stale' };
  const doc = parseJsonObject(rawBody);
  const event = doc && isObject(doc.data) ? doc.data : undefined;
  const attributes = event && isObject(event.attributes) ? event.attributes : undefined;
  const payload = attributes && isObject(attributes.payload) ? attributes.payload : undefined;
  const inquiry = payload && isObject(payload.data) ? payload.data : undefined;
  const eventId = text(event?.id);
  const name = text(attributes?.name);
  if (!eventId || !name || !inquiry || inquiry.type !== 'inquiry' || !text(inquiry.id))
    return { ok: false, reason: 'malformed' };
  const inquiryAttributes = isObject(inquiry.attributes) ? inquiry.attributes : {};
  const status = text(inquiryAttributes.status) ?? name.replace(/^inquiry\./, '');
  const createdAt = isoSeconds(attributes!['created-at']) ?? signedAt;
  const referenceId = text(inquiryAttributes['reference-id']);
  return {
    ok: true,
    event: {
      eventId,
      sessionId: text(inquiry.id)!,
      status,
      state: personaStatusToState(status),
      webhookType: name,
      timestamp: signedAt,
      createdAt,
      signature: 'v1',
      ...(referenceId !== undefined ? { vendorData: referenceId } : {}),
    },
  };
}
