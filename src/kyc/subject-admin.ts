/**
 * What operators see and do with a subject and the webhook inbox (the admin API's `subjects` and `webhooks`): a
 * subject's verification state, sessions and history; erasure of its rows; stored webhook events that could not be
 * applied (unknown session, parked after repeated failures, still retrying) and their replay.
 */
import type { KycService } from './service.js';
import { eventContext } from './service.js';
import { SubjectEntry } from './subject-cache.js';
import type { WebhookEvent } from '../providers/provider.js';

export interface SubjectView {
  subject: string;
  status: string;
  claims: Array<{ claim: string; workflow: string; expires_at: number | null }>;
  workflows: Array<{
    workflow: string;
    provider: string;
    state: string;
    provider_status: string;
    claims: string[];
    verified_at: number | null;
    expires_at: number | null;
    session_id: string | null;
    updated_at: number;
  }>;
  sessions: Array<{ provider: string; session_id: string; workflow: string; created_at: number }>;
  history: Array<{ field: string; value: number; at: number }>;
}

const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

/** The subject's state as the gate sees it, plus its sessions and its most recent history (newest first). */
export async function subjectView(
  kyc: KycService,
  subject: string,
  historyLimit = 100,
): Promise<SubjectView | undefined> {
  const store = kyc.records.store;
  const rows = await kyc.records.recordsOf(subject);
  const sessions = await store.query<{ provider: string; session_id: string; workflow: string; created_at: unknown }>(
    'SELECT provider, session_id, workflow, created_at FROM kyc_sessions WHERE subject = $1 ORDER BY created_at DESC',
    [subject],
  );
  const history = await store.query<{ field: string; value: unknown; at: unknown }>(
    'SELECT field, value, at FROM kyc_history WHERE subject = $1 ORDER BY at DESC LIMIT $2',
    [subject, historyLimit],
  );
  if (rows.length === 0 && sessions.length === 0 && history.length === 0) return undefined;
  const updated = await store.query<{ workflow: string; provider: string; updated_at: unknown }>(
    'SELECT workflow, provider, updated_at FROM kyc_verifications WHERE subject = $1',
    [subject],
  );
  const entry = new SubjectEntry(subject, rows, Date.now(), { verifiedMs: 0, unverifiedMs: 0 });
  const claims: SubjectView['claims'] = [];
  const workflows: SubjectView['workflows'] = rows.map((row) => {
    const wf = entry.workflows.get(row.workflow);
    const granted = wf ? [...wf.claims] : [];
    for (const claim of granted) claims.push({ claim, workflow: row.workflow, expires_at: num(row.expires_at) });
    return {
      workflow: row.workflow,
      provider: row.provider,
      state: wf?.state ?? row.state,
      provider_status: row.provider_status,
      claims: granted,
      verified_at: num(row.verified_at),
      expires_at: num(row.expires_at),
      session_id: row.session_id,
      updated_at: Number(updated.find((u) => u.workflow === row.workflow && u.provider === row.provider)?.updated_at),
    };
  });
  return {
    subject,
    status: entry.status,
    claims,
    workflows,
    sessions: sessions.map((s) => ({ ...s, created_at: Number(s.created_at) })),
    history: history.map((h) => ({ field: h.field, value: Number(h.value), at: Number(h.at) })),
  };
}

export interface ErasedCounts {
  verifications: number;
  sessions: number;
  webhook_events: number;
  history: number;
}

/**
 * Deletes every row the store holds about `subject` (verification records with their sealed personal fields,
 * sessions, their webhook events, history, and its data key, which shreds every copy of its sealed data) in one
 * transaction, then drops the cached state on every instance.
 */
export async function eraseSubject(kyc: KycService, subject: string): Promise<ErasedCounts> {
  const counts = await kyc.records.store.transaction(async (tx) => {
    const events = await tx.query(
      'DELETE FROM kyc_webhook_events WHERE EXISTS (SELECT 1 FROM kyc_sessions s WHERE s.subject = $1 AND ' +
        's.provider = kyc_webhook_events.provider AND s.session_id = kyc_webhook_events.session_id) RETURNING event_id',
      [subject],
    );
    const sessions = await tx.query('DELETE FROM kyc_sessions WHERE subject = $1 RETURNING session_id', [subject]);
    const verifications = await tx.query('DELETE FROM kyc_verifications WHERE subject = $1 RETURNING workflow', [
      subject,
    ]);
    const history = await tx.query('DELETE FROM kyc_history WHERE subject = $1 RETURNING field', [subject]);
    // Crypto-shredding: without its data key, any copy of the subject's sealed data made before stays unreadable.
    await tx.query('DELETE FROM kyc_subject_keys WHERE subject = $1', [subject]);
    return {
      verifications: verifications.length,
      sessions: sessions.length,
      webhook_events: events.length,
      history: history.length,
    };
  });
  kyc.invalidate(subject);
  return counts;
}

