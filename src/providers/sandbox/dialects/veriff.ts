/**
 * The sandbox speaking Veriff: `POST /v1/sessions` (X-AUTH-CLIENT), `GET /v1/sessions/{id}/decision`
 * (X-AUTH-CLIENT and X-HMAC-SIGNATURE over the session id), event webhooks (7001 started) and decision webhooks
 * (9001 approved, 9102 declined, 9103 resubmission_requested, 9121 review), signed with X-HMAC-SIGNATURE.
 */
import { safeEqual } from '../../../config/secrets.js';
import { hmacHexOf } from '../../webhook-hmac.js';
import { signVeriffWebhook } from '../../veriff/signature.js';
import type { SandboxSession } from '../sessions.js';
import { bearer, isoAt, jsonBody, sandboxIdentity, type DialectContext, type SandboxDialect } from './dialect.js';

const DECISIONS: Record<string, { status: string; code: number; reason: string | null; reasonCode: number | null }> = {
  Approved: { status: 'approved', code: 9001, reason: null, reasonCode: null },
  Declined: { status: 'declined', code: 9102, reason: 'Document expired', reasonCode: 102 },
  Resubmitted: { status: 'resubmission_requested', code: 9103, reason: 'Photo not clear', reasonCode: 201 },
  'In Review': { status: 'review', code: 9121, reason: null, reasonCode: null },
};

const fail = (status: number, code: string, message: string) => ({ status, doc: { status: 'fail', code, message } });

function verification(s: SandboxSession, now: number) {
  const d = DECISIONS[s.status];
  if (!d) return null;
  const id = sandboxIdentity(s, now);
  return {
    id: s.sessionId,
    attemptId: s.sessionToken,
    code: d.code,
    person: {
      firstName: id.firstName ?? null,
      lastName: id.lastName ?? null,
      dateOfBirth: id.dateOfBirth ?? null,
      nationality: id.country2,
      idNumber: null,
      gender: null,
      placeOfBirth: null,
    },
    reason: d.reason,
    reasonCode: d.reasonCode,
    status: d.status,
    comments: [],
    document: {
      number: id.documentNumber,
      type: 'ID_CARD',
      country: id.country2,
      validFrom: null,
      validUntil: id.expires,
    },
    additionalVerifiedData: {},
    vendorData: s.vendorData ?? null,
    decisionTime: isoAt(s.decidedAt ?? now),
    acceptanceTime: isoAt(s.createdAt),
  };
}

export const veriffDialect: SandboxDialect = {
  name: 'veriff',
  async handle(req, ctx) {
    const key = bearer(req.headers, 'x-auth-client');
    const isApi = req.path === '/v1/sessions' || /^\/v1\/sessions\/[^/]+\/decision$/.test(req.path);
    if (!isApi) return undefined;
    if (!key || !safeEqual(key, ctx.apiKey))
      return fail(401, '1801', 'Mandatory X-AUTH-CLIENT header containing the API key is missing from the request.');
    if (req.path === '/v1/sessions') {
      if (req.method !== 'POST') return fail(405, '1102', 'Method not allowed.');
      const body = jsonBody(req.body);
      const v = body?.verification;
      if (typeof v !== 'object' || v === null || Array.isArray(v))
        return fail(400, '1102', 'Mandatory parameters are missing from the request: verification.');
      const { callback, vendorData } = v as Record<string, unknown>;
      if (callback !== undefined && (typeof callback !== 'string' || !/^https?:\/\//.test(callback)))
        return fail(400, '1104', 'Callback is not a valid URL.');
      if (vendorData !== undefined && (typeof vendorData !== 'string' || vendorData.length > 1000))
        return fail(400, '1105', 'vendorData must be a string of at most 1000 characters.');
      const s = await ctx.create({
        workflowId: 'integration',
        ...(typeof vendorData === 'string' ? { vendorData } : {}),
        ...(typeof callback === 'string' ? { callback } : {}),
      });
      const url = ctx.pageUrl(s);
      return {
        status: 201,
        doc: {
          status: 'success',
          verification: {
            id: s.sessionId,
            url,
            vendorData: s.vendorData ?? null,
            host: new URL(url).origin,
            status: 'created',
            sessionToken: s.sessionToken,
          },
        },
      };
    }
    if (req.method !== 'GET') return fail(405, '1102', 'Method not allowed.');
    const sessionId = req.path.split('/')[3]!;
    const signature = bearer(req.headers, 'x-hmac-signature');
    if (!signature || !safeEqual(signature.toLowerCase(), hmacHexOf('sha256', ctx.webhookSecret, sessionId)))
      return fail(
        401,
        '1812',
        'Signature "x-hmac-signature" does not match the HMAC-SHA256 of query ID and integration API secret.',
      );
    const s = ctx.session(sessionId);
    if (!s) return fail(404, '1404', 'Session not found.');
    return {
      status: 200,
      doc: { status: 'success', verification: verification(s, ctx.now()), technicalData: { ip: null } },
    };
  },
  event(s, now) {
    if (s.status === 'In Progress')
      return {
        id: s.sessionId,
        attemptId: s.sessionToken,
        feature: 'selfid',
        code: 7001,
        action: 'started',
        vendorData: s.vendorData ?? null,
        endUserId: null,
      };
    const v = verification(s, now);
    return v ? { status: 'success', verification: v, technicalData: { ip: null } } : undefined;
  },
  sign(payload, _now, ctx: DialectContext) {
    const body = JSON.stringify(payload);
    return { body, headers: signVeriffWebhook(ctx.webhookSecret, ctx.apiKey, body) };
  },
};
