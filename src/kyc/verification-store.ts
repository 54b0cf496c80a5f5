/**
 * Durable KYC state in the shared store: one verification record per subject, provider and workflow; the
 * sessions created for them; the webhook inbox; and the per-subject history that rules aggregate. Every write
 * that could race between instances is a single conditional statement, so correctness does not depend on which
 * instance gets there first.
 */
import type { Store } from '../store/store.js';
import type { VerificationState } from '../providers/provider.js';
import { KYC_MIGRATIONS } from './migrations.js';

export interface RecordKey {
  subject: string;
  provider: string;
  workflow: string;
}

export interface VerificationRow {
  subject: string;
  provider: string;
  workflow: string;
  workflow_id: string;
  session_id: string | null;
  session_url: string | null;
  session_started_at: number | null;
  lease_owner: string | null;
  lease_until: number;
  provider_status: string;
  state: VerificationState;
  /** Space-separated claim names. */
  claims: string;
  status_seq: number;
  verified_at: number | null;
  expires_at: number | null;
  personal: string | null;
  key_id: string | null;
}

export interface StatusUpdate {
  sessionId: string;
  providerStatus: string;
  state: VerificationState;
  claims: string;
  seq: number;
  verifiedAt: number | null;
  expiresAt: number | null;
  personal: string | null;
  keyId: string | null;
  /** The session can no longer be used: forget its link. */
  sessionFinished: boolean;
}

export interface InboxEvent {
  provider: string;
  event_id: string;
  session_id: string;
  payload: string;
  attempts: number;
}

/** Orders statuses reported within the same second: a later stage wins a tie. */
const STATE_RANK: Record<VerificationState, number> = {
  unverified: 0,
  pending: 1,
  in_review: 2,
  approved: 3,
  declined: 3,
  expired: 4,
};

/** A total order of one session's events: the signed timestamp, then the stage. */
export function eventSeq(timestampSeconds: number, state: VerificationState): number {
  return Math.floor(timestampSeconds) * 16 + STATE_RANK[state];
}

const ROW_COLUMNS =
  'subject, provider, workflow, workflow_id, session_id, session_url, session_started_at, lease_owner, ' +
  'lease_until, provider_status, state, claims, status_seq, verified_at, expires_at, personal, key_id';

export class VerificationStore {
  constructor(readonly store: Store) {}

  migrate(): Promise<void> {
    return this.store.migrate('kyc', KYC_MIGRATIONS);
  }

  async recordsOf(subject: string): Promise<VerificationRow[]> {
    return this.store.query<VerificationRow>(`SELECT ${ROW_COLUMNS} FROM kyc_verifications WHERE subject = $1`, [
      subject,
    ]);
  }

  async record(key: RecordKey): Promise<VerificationRow | undefined> {
    const rows = await this.store.query<VerificationRow>(
      `SELECT ${ROW_COLUMNS} FROM kyc_verifications WHERE subject = $1 AND provider = $2 AND workflow = $3`,
      [key.subject, key.provider, key.workflow],
    );
    return rows[0];
  }

  /**
   * Takes the right to create a session for `key`, unless another instance holds it or a reusable session
   * (unfinished, with its link still known, started after `reusableSince`) exists. A session that went back to
   * pending after a finished status (a resubmission) has lost its link, so it is not reusable and a new one is
   * created. Owners are `<instance>:<attempt>`: a lease this instance (`instance`) left behind, an attempt that
   * failed before it could release it, is taken over at once, since the instance runs one attempt per subject at a
   * time; another instance's lease only after it expired. True when this owner holds the lease now.
   */
  async acquireSessionLease(
    key: RecordKey,
    workflowId: string,
    owner: string,
    now: number,
    leaseMs: number,
    reusableSince: number,
    instance: string,
  ): Promise<boolean> {
    const rows = await this.store.query<{ lease_owner: string }>(
      `INSERT INTO kyc_verifications (subject, provider, workflow, workflow_id, lease_owner, lease_until, created_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
       ON CONFLICT (subject, provider, workflow) DO UPDATE SET lease_owner = $5, lease_until = $6, workflow_id = $4, updated_at = $7
       WHERE (kyc_verifications.lease_until < $7 OR kyc_verifications.lease_owner LIKE $9)
         AND NOT (kyc_verifications.session_id IS NOT NULL AND kyc_verifications.session_url IS NOT NULL
                  AND kyc_verifications.state IN ('unverified', 'pending') AND kyc_verifications.session_started_at > $8)
       RETURNING lease_owner`,
      [key.subject, key.provider, key.workflow, workflowId, owner, now + leaseMs, now, reusableSince, `${instance}:%`],
    );
    return rows.length === 1 && rows[0]!.lease_owner === owner;
  }

