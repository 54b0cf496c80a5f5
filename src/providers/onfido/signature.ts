/**
 * Onfido (Entrust Identity Verification) webhooks as documented ("manual webhook signature verification"):
 * `X-SHA2-Signature` is the hex HMAC-SHA256 of the raw body keyed with the webhook's token. The body is
 * `{payload: {resource_type, action, object: {id, status, completed_at_iso8601, href}}}`; there is no event id and
 * no signed delivery time: the event id is the body's SHA-256, freshness is judged on `completed_at_iso8601`.
 * `workflow_run.*` events speak for the run; `workflow_task.*` events for their run (`object.workflow_run_id`),
 * as progress only.
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
import { onfidoStatusToState } from './decision.js';

export interface OnfidoWebhookOptions {
  token: string;
  nowSeconds: number;
  maxEventAgeSeconds: number;
  maxFutureSkewSeconds: number;
}

export function signOnfidoWebhook(token: string, body: string): Record<string, string> {
  return { 'x-sha2-signature': hmacHexOf('sha256', token, body) };
}

export function verifyOnfidoWebhook(
  rawBody: Buffer,
  headers: IncomingHttpHeaders,
  o: OnfidoWebhookOptions,
): WebhookVerification {
  const given = singleHeader(headers, 'x-sha2-signature');
  if (given === undefined) return { ok: false, reason: 'missing_signature' };
  if (!hexSignatureMatches(given.toLowerCase(), hmacDigest('sha256', o.token, rawBody)))
    return { ok: false, reason: 'invalid_signature' };
  const doc = parseJsonObject(rawBody);
  const payload = doc && isObject(doc.payload) ? doc.payload : undefined;
  const object = payload && isObject(payload.object) ? payload.object : undefined;
  const action = text(payload?.action);
  if (!payload || !object || !action) return { ok: false, reason: 'malformed' };
  const at = isoSeconds(object.completed_at_iso8601);
  if (!eventTimeFresh(at, o.nowSeconds, o.maxEventAgeSeconds, o.maxFutureSkewSeconds))
    return { ok: false, reason: 'stale' };
  const eventId = bodyEventId(rawBody);
  if (payload.resource_type === 'workflow_run') {
    const sessionId = text(object.id);
    const status = text(object.status) ?? action;
    if (!sessionId) return { ok: false, reason: 'malformed' };
    return {
      ok: true,
      event: {
        eventId,
        sessionId,
        status,
        state: onfidoStatusToState(status),
        webhookType: action,
        timestamp: at ?? o.nowSeconds,
        createdAt: at ?? 0,
        signature: 'hmac-sha256',
      },
    };
  }
  const runId = text(object.workflow_run_id);
  if (payload.resource_type === 'workflow_task' && runId) {
    return {
      ok: true,
      event: {
        eventId,
        sessionId: runId,
        status: action,
        state: 'pending',
        webhookType: action,
        timestamp: at ?? o.nowSeconds,
        // Progress only: ordered before any status of the run itself.
        createdAt: 0,
        signature: 'hmac-sha256',
      },
    };
  }
  return { ok: false, reason: 'malformed' };
}
