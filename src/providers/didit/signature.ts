/**
 * Verification of Didit webhooks, exactly as Didit signs them (see docs/PROVIDERS.md): HMAC-SHA256, lower-case
 * hex, keyed with the webhook secret's UTF-8 bytes. Three signatures are tried in Didit's own order:
 *
 * 1. `X-Signature-V2`: over the canonical JSON rebuilt from the parsed body (non-ASCII left as UTF-8), so a body
 *    re-encoded by a proxy still verifies;
 * 2. `X-Signature`: over the raw body bytes exactly as received;
 * 3. `X-Signature-Simple`: over `"{timestamp}:{session_id}:{status}:{webhook_type}"`. It authenticates those four
 *    fields only, so an event verified this way carries nothing else from the body (no decision, no vendor_data).
 *
 * Freshness is checked on the body's `timestamp` (the `X-Timestamp` header is covered by no signature), after a
 * signature matched. Comparisons are constant-time on equal-length digests; anything that is not 64 lower-case
 * hex digits is refused before comparing.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { WebhookEvent, WebhookVerification } from '../provider.js';
import { canonicalJson } from './canonical-json.js';
import { decisionFromDidit } from './decision.js';
import { diditStatusToState } from './statuses.js';

export type DiditSignatureKind = 'v2' | 'raw' | 'simple';

export interface DiditWebhookOptions {
  /** The webhook secret (resolved value). */
  secret: string;
  /** Oldest accepted body `timestamp`, in seconds before now. Default 300 (Didit's own example). */
  toleranceSeconds?: number;
  /** How far in the future a `timestamp` may be (clock skew), in seconds. Default 60. */
  maxFutureSkewSeconds?: number;
  /** Signatures accepted, tried in Didit's order v2, raw, simple. Default: all three. */
  accept?: readonly DiditSignatureKind[];
  /** Clock, unix seconds. */
  nowSeconds?: number;
}

const HEX_DIGEST = /^[0-9a-f]{64}$/;

export function hmacHex(secret: string, data: string | Buffer): string {
  return createHmac('sha256', Buffer.from(secret, 'utf8')).update(data).digest('hex');
}

function hmac(secret: string, data: string | Buffer): Buffer {
  return createHmac('sha256', Buffer.from(secret, 'utf8')).update(data).digest();
}

/** Constant-time check of a hex signature against the expected digest; malformed hex never matches. */
function signatureMatches(given: string, expected: Buffer): boolean {
  if (!HEX_DIGEST.test(given)) return false;
  const g = Buffer.from(given, 'hex');
  return g.length === expected.length && timingSafeEqual(g, expected);
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  if (Array.isArray(v)) return v.join(', '); // never a valid digest: duplicates are refused by the hex check
  return v === undefined || v === '' ? undefined : v;
}

/** The string X-Signature-Simple covers. */
export function simpleSignaturePayload(fields: {
  timestamp: number | string;
  session_id: string;
  status: string;
  webhook_type: string;
}): string {
  return `${fields.timestamp}:${fields.session_id}:${fields.status}:${fields.webhook_type}`;
}

/** The three header values Didit sends for an envelope (used by the sandbox, which signs like Didit). */
export function signDiditWebhook(
  secret: string,
  envelope: Record<string, unknown>,
): { body: string; headers: Record<string, string> } {
  const body = canonicalJson(envelope, { asciiOnly: true });
  const v2 = hmacHex(secret, canonicalJson(envelope));
  const simple = hmacHex(
    secret,
    simpleSignaturePayload({
      timestamp: envelope.timestamp as number,
      session_id: envelope.session_id as string,
      status: envelope.status as string,
      webhook_type: envelope.webhook_type as string,
    }),
  );
  return {
    body,
    headers: {
      'x-signature': hmacHex(secret, body),
      'x-signature-v2': v2,
      'x-signature-simple': simple,
      'x-timestamp': String(envelope.timestamp),
    },
  };
}

/**
 * The text X-Signature-V2 covers, or undefined when the body cannot be canonicalised (nested too deeply, a
 * number JSON cannot write such as 1e400): then the v2 signature cannot match, and the other signatures decide
 * or the event is refused as `invalid_signature`.
 */