  async releaseSessionLease(key: RecordKey, owner: string): Promise<void> {
    await this.store.query(
      'UPDATE kyc_verifications SET lease_owner = NULL, lease_until = 0 WHERE subject = $1 AND provider = $2 AND workflow = $3 AND lease_owner = $4',
      [key.subject, key.provider, key.workflow, owner],
    );
  }

  /**
   * Stores a session this owner created (the lease ends) and starts a fresh status history for it. `startedAt`:
   * when the provider created it, if earlier than `now` (a session recorded late, after a store failure).
   */
  async recordSession(
    key: RecordKey,
    owner: string,
    session: { sessionId: string; sealedUrl: string; status: string; state: VerificationState },
    now: number,
    startedAt = now,
  ): Promise<void> {
    await this.store.transaction(async (tx) => {
      await tx.query(
        `UPDATE kyc_verifications SET session_id = $5, session_url = $6, session_started_at = $7, provider_status = $8, state = $9, claims = '',
           status_seq = 0, verified_at = NULL, expires_at = NULL, personal = NULL, key_id = NULL, lease_owner = NULL, lease_until = 0, updated_at = $10
         WHERE subject = $1 AND provider = $2 AND workflow = $3 AND lease_owner = $4`,
        [
          key.subject,
          key.provider,
          key.workflow,
          owner,
          session.sessionId,
          session.sealedUrl,
          startedAt,
          session.status,
          session.state,
          now,
        ],
      );
      await tx.query(
        'INSERT INTO kyc_sessions (provider, session_id, subject, workflow, created_at) VALUES ($1, $2, $3, ' +
          '$4, $5) ON CONFLICT (provider, session_id) DO NOTHING',
        [key.provider, session.sessionId, key.subject, key.workflow, startedAt],
      );
    });
  }

  async sessionOwner(provider: string, sessionId: string): Promise<RecordKey | undefined> {
    const rows = await this.store.query<{ subject: string; workflow: string }>(
      'SELECT subject, workflow FROM kyc_sessions WHERE provider = $1 AND session_id = $2',
      [provider, sessionId],
    );
    const row = rows[0];
    return row ? { subject: row.subject, provider, workflow: row.workflow } : undefined;
  }

  /**
   * Applies a status of the record's current session when it is newer than the one stored. Events of older
   * sessions and older events never overwrite. True when the record changed.
   */
  async applyStatus(key: RecordKey, u: StatusUpdate, now: number): Promise<boolean> {
    const rows = await this.store.query(
      `UPDATE kyc_verifications SET provider_status = $5, state = $6, claims = $7, status_seq = $8, verified_at = $9,
         expires_at = $10, personal = $11, key_id = $12,
         session_url = CASE WHEN $13 = 1 THEN NULL ELSE session_url END, updated_at = $14
       WHERE subject = $1 AND provider = $2 AND workflow = $3 AND session_id = $4 AND status_seq < $8
       RETURNING subject`,
      [
        key.subject,
        key.provider,
        key.workflow,
        u.sessionId,
        u.providerStatus,
        u.state,
        u.claims,
        u.seq,
        u.verifiedAt,
        u.expiresAt,
        u.personal,
        u.keyId,
        u.sessionFinished ? 1 : 0,
        now,
      ],
    );
    return rows.length === 1;
  }

  /** Persists a verified webhook event; false when this event id was already received. */
  async insertEvent(
    provider: string,
    eventId: string,
    sessionId: string,
    seq: number,
    sealedPayload: string,
    keyId: string,
    now: number,
  ): Promise<boolean> {
    const rows = await this.store.query(
      `INSERT INTO kyc_webhook_events (provider, event_id, session_id, event_seq, received_at, payload, key_id)
       VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (provider, event_id) DO NOTHING RETURNING event_id`,
      [provider, eventId, sessionId, seq, now, sealedPayload, keyId],
    );
    return rows.length === 1;
  }

  async event(provider: string, eventId: string): Promise<(InboxEvent & { processed_at: number | null }) | undefined> {
    const rows = await this.store.query<InboxEvent & { processed_at: number | null }>(
      'SELECT provider, event_id, session_id, payload, attempts, processed_at FROM kyc_webhook_events WHERE provider = $1 AND event_id = $2',
      [provider, eventId],
    );
    return rows[0];
  }

