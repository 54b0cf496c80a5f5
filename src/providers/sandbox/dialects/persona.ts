/**
 * The sandbox speaking Persona: `POST /api/v1/inquiries` and `GET /api/v1/inquiries/{id}` (Bearer key, JSON:API,
 * kebab-case), the hosted flow at `/verify?inquiry-id=...`, and `inquiry.*` event webhooks signed with
 * `Persona-Signature: t=...,v1=...` over `"{t}.{body}"`, stamped at each delivery attempt.
 */
import { randomBytes } from 'node:crypto';
import { safeEqual } from '../../../config/secrets.js';
import { signPersonaWebhook } from '../../persona/signature.js';
import type { SandboxSession } from '../sessions.js';
import { bearer, isoAt, jsonBody, sandboxIdentity, type SandboxDialect } from './dialect.js';

const INQUIRY: Record<string, { status: string; event: string }> = {
  'Not Started': { status: 'created', event: 'inquiry.created' },
  'In Progress': { status: 'pending', event: 'inquiry.started' },
  Resubmitted: { status: 'pending', event: 'inquiry.started' },
  Approved: { status: 'approved', event: 'inquiry.approved' },
  Declined: { status: 'declined', event: 'inquiry.declined' },
  'In Review': { status: 'needs_review', event: 'inquiry.marked-for-review' },
};

const ALPHANUMERIC = 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789';
const personaId = (prefix: string) =>
  prefix + [...randomBytes(24)].map((b) => ALPHANUMERIC[b % ALPHANUMERIC.length]).join('');
const errors = (status: number, title: string, details?: string) => ({
  status,
  doc: { errors: [{ title, ...(details ? { details } : {}) }] },
});

function inquiry(s: SandboxSession, now: number): Record<string, unknown> {
  const i = INQUIRY[s.status] ?? INQUIRY['Not Started']!;
  const decided = s.decidedAt !== undefined && ['approved', 'declined', 'needs_review'].includes(i.status);
  const id = sandboxIdentity(s, now);
  return {
    type: 'inquiry',
    id: s.sessionId,
    attributes: {
      status: i.status,
      'reference-id': s.vendorData ?? null,
      'inquiry-template-id': s.workflowId,
      'redirect-uri': s.callback ?? null,
      'created-at': isoAt(s.createdAt),
      'completed-at': decided ? isoAt(s.decidedAt!) : null,
      'decisioned-at': decided ? isoAt(s.decidedAt!) : null,
      'name-first': decided ? (id.firstName ?? null) : null,
      'name-last': decided ? (id.lastName ?? null) : null,
      birthdate: decided ? (id.dateOfBirth ?? null) : null,
    },
  };
}

function governmentId(s: SandboxSession, now: number): Record<string, unknown> {
  const id = sandboxIdentity(s, now);
  return {
    type: 'verification/government-id',
    id: 'ver_' + s.sessionId.slice(4),
    attributes: {
      status: s.outcome === 'Declined' ? 'failed' : 'passed',
      'id-class': 'id',
      'country-code': id.country2,
      'expiration-date': id.expires,
      'name-first': id.firstName,
      'name-last': id.lastName,
      birthdate: id.dateOfBirth,
    },
  };
}

export const personaDialect: SandboxDialect = {
  name: 'persona',
  async handle(req, ctx) {
    const m = /^\/api\/v1\/inquiries(?:\/(inq_[A-Za-z0-9]+))?$/.exec(req.path);
    if (!m) return undefined;
    const auth = bearer(req.headers, 'authorization');
    if (!auth?.startsWith('Bearer ') || !safeEqual(auth.slice(7), ctx.apiKey))
      return errors(401, 'Must be authenticated to access this endpoint');
    if (m[1] === undefined) {
      if (req.method !== 'POST') return errors(405, 'Method not allowed');
      const body = jsonBody(req.body);
      const data = body?.data as Record<string, unknown> | undefined;
      const a = (data?.attributes ?? {}) as Record<string, unknown>;
      const template = a['inquiry-template-id'];
      if (typeof template !== 'string' || !/^itmpl_[A-Za-z0-9]+$/.test(template))
        return errors(400, 'Bad request', 'data.attributes.inquiry-template-id is invalid');
      const s = await ctx.create({
        workflowId: template,
        sessionId: personaId('inq_'),
        ...(typeof a['reference-id'] === 'string' ? { vendorData: a['reference-id'] } : {}),
        ...(typeof a['redirect-uri'] === 'string' ? { callback: a['redirect-uri'] } : {}),
      });
      return { status: 201, doc: { data: inquiry(s, ctx.now()) } };
    }
    if (req.method !== 'GET') return errors(405, 'Method not allowed');
    const s = ctx.session(m[1]);
    if (!s) return errors(404, 'Record not found');
    const include = (req.query.get('include') ?? '').split(',').includes('verifications');
    return {
      status: 200,
      doc: { data: inquiry(s, ctx.now()), ...(include && s.person ? { included: [governmentId(s, ctx.now())] } : {}) },
    };
  },
  event(s, now) {
    const i = INQUIRY[s.status];
    if (!i || i.status === 'created') return undefined;
    return {
      data: {
        type: 'event',
        id: personaId('evt_'),
        attributes: { name: i.event, 'created-at': isoAt(s.decidedAt ?? now), payload: { data: inquiry(s, now) } },
      },
    };
  },
  sign(payload, now, ctx) {
    const body = JSON.stringify(payload);
    return { body, headers: signPersonaWebhook(ctx.webhookSecret, body, now) };
  },
};
