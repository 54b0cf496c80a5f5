/**
 * The sandbox speaking Onfido v3.6 (Studio): `POST /v3.6/applicants`, `POST /v3.6/workflow_runs` (answering the
 * hosted `link.url`), `GET /v3.6/workflow_runs/{id}` with the run's `output`, all behind
 * `Authorization: Token token=<token>`; `workflow_run.completed` webhooks signed with X-SHA2-Signature.
 */
import { randomUUID } from 'node:crypto';
import { safeEqual } from '../../../config/secrets.js';
import { signOnfidoWebhook } from '../../onfido/signature.js';
import type { SandboxSession } from '../sessions.js';
import { bearer, isoAt, jsonBody, sandboxIdentity, type SandboxDialect } from './dialect.js';

const RUN_STATUS: Record<string, string> = {
  'Not Started': 'awaiting_input',
  'In Progress': 'awaiting_input',
  Resubmitted: 'awaiting_input',
  Approved: 'approved',
  Declined: 'declined',
  'In Review': 'review',
};
const FINAL = new Set(['approved', 'declined', 'review']);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const applicants = new Set<string>();

const error = (status: number, type: string, message: string, fields: Record<string, unknown> = {}) => ({
  status,
  doc: { error: { type, message, fields } },
});

function run(s: SandboxSession, now: number): Record<string, unknown> {
  const status = RUN_STATUS[s.status] ?? 'awaiting_input';
  const id = sandboxIdentity(s, now);
  return {
    id: s.sessionId,
    applicant_id: s.metadata?.applicant_id ?? null,
    workflow_id: s.workflowId,
    workflow_version_id: s.workflowVersion,
    status,
    customer_user_id: s.vendorData ?? null,
    dashboard_url: `https://dashboard.onfido.com/results/${s.sessionId}`,
    link: { url: '', completed_redirect_url: s.callback ?? null, expired_redirect_url: s.callback ?? null },
    output: FINAL.has(status)
      ? {
          first_name: id.firstName,
          last_name: id.lastName,
          date_of_birth: id.dateOfBirth,
          document_type: 'national_identity_card',
          issuing_country: id.country3,
          date_of_expiry: id.expires,
          document_number: id.documentNumber,
          breakdown_result: status === 'approved' ? 'clear' : 'consider',
        }
      : null,
    reasons: status === 'declined' ? ['document_expired'] : [],
    created_at: isoAt(s.createdAt),
    updated_at: isoAt(s.decidedAt ?? s.createdAt),
  };
}

export const onfidoDialect: SandboxDialect = {
  name: 'onfido',
  async handle(req, ctx) {
    const m = /^\/v3\.6\/(applicants|workflow_runs)(?:\/([^/]+))?$/.exec(req.path);
    if (!m) return undefined;
    const auth = bearer(req.headers, 'authorization');
    const token = auth?.startsWith('Token token=') ? auth.slice('Token token='.length) : undefined;
    if (!token || !safeEqual(token, ctx.apiKey))
      return error(401, 'authorization_error', 'Authorization error: please re-check your credentials');
    const body = jsonBody(req.body);
    if (!body) return error(400, 'validation_error', 'Invalid JSON');
    if (m[1] === 'applicants' && m[2] === undefined && req.method === 'POST') {
      const id = randomUUID();
      applicants.add(id);
      return {
        status: 201,
        doc: { id, created_at: isoAt(ctx.now()), href: `/v3.6/applicants/${id}`, delete_at: null },
      };
    }
    if (m[1] === 'workflow_runs' && m[2] === undefined && req.method === 'POST') {
      const { workflow_id, applicant_id, customer_user_id, link } = body;
      if (typeof workflow_id !== 'string' || !UUID.test(workflow_id))
        return error(422, 'validation_error', 'There was a validation error on this request', {
          workflow_id: ['is invalid'],
        });
      if (typeof applicant_id !== 'string' || !applicants.has(applicant_id))
        return error(422, 'validation_error', 'There was a validation error on this request', {
          applicant_id: ['not found'],
        });
      const redirect =
        typeof link === 'object' && link !== null
          ? (link as Record<string, unknown>).completed_redirect_url
          : undefined;
      const s = await ctx.create({
        workflowId: workflow_id,
        ...(typeof customer_user_id === 'string' ? { vendorData: customer_user_id } : {}),
        ...(typeof redirect === 'string' ? { callback: redirect } : {}),
        metadata: { applicant_id },
      });
      const doc = run(s, ctx.now());
      (doc.link as Record<string, unknown>).url = ctx.pageUrl(s);
      return { status: 201, doc };
    }
    if (m[1] === 'workflow_runs' && m[2] !== undefined && req.method === 'GET') {
      const s = ctx.session(m[2]);
      if (!s) return error(404, 'resource_not_found', 'The resource could not be found.');
      const doc = run(s, ctx.now());
      (doc.link as Record<string, unknown>).url = ctx.pageUrl(s);
      return { status: 200, doc };
    }
    return error(405, 'method_not_allowed', 'Method not allowed');
  },
  event(s, now) {
    const status = RUN_STATUS[s.status];
    if (!status || !FINAL.has(status)) return undefined;
    return {
      payload: {
        resource_type: 'workflow_run',
        action: 'workflow_run.completed',
        object: {
          id: s.sessionId,
          status,
          completed_at_iso8601: isoAt(s.decidedAt ?? now),
          href: `https://api.eu.onfido.com/v3.6/workflow_runs/${s.sessionId}`,
        },
      },
    };
  },
  sign(payload, _now, ctx) {
    const body = JSON.stringify(payload);
    return { body, headers: signOnfidoWebhook(ctx.webhookSecret, body) };
  },
};