  async markEvent(
    provider: string,
    eventId: string,
    outcome: string,
    processedAt: number | null,
    keepPayload = false,
  ): Promise<void> {
    // Once applied, the sealed payload (which may hold personal data) is no longer needed: keep only the outcome.
    // A parked event keeps it (`keepPayload`), so that an operator can replay it.
    await this.store.query(
      "UPDATE kyc_webhook_events SET outcome = $3, processed_at = $4, payload = CASE WHEN $5 = 1 THEN '' " +
        'ELSE payload END, attempts = attempts + 1 WHERE provider = $1 AND event_id = $2',
      [provider, eventId, outcome, processedAt, processedAt === null || keepPayload ? 0 : 1],
    );
  }

  /**
   * Events received but not applied yet (crash before processing, provider down, unknown session). The session's
   * own events come oldest first; the whole inbox comes least-tried first, then oldest, so events that keep
   * failing never hold back newer ones.
   */
  async pendingEvents(limit: number, sessionId?: { provider: string; sessionId: string }): Promise<InboxEvent[]> {
    if (sessionId) {
      return this.store.query<InboxEvent>(
        'SELECT provider, event_id, session_id, payload, attempts FROM kyc_webhook_events WHERE provider = ' +
          '$1 AND session_id = $2 AND processed_at IS NULL ORDER BY event_seq LIMIT $3',
        [sessionId.provider, sessionId.sessionId, limit],
      );
    }
    // Events for unknown sessions are retried for an hour (the session may be recorded late), then left to an operator.
    return this.store.query<InboxEvent>(
      'SELECT provider, event_id, session_id, payload, attempts FROM kyc_webhook_events WHERE processed_at ' +
        "IS NULL AND (outcome IS NULL OR outcome <> 'unknown_session' OR received_at > $2) ORDER BY " +
        'attempts, event_seq LIMIT $1',
      [limit, Date.now() - 3_600_000],
    );
  }

  /** Events kept because their session is unknown, newest first: for an operator to reconcile. */
  async unmatchedEvents(
    limit: number,
  ): Promise<Array<{ provider: string; event_id: string; session_id: string; received_at: number; attempts: number }>> {
    return this.store.query(
      'SELECT provider, event_id, session_id, received_at, attempts FROM kyc_webhook_events WHERE ' +
        "processed_at IS NULL AND outcome = 'unknown_session' ORDER BY received_at DESC LIMIT $1",
      [limit],
    );
  }

  /** Deletes what the retention periods no longer allow (cut-offs in epoch ms; undefined keeps). Row counts. */
  async enforceRetention(cutoffs: {
    history?: number | undefined;
    sessions?: number | undefined;
    webhookEvents?: number | undefined;
  }): Promise<{ history: number; sessions: number; webhook_events: number }> {
    const history =
      cutoffs.history === undefined
        ? []
        : await this.store.query('DELETE FROM kyc_history WHERE at < $1 RETURNING field', [cutoffs.history]);
    const sessions =
      cutoffs.sessions === undefined
        ? []
        : await this.store.query(
            'DELETE FROM kyc_sessions WHERE created_at < $1 AND NOT EXISTS (SELECT 1 FROM kyc_verifications v WHERE ' +
              'v.provider = kyc_sessions.provider AND v.session_id = kyc_sessions.session_id) RETURNING session_id',
            [cutoffs.sessions],
          );
    const events =
      cutoffs.webhookEvents === undefined
        ? []
        : await this.store.query(
            'DELETE FROM kyc_webhook_events WHERE processed_at IS NOT NULL AND processed_at < $1 RETURNING event_id',
            [cutoffs.webhookEvents],
          );
    return { history: history.length, sessions: sessions.length, webhook_events: events.length };
  }

  async recordHistory(subject: string, field: string, value: number, at: number): Promise<void> {
    await this.store.query('INSERT INTO kyc_history (subject, field, value, at) VALUES ($1, $2, $3, $4)', [
      subject,
      field,
      value,
      at,
    ]);
  }

  async historySum(subject: string, field: string, since: number): Promise<number> {
    const rows = await this.store.query<{ total: number | null }>(
      'SELECT SUM(value) AS total FROM kyc_history WHERE subject = $1 AND field = $2 AND at > $3',
      [subject, field, since],
    );
    return Number(rows[0]?.total ?? 0);
  }

  async historyCount(subject: string, field: string, since: number): Promise<number> {
    const rows = await this.store.query<{ n: number }>(
      'SELECT COUNT(*) AS n FROM kyc_history WHERE subject = $1 AND field = $2 AND at > $3',
      [subject, field, since],
    );
    return Number(rows[0]?.n ?? 0);
  }
}
