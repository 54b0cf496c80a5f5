/** Handlers: subjects (look up, block, unblock, erase) and the webhook inbox (list, replay). */
import type { KycService } from '../../kyc/service.js';
import type { SubjectBlocks, SubjectBlock } from '../../kyc/blocks.js';
import {
  eraseSubject,
  inboxEvents,
  ReplayRefused,
  replayEvent,
  subjectView,
  type InboxStatus,
} from '../../kyc/subject-admin.js';
import { ProviderUnavailable } from '../../providers/provider.js';
import {
  decodeCursor,
  iso,
  isString,
  notConfigured,
  notFound,
  paged,
  refuse,
  type Call,
  type Handler,
} from '../call.js';
import { ADMIN_CONFLICT, ADMIN_INVALID_REQUEST } from '../problems.js';

function kyc(call: Call): { kyc: KycService; blocks: SubjectBlocks } {
  const service = call.api.services.find<KycService>('kyc');
  const blocks = call.api.services.find<SubjectBlocks>('kyc-blocks');
  if (!service || !blocks) return notConfigured('This gateway has no kyc section: it keeps no subjects or webhooks.');
  return { kyc: service, blocks };
}

const blockView = (b: SubjectBlock) => ({
  subject: b.subject,
  reason: b.reason,
  blocked_by: b.blockedBy,
  blocked_at: iso(b.blockedAt),
});

/** The subject as the API shows it; an unknown subject is `unverified` with nothing recorded. */
async function subjectBody(call: Call, subject: string): Promise<Record<string, unknown>> {
  const { kyc: service, blocks } = kyc(call);
  const view = await subjectView(service, subject);
  const block = await blocks.find(subject);
  return {
    subject,
    status: view?.status ?? 'unverified',
    blocked: block ? blockView(block) : null,
    claims: (view?.claims ?? []).map((c) => ({ ...c, expires_at: iso(c.expires_at) })),
    workflows: (view?.workflows ?? []).map((w) => ({
      ...w,
      verified_at: iso(w.verified_at),
      expires_at: iso(w.expires_at),
      updated_at: iso(w.updated_at),
    })),
    sessions: (view?.sessions ?? []).map((s) => ({ ...s, created_at: iso(s.created_at) })),
    history: (view?.history ?? []).map((h) => ({ ...h, at: iso(h.at) })),
  };
}

/** The `subject.namespace` of the kyc-gate on route `name` (or in the defaults). */
function namespaceOfRoute(call: Call, name: string): string {
  const config = call.api.sources.config();
  const route = config.routes.find((r) => r.name === name);
  if (!route) return refuse(ADMIN_INVALID_REQUEST, `No route named "${name}".`);
  for (const entry of [...route.policies, ...config.defaults.policies]) {
    const gate = (entry as Record<string, { subject?: { namespace?: string } }>)['kyc-gate'];
    if (gate) return gate.subject?.namespace ?? '';
  }
  return refuse(ADMIN_INVALID_REQUEST, `Route "${name}" has no kyc-gate.`);
}

const isInboxCursor = (v: unknown): v is { received_at: number; provider: string; event_id: string } =>
  typeof v === 'object' &&
  v !== null &&
  typeof (v as { received_at?: unknown }).received_at === 'number' &&
  typeof (v as { provider?: unknown }).provider === 'string' &&
  typeof (v as { event_id?: unknown }).event_id === 'string';

export const KYC_HANDLERS: Record<string, Handler> = {
  async lookupSubject(call) {
    const b = call.body as { user_id: string; namespace?: string; route?: string };
    if (b.namespace !== undefined && b.route !== undefined)
      refuse(ADMIN_INVALID_REQUEST, 'Give `namespace` or `route`, not both.');
    const namespace = b.route !== undefined ? namespaceOfRoute(call, b.route) : (b.namespace ?? '');
    const subject = kyc(call).kyc.pseudonymise(namespace, b.user_id);
    return { body: await subjectBody(call, subject) };
  },

  async getSubject(call) {
    const subject = call.params.subject!;
    const body = await subjectBody(call, subject);
    const known =
      body.blocked !== null || (body.workflows as unknown[]).length > 0 || (body.sessions as unknown[]).length > 0;
    if (!known && (body.history as unknown[]).length === 0) notFound(`Subject ${subject}`);
    return { body };
  },

  async listBlockedSubjects(call) {
    const limit = call.query.limit as number;
    const after = decodeCursor(call.query.cursor, isString);
    const page = paged(await kyc(call).blocks.list(limit + 1, after), limit, (b) => b.subject);
    return { body: { items: page.items.map(blockView), next_cursor: page.next_cursor } };
  },

  async blockSubject(call) {
    const reason = (call.body as { reason?: string } | null | undefined)?.reason;
    const subject = call.params.subject!;
    const block = await kyc(call).blocks.block(subject, call.principal.actor, reason);
    call.audit({ subject, reason: block.reason });
    return { body: blockView(block) };
  },

  async unblockSubject(call) {
    const subject = call.params.subject!;
    const lifted = await kyc(call).blocks.unblock(subject);
    if (!lifted) refuse(ADMIN_CONFLICT, `Subject ${subject} is not blocked.`);
    call.audit({ subject });
    return { body: await subjectBody(call, subject) };
  },

  async eraseSubject(call) {
    const subject = call.params.subject!;
    const { kyc: service, blocks } = kyc(call);
    const erased = await eraseSubject(service, subject);
    call.audit({ subject, erased });
    return { body: { subject, erased, blocked: (await blocks.find(subject)) !== undefined } };
  },

  async listWebhookEvents(call) {
    const limit = call.query.limit as number;
    const status = call.query.status as InboxStatus | 'all';
    const statuses: InboxStatus[] = status === 'all' ? ['unmatched', 'failed', 'retrying'] : [status];
    const after = decodeCursor(call.query.cursor, isInboxCursor);
    const rows = await inboxEvents(kyc(call).kyc, statuses, limit + 1, after);
    const page = paged(rows, limit, (r) => ({
      received_at: r.received_at,
      provider: r.provider,
      event_id: r.event_id,
    }));
    return {
      body: {
        items: page.items.map((r) => ({ ...r, received_at: iso(r.received_at) })),
        next_cursor: page.next_cursor,
      },
    };
  },

  async replayWebhookEvent(call) {
    const { provider, event_id } = call.params as { provider: string; event_id: string };
    let outcome: string;
    try {
      outcome = await replayEvent(kyc(call).kyc, provider, event_id);
    } catch (err) {
      if (err instanceof ReplayRefused) {
        if (err.reason === 'not_found') notFound(`Webhook event ${provider}/${event_id}`);
        refuse(ADMIN_CONFLICT, err.message);
      }
      const reason = err instanceof ProviderUnavailable ? 'provider_unavailable' : 'error';
      call.audit({ provider, event_id, error: reason }, 'failed');
      return refuse(ADMIN_CONFLICT, `The event could not be applied (${reason}); it stays stored.`);
    }
    call.audit({ provider, event_id, result: outcome });
    return { body: { provider, event_id, outcome } };
  },
};