function canonicalV2(body: Record<string, unknown>): string | undefined {
  try {
    return canonicalJson(body);
  } catch {
    return undefined;
  }
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** Verifies a Didit webhook on its raw body and maps it to a WebhookEvent. Nothing in the body is trusted before. */
export function verifyDiditWebhook(
  rawBody: Buffer,
  headers: IncomingHttpHeaders,
  options: DiditWebhookOptions,
): WebhookVerification {
  const accept = options.accept ?? ['v2', 'raw', 'simple'];
  const v2 = accept.includes('v2') ? header(headers, 'x-signature-v2') : undefined;
  const raw = accept.includes('raw') ? header(headers, 'x-signature') : undefined;
  const simple = accept.includes('simple') ? header(headers, 'x-signature-simple') : undefined;
  if (v2 === undefined && raw === undefined && simple === undefined) return { ok: false, reason: 'missing_signature' };

  let body: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(rawBody.toString('utf8'));
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
      return { ok: false, reason: 'malformed' };
    body = parsed as Record<string, unknown>;
  } catch {
    return { ok: false, reason: 'malformed' };
  }
  const timestamp = body.timestamp;
  const sessionId = str(body.session_id);
  const status = str(body.status);
  const webhookType = str(body.webhook_type);
  if (
    typeof timestamp !== 'number' ||
    !Number.isSafeInteger(timestamp) ||
    sessionId === undefined ||
    status === undefined ||
    webhookType === undefined
  ) {
    return { ok: false, reason: 'malformed' };
  }

  let kind: DiditSignatureKind | undefined;
  const canonical = v2 === undefined ? undefined : canonicalV2(body);
  if (v2 !== undefined && canonical !== undefined && signatureMatches(v2, hmac(options.secret, canonical))) kind = 'v2';
  else if (raw !== undefined && signatureMatches(raw, hmac(options.secret, rawBody))) kind = 'raw';
  else if (simple !== undefined) {
    const payload = simpleSignaturePayload({ timestamp, session_id: sessionId, status, webhook_type: webhookType });
    if (signatureMatches(simple, hmac(options.secret, payload))) kind = 'simple';
  }
  if (kind === undefined) return { ok: false, reason: 'invalid_signature' };

  const now = options.nowSeconds ?? Math.floor(Date.now() / 1000);
  if (now - timestamp > (options.toleranceSeconds ?? 300) || timestamp - now > (options.maxFutureSkewSeconds ?? 60)) {
    return { ok: false, reason: 'stale' };
  }

  const event: WebhookEvent = {
    eventId: '',
    sessionId,
    status,
    state: diditStatusToState(status),
    webhookType,
    timestamp,
    signature: kind,
  };
  if (kind === 'simple') {
    // event_id is not covered by the simple signature: derive a stable id from what is, so that duplicates of
    // the same signed tuple still collapse and a forged event_id cannot slip a replay past de-duplication.
    event.eventId =
      'simple:' +
      createHash('sha256')
        .update(simpleSignaturePayload({ timestamp, session_id: sessionId, status, webhook_type: webhookType }))
        .digest('hex');
    return { ok: true, event };
  }
  const eventId = str(body.event_id);
  if (eventId === undefined || eventId === '') return { ok: false, reason: 'malformed' };
  event.eventId = eventId;
  const createdAt = unixSeconds(body.created_at);
  if (createdAt !== undefined) event.createdAt = createdAt;
  const workflowId = str(body.workflow_id);
  const vendorData = str(body.vendor_data);
  if (workflowId !== undefined) event.workflowId = workflowId;
  if (vendorData !== undefined) event.vendorData = vendorData;
  const decision = body.decision;
  if (typeof decision === 'object' && decision !== null && !Array.isArray(decision)) {
    event.decision = decisionFromDidit(decision, now, { sessionId, status, workflowId, vendorData });
  }
  return { ok: true, event };
}

/** `created_at` as unix seconds: a number, or an ISO 8601 date-time; undefined for anything else. */
function unixSeconds(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value > 0 ? Math.floor(value) : undefined;
  if (typeof value !== 'string' || !/^\d{4}-\d{2}-\d{2}T/.test(value)) return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : Math.floor(ms / 1000);
}
