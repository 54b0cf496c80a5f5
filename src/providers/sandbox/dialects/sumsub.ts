/**
 * The sandbox speaking Sumsub: `POST /resources/sdkIntegrations/levels/{level}/websdkLink` and
 * `GET /resources/applicants/-;externalUserId={id}/one`, each request signed (X-App-Token, X-App-Access-Ts,
 * X-App-Access-Sig); webhooks (`applicantCreated`, `applicantOnHold`, `applicantReviewed` GREEN / RED) signed with
 * X-Payload-Digest in the algorithm the sandbox is set to (HMAC_SHA256_HEX unless a test asks for another).
 */
import { createHash, randomUUID } from 'node:crypto';
import { safeEqual } from '../../../config/secrets.js';
import { signSumsubWebhook, sumsubRequestSignature, type SumsubDigestAlgorithm } from '../../sumsub/signature.js';
import type { SandboxSession } from '../sessions.js';
import { bearer, isoAt, sandboxIdentity, type SandboxDialect } from './dialect.js';

const REVIEW: Record<string, { type: string; reviewStatus: string; result?: Record<string, unknown> }> = {
  'In Progress': { type: 'applicantCreated', reviewStatus: 'init' },
  Approved: { type: 'applicantReviewed', reviewStatus: 'completed', result: { reviewAnswer: 'GREEN' } },
  Declined: {
    type: 'applicantReviewed',
    reviewStatus: 'completed',
    result: {
      reviewAnswer: 'RED',
      reviewRejectType: 'FINAL',
      rejectLabels: ['EXPIRATION_DATE'],
      moderationComment: 'Document expired.',
    },
  },
  Resubmitted: {
    type: 'applicantReviewed',
    reviewStatus: 'completed',
    result: { reviewAnswer: 'RED', reviewRejectType: 'RETRY', rejectLabels: ['BAD_PROOF_OF_IDENTITY'] },
  },
  'In Review': { type: 'applicantOnHold', reviewStatus: 'onHold' },
};

const applicantId = (externalUserId: string) => createHash('sha256').update(externalUserId).digest('hex').slice(0, 24);
const error = (code: number, description: string, errorCode?: number) => ({
  status: code,
  doc: { description, code, correlationId: randomUUID().replace(/-/g, ''), ...(errorCode ? { errorCode } : {}) },
});

/** Sumsub's `createdAtMs`: "yyyy-MM-dd HH:mm:ss.SSS", UTC. */
function sumsubTime(seconds: number): string {
  return isoAt(seconds).replace('T', ' ').replace('Z', '');
}

function applicant(s: SandboxSession, now: number): Record<string, unknown> {
  const r = REVIEW[s.status] ?? { reviewStatus: 'init' };
  const id = sandboxIdentity(s, now);
  return {
    id: applicantId(s.sessionId),
    createdAt: sumsubTime(s.createdAt),
    clientId: 'kycgate-sandbox',
    inspectionId: applicantId('inspection:' + s.sessionId),
    externalUserId: s.sessionId,
    levelName: s.workflowId,
    info: s.person
      ? {
          firstName: id.firstName,
          lastName: id.lastName,
          dob: id.dateOfBirth,
          country: id.country3,
          idDocs: [{ idDocType: 'ID_CARD', country: id.country3, number: id.documentNumber, validUntil: id.expires }],
        }
      : {},
    review: {
      reviewStatus: r.reviewStatus,
      ...(r.result ? { reviewResult: r.result } : {}),
      createDate: sumsubTime(s.createdAt),
    },
    type: 'individual',
  };
}

/** The digest algorithm sandbox webhooks are signed with (tests switch it to exercise each variant). */
export const sumsubSandboxSettings: { algorithm: SumsubDigestAlgorithm } = { algorithm: 'HMAC_SHA256_HEX' };

export const sumsubDialect: SandboxDialect = {
  name: 'sumsub',
  async handle(req, ctx) {
    const link = /^\/resources\/sdkIntegrations\/levels\/([^/]+)\/websdkLink$/.exec(req.path);
    const get = /^\/resources\/applicants\/-;externalUserId=([^/]+)\/one$/.exec(req.path);
    if (!link && !get) return undefined;
    const token = bearer(req.headers, 'x-app-token');
    const ts = bearer(req.headers, 'x-app-access-ts');
    const sig = bearer(req.headers, 'x-app-access-sig');
    if (!token || !safeEqual(token, ctx.apiKey)) return error(401, 'App token is invalid', 4000);
    if (!ts || !/^\d+$/.test(ts) || Math.abs(Number(ts) - ctx.now()) > 60)
      return error(401, 'Request timestamp is invalid', 4002);
    const expected = sumsubRequestSignature(
      ctx.apiSecret,
      ts,
      req.method,
      req.pathWithQuery,
      req.body.toString('utf8'),
    );
    if (!sig || !safeEqual(sig, expected)) return error(401, 'Request signature mismatch', 4003);
    if (link) {
      if (req.method !== 'POST') return error(405, 'Method not allowed');
      const externalUserId = req.query.get('externalUserId');
      if (!externalUserId) return error(400, 'externalUserId is required');
      // The same external user gets the same applicant back, as Sumsub does.
      const s =
        ctx.session(externalUserId) ??
        (await ctx.create({
          workflowId: decodeURIComponent(link[1]!),
          vendorData: externalUserId,
          sessionId: externalUserId,
        }));
      return { status: 200, doc: { url: ctx.pageUrl(s) } };
    }
    if (req.method !== 'GET') return error(405, 'Method not allowed');
    const s = ctx.session(decodeURIComponent(get![1]!));
    if (!s) return error(404, 'Applicant not found');
    return { status: 200, doc: applicant(s, ctx.now()) };
  },
  event(s, now) {
    const r = REVIEW[s.status];
    if (!r) return undefined;
    return {
      applicantId: applicantId(s.sessionId),
      inspectionId: applicantId('inspection:' + s.sessionId),
      correlationId: randomUUID().replace(/-/g, ''),
      levelName: s.workflowId,
      externalUserId: s.sessionId,
      type: r.type,
      sandboxMode: true,
      reviewStatus: r.reviewStatus,
      createdAtMs: sumsubTime(s.decidedAt ?? now),
      clientId: 'kycgate-sandbox',
      ...(r.result ? { reviewResult: r.result } : {}),
    };
  },
  sign(payload, _now, ctx) {
    const body = JSON.stringify(payload);
    return { body, headers: signSumsubWebhook(ctx.webhookSecret, body, sumsubSandboxSettings.algorithm) };
  },
};