export type InboxStatus = 'unmatched' | 'failed' | 'retrying';

export interface InboxEntry {
  provider: string;
  event_id: string;
  session_id: string;
  received_at: number;
  attempts: number;
  outcome: string | null;
  status: InboxStatus;
  replayable: boolean;
}

/** Stored events an operator may need to act on, newest first, after the cursor (received_at, provider, event_id). */
export async function inboxEvents(
  kyc: KycService,
  statuses: readonly InboxStatus[],
  limit: number,
  after?: { received_at: number; provider: string; event_id: string },
): Promise<InboxEntry[]> {
  const where: string[] = [];
  if (statuses.includes('unmatched')) where.push("(processed_at IS NULL AND outcome = 'unknown_session')");
  if (statuses.includes('failed')) where.push("outcome = 'failed'");
  if (statuses.includes('retrying')) where.push("(processed_at IS NULL AND (outcome IS NULL OR outcome = 'error'))");
  const params: unknown[] = [limit];
  let cursor = '';
  if (after) {
    params.push(after.received_at, after.provider, after.event_id);
    cursor = ' AND (received_at < $2 OR (received_at = $2 AND (provider > $3 OR (provider = $3 AND event_id > $4))))';
  }
  const rows = await kyc.records.store.query<{
    provider: string;
    event_id: string;
    session_id: string;
    received_at: unknown;
    attempts: unknown;
    outcome: string | null;
    has_payload: unknown;
  }>(
    'SELECT provider, event_id, session_id, received_at, attempts, outcome, ' +
      "CASE WHEN payload = '' THEN 0 ELSE 1 END AS has_payload FROM kyc_webhook_events WHERE (" +
      where.join(' OR ') +
      ')' +
      cursor +
      ' ORDER BY received_at DESC, provider, event_id LIMIT $1',
    params,
  );
  return rows.map((r) => ({
    provider: r.provider,
    event_id: r.event_id,
    session_id: r.session_id,
    received_at: Number(r.received_at),
    attempts: Number(r.attempts),
    outcome: r.outcome,
    status:
      r.outcome === 'failed' ? 'failed' : r.outcome === 'unknown_session' ? 'unmatched' : ('retrying' as InboxStatus),
    replayable: Number(r.has_payload) === 1,
  }));
}

export class ReplayRefused extends Error {
  constructor(
    readonly reason: 'not_found' | 'no_payload' | 'already_applied',
    message: string,
  ) {
    super(message);
  }
}

/**
 * Applies a stored event again: an unmatched one (its session may have been recorded since), a parked one (the cause
 * fixed), or one still retrying (now rather than at the next interval). Returns the outcome (`applied`, `stale`,
 * `unknown_session` ...); a failure is counted like the reconciler's and thrown.
 */
export async function replayEvent(kyc: KycService, provider: string, eventId: string): Promise<string> {
  const row = await kyc.records.event(provider, eventId);
  if (!row) throw new ReplayRefused('not_found', `no stored webhook event ${provider}/${eventId}`);
  if (row.payload === '') {
    throw new ReplayRefused(
      'no_payload',
      row.processed_at === null
        ? `webhook event ${provider}/${eventId} has no stored payload`
        : `webhook event ${provider}/${eventId} was applied; its payload is no longer kept`,
    );
  }
  const event = JSON.parse(kyc.setup.sealer.open(row.payload, eventContext(provider, eventId))) as WebhookEvent;
  try {
    return await kyc.applyEvent(provider, event);
  } catch (err) {
    await kyc.records.markEvent(
      provider,
      eventId,
      row.processed_at === null ? 'error' : 'failed',
      row.processed_at,
      true,
    );
    throw err;
  }
}
