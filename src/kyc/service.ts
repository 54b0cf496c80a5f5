/**
 * The `kyc` service: what the kyc-gate and kyc-webhook policies use. It owns the subject cache, the session
 * single-flight (in process, plus a lease row in the store so two instances never both create a session for
 * one subject), the webhook inbox (persisted before it is acknowledged, applied idempotently, retried until it
 * applies), cross-instance invalidation over Redis, and the signed upstream assertion.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { EventBus } from '../pipeline/events.js';
import type { Invalidations } from '../shared/invalidation.js';
import {
  ProviderRejected,
  ProviderUnavailable,
  type VerificationResult,
  type VerificationState,
  type WebhookEvent,
} from '../providers/provider.js';
import { documentExpiryMs, storedClaims } from './claims.js';
import { SUBJECT_KEY_ID, subjectSealer } from './subject-keys.js';
import { reencryptAll, type Reencrypted } from './reencrypt.js';
import type { CompiledWorkflow, KycSetup } from './setup.js';
import { SubjectCache, type SubjectEntry } from './subject-cache.js';
import { VerificationSessions, sessionUrlContext, type SessionOffer } from './sessions.js';
import { type VerificationStore, eventSeq, type RecordKey, type InboxEvent } from './verification-store.js';
import { isDeepStrictEqual } from 'node:util';
import type { StalePolicy } from '../store/outage.js';
import type { RoutingInput } from './routing.js';

const INVALIDATION_CHANNEL = 'kyc:invalidate';
/** Statuses after which a session's link is useless and is forgotten. */
const FINISHED_STATES: ReadonlySet<VerificationState> = new Set(['approved', 'declined', 'expired']);
/** Failed applications (other than an unavailable provider) after which a stored webhook event is parked. */
export const MAX_EVENT_ATTEMPTS = 10;

export class KycService {
  readonly records: VerificationStore;
  readonly cache: SubjectCache;
  /** Identifies this process in session leases. */
  readonly instanceId = randomUUID();
  /**
   * The clock expiry is judged by (ms). Every instance judges a claim's expiry from the stored decision time with its
   * own clock, so all of them challenge the user at the same instant without telling each other. Tests set it.
   */
  now: () => number = Date.now;
  private setupValue: KycSetup;
  private readonly sessions: VerificationSessions;
  private readonly logger: Logger;
  private readonly events: EventBus;
  private readonly redis: Invalidations | undefined;
  private unsubscribe: (() => void) | undefined;
  private reconcileTimer: NodeJS.Timeout | undefined;
  private retentionTimer: NodeJS.Timeout | undefined;
  private reconciling: Promise<void> | undefined;
  private closed = false;

  constructor(
    setup: KycSetup,
    records: VerificationStore,
    deps: { logger: Logger; events: EventBus; redis: Invalidations | undefined; stale?: StalePolicy | undefined },
  ) {
    this.setupValue = setup;
    this.records = records;
    this.logger = deps.logger;
    this.events = deps.events;
    this.redis = deps.redis;
    const cache = setup.config.cache;
    this.cache = new SubjectCache(
      (subject) => records.recordsOf(subject),
      { verifiedMs: cache.ttl_seconds * 1000, unverifiedMs: cache.unverified_ttl_seconds * 1000 },
      cache.max_entries,
      deps.stale,
      () => this.now(),
    );
    if (this.redis)
      this.unsubscribe = this.redis.subscribe(INVALIDATION_CHANNEL, (subject) => this.cache.invalidate(subject));
    this.sessions = new VerificationSessions({
      records,
      setup: () => this.setupValue,
      instanceId: this.instanceId,
      logger: this.logger,
      events: this.events,
      invalidate: (subject) => this.invalidate(subject),
      drainSession: (provider, sessionId) => this.drainSession(provider, sessionId),
    });
    this.scheduleReconcile();
    this.scheduleRetention();
    this.reencryptInBackground();
  }

  get setup(): KycSetup {
    return this.setupValue;
  }

  /** Applies a reloaded config; returns the setup it replaced. */
  replaceSetup(next: KycSetup): KycSetup {
    const old = this.setupValue;
    this.setupValue = next;
    // Cached entries stay valid across a reload unless what they were built with changed: their lifetimes, or the
    // signed assertions they carry (settings or key). Claims live in the store's rows, not in the mapping.
    const c = next.config.cache;
    const keep =
      isDeepStrictEqual(old.config.cache, c) &&
      isDeepStrictEqual(old.config.assertion, next.config.assertion) &&
      old.signer.jwksBody === next.signer.jwksBody;
    if (!keep)
      this.cache.configure(
        { verifiedMs: c.ttl_seconds * 1000, unverifiedMs: c.unverified_ttl_seconds * 1000 },
        c.max_entries,
      );
    if (old.config.reconcile_interval_seconds !== next.config.reconcile_interval_seconds) this.scheduleReconcile();
    if (!isDeepStrictEqual(old.config.retention, next.config.retention)) this.scheduleRetention();
    if (old.sealer.currentKeyId !== next.sealer.currentKeyId) this.reencryptInBackground();
    return old;
  }

  pseudonymise(namespace: string, rawId: string): string {
    return this.setupValue.pseudonymiser.pseudonymise(namespace, rawId);
  }

  workflow(name: string): CompiledWorkflow | undefined {
    return this.setupValue.workflows.get(name);
  }

  /** The subject's verification state: synchronous when cached. */
  subject(subject: string, now: number): SubjectEntry | Promise<SubjectEntry> {
    return this.cache.get(subject, now);
  }

  /** Drops the subject's cached state here and, with Redis, on every instance. */
  invalidate(subject: string): void {
    this.cache.invalidate(subject);
    if (this.redis) void this.redis.publish(INVALIDATION_CHANNEL, subject);
  }

  // ---------------------------------------------------------------------------------------------------------
  // Sessions

  /**
   * Offers the subject a verification session for `workflow`: the unfinished one if it exists, else a new one
   * (kyc/sessions.ts: one provider session per subject across instances, kept through store failures).
   */
  offerSession(subject: string, workflow: CompiledWorkflow, request?: RoutingInput): Promise<SessionOffer> {
    return this.sessions.offer(subject, workflow, request);
  }

  /** False while the provider's breaker is open: its unfinished sessions are not offered, a fallback is. */
  providerAvailable(name: string): boolean {
    return this.setupValue.providers.get(name)?.health.state !== 'open';
  }

  /** Provider sessions waiting to be recorded (created while the store failed). */
  get unrecordedSessions(): number {
    return this.sessions.unrecordedCount;
  }

  /** Records every provider session kept through a store failure (also run when the store answers again). */
  flushUnrecorded(): Promise<void> {
    return this.sessions.flushUnrecorded();
  }

  // ---------------------------------------------------------------------------------------------------------
  // Webhooks

  /**
   * Persists a verified webhook event (durably, before the caller acknowledges it) and applies it in the
   * background. Returns `duplicate` when this event id was already applied.
   */
  async acceptWebhook(providerName: string, event: WebhookEvent): Promise<'accepted' | 'duplicate'> {
    const setup = this.setupValue;
    const payload = setup.sealer.seal(JSON.stringify(event), eventContext(providerName, event.eventId));
    const seq = eventSeq(event.createdAt ?? event.timestamp, event.state);
    const inserted = await this.records.insertEvent(
      providerName,
      event.eventId,
      event.sessionId,
      seq,
      payload,
      setup.sealer.currentKeyId,
      Date.now(),
    );
    if (!inserted) {
      const existing = await this.records.event(providerName, event.eventId);
      if (existing?.processed_at !== null && existing?.processed_at !== undefined) return 'duplicate';
    }
    void this.applyEvent(providerName, event).catch((err: unknown) =>
      this.logger.warn(
        { err, provider: providerName, event_id: event.eventId },
        'webhook event not applied yet; will retry',
      ),
    );
    return 'accepted';
  }

  /** Applies one event to the verification record; idempotent, and an older event never overwrites a newer one. */
  async applyEvent(providerName: string, event: WebhookEvent): Promise<string> {
    const setup = this.setupValue;
    const owner = await this.records.sessionOwner(providerName, event.sessionId);
    if (!owner) {
      // Kept for reconciliation: the session may be recorded a moment later, or be an operator's to look at.
      await this.records.markEvent(providerName, event.eventId, 'unknown_session', null);
      this.events.emit({
        type: 'webhook.unmatched',
        outcome: 'unknown_session',
        data: { provider: providerName, event_id: event.eventId, session_id: event.sessionId },
      });
      return 'unknown_session';
    }
    const workflow = setup.workflows.get(owner.workflow);
    if (!workflow) {
      await this.records.markEvent(providerName, event.eventId, 'unknown_workflow', Date.now());
      return 'unknown_workflow';
    }
    const at = (event.createdAt ?? event.timestamp) * 1000;
    let claims = '';
    let verifiedAt: number | null = null;
    let expiresAt: number | null = null;
    let personal: string | null = null;
    let keyId: string | null = null;
    if (event.state === 'approved') {
      let decision: VerificationResult | undefined = event.decision;
      if (decision === undefined) {
        const provider = setup.providers.get(providerName);
        if (!provider) throw new ProviderUnavailable(`provider ${providerName} is not configured`, 30, 'unreachable');
        // Only the status was authenticated (or the event carried no decision): ask the provider for the facts.
        decision = await provider.fetchDecision(event.sessionId);
      }
      if (decision.state === 'approved') claims = storedClaims(workflow.claimRules, decision, at);
      verifiedAt = at;
      expiresAt = at + workflow.maxAgeMs;
      const documentExpiry = workflow.expireWithDocument ? documentExpiryMs(decision.facts) : undefined;
      if (documentExpiry !== undefined) expiresAt = Math.min(expiresAt, documentExpiry);
      const kept = retainedPersonal(decision, workflow.retainPersonal);
      if (kept !== undefined) {
        // Sealed under the subject's own data key: erasing the subject destroys it (crypto-shredding).
        const sealer = await subjectSealer(this.records.store, setup.sealer, owner.subject, Date.now());
        personal = sealer.seal(kept, personalContext(owner));
        keyId = SUBJECT_KEY_ID;
      }
    }
    const changed = await this.records.applyStatus(
      owner,
      {
        sessionId: event.sessionId,
        providerStatus: event.status,
        state: event.state,
        claims,
        seq: eventSeq(event.createdAt ?? event.timestamp, event.state),
        verifiedAt,
        expiresAt,
        personal,
        keyId,
        sessionFinished: FINISHED_STATES.has(event.state),
      },
      Date.now(),
    );
    if (changed) {
      // Every instance drops the subject before anything else happens: the gate sees the change at once.
      this.invalidate(owner.subject);
      this.events.emit({
        type: 'kyc.status.changed',
        outcome: event.state,
        data: {
          subject: owner.subject,
          provider: providerName,
          workflow: owner.workflow,
          status: event.status,
          claims: claims === '' ? [] : claims.split(' ').map((c) => c.split('@')[0]!),
        },
      });
    }
    await this.records.markEvent(providerName, event.eventId, changed ? 'applied' : 'stale', Date.now());
    return changed ? 'applied' : 'stale';
  }

  private async drainSession(provider: string, sessionId: string): Promise<void> {
    try {
      for (const row of await this.records.pendingEvents(50, { provider, sessionId })) await this.applyStored(row);
    } catch (err) {
      this.logger.warn({ err, provider }, 'early webhook events not applied yet; will retry');
    }
  }

  private async applyStored(row: InboxEvent): Promise<void> {
    const event = JSON.parse(
      this.setupValue.sealer.open(row.payload, eventContext(row.provider, row.event_id)),
    ) as WebhookEvent;
    await this.applyEvent(row.provider, event);
  }

  /** Applies every stored event not applied yet (after a crash, a provider outage, an early webhook). */
  reconcile(): Promise<void> {
    this.reconciling ??= (async () => {
      try {
        for (const row of await this.records.pendingEvents(200)) {
          if (this.closed) return;
          await this.applyStored(row).catch((err: unknown) => this.storedEventFailed(row, err));
        }
      } catch (err) {
        this.logger.warn({ err }, 'webhook reconciliation failed; will retry');
      } finally {
        this.reconciling = undefined;
      }
    })();
    return this.reconciling;
  }

  /**
   * Counts a failed application of a stored event. An unavailable provider is waited out without counting; any
   * other failure is counted, and after MAX_EVENT_ATTEMPTS the event is parked (outcome `failed`) so it is not
   * retried for ever.
   */
  private async storedEventFailed(row: InboxEvent, err: unknown): Promise<void> {
    if (err instanceof ProviderUnavailable) return;
    const attempts = Number(row.attempts) + 1;
    const log = {
      err: err instanceof ProviderRejected ? { message: err.message, status: err.status } : err,
      provider: row.provider,
      event_id: row.event_id,
      attempts,
    };
    try {
      if (attempts >= MAX_EVENT_ATTEMPTS) {
        await this.records.markEvent(row.provider, row.event_id, 'failed', Date.now(), true);
        this.logger.error(log, 'webhook event could not be applied; given up');
      } else {
        await this.records.markEvent(row.provider, row.event_id, 'error', null);
        this.logger.warn(log, 'webhook event not applied; will retry');
      }
    } catch (markErr) {
      this.logger.warn(
        { err: markErr, provider: row.provider, event_id: row.event_id },
        'webhook event failure not recorded',
      );
    }
  }

  /**
   * Seals every value still under an older `kyc.encryption_keys` key again under the current one (run at start and
   * when a reload puts a new key first); afterwards the old key can be removed.
   */
  async reencrypt(): Promise<Reencrypted> {
    const done = await reencryptAll(this.records, this.setupValue.sealer);
    if (done.subject_keys + done.session_links + done.personal + done.webhook_events > 0)
      this.events.emit({ type: 'kyc.reencrypted', outcome: this.setupValue.sealer.currentKeyId, data: { ...done } });
    return done;
  }

  private reencryptInBackground(): void {
    void this.reencrypt().catch((err: unknown) =>
      this.logger.warn(
        { err },
        'kyc re-encryption under the current key not finished; runs again at the next start or key change',
      ),
    );
  }

  /** Deletes what the retention periods no longer allow (the scheduled job; also callable). */
  async enforceRetention(now = this.now()): Promise<{ history: number; sessions: number; webhook_events: number }> {
    const r = this.setupValue.config.retention ?? { interval_seconds: 3600 };
    const cutoff = (days: number | undefined) => (days === undefined ? undefined : now - days * 86_400_000);
    const removed = await this.records.enforceRetention({
      history: cutoff(r.history_days),
      sessions: cutoff(r.sessions_days),
      webhookEvents: cutoff(r.webhook_events_days),
    });
    if (removed.history + removed.sessions + removed.webhook_events > 0)
      this.events.emit({ type: 'kyc.retention.enforced', outcome: 'deleted', data: { ...removed } });
    return removed;
  }

  private scheduleRetention(): void {
    if (this.retentionTimer) clearInterval(this.retentionTimer);
    const r = this.setupValue.config.retention;
    if (!r || (r.history_days ?? r.sessions_days ?? r.webhook_events_days) === undefined) return;
    this.retentionTimer = setInterval(
      () =>
        void this.enforceRetention().catch((err: unknown) =>
          this.logger.warn({ err }, 'kyc retention job failed; will retry'),
        ),
      r.interval_seconds * 1000,
    );
    this.retentionTimer.unref();
  }

  private scheduleReconcile(): void {
    if (this.reconcileTimer) clearInterval(this.reconcileTimer);
    this.reconcileTimer = setInterval(
      () => void this.reconcile(),
      this.setupValue.config.reconcile_interval_seconds * 1000,
    );
    this.reconcileTimer.unref();
  }

  // ---------------------------------------------------------------------------------------------------------
  // Upstream assertion and history

  /** The signed assertion for `entry` and `audience`: cached, so most calls return a string synchronously. */
  assertion(entry: SubjectEntry, audience: string, now: number): string | Promise<string> {
    const cached = entry.assertionFor(audience, now);
    if (cached !== undefined) return cached;
    const setup = this.setupValue;
    const wf = [...entry.workflows.values()].find((w) => w.state === 'approved');
    return setup.signer
      .sign(
        {
          subject: entry.subject,
          audience,
          status: entry.status,
          claims: entry.claimList,
          verifiedAt: wf?.verifiedAt ?? null,
          level: this.levelOf(entry.claims),
        },
        Math.floor(now / 1000),
      )
      .then((token) => {
        entry.keepAssertion(audience, token, now + setup.config.assertion.cache_seconds * 1000);
        return token;
      });
  }

  /** The highest assurance level `claims` reach (levels are cumulative: each needs the ones below), if any. */
  levelOf(claims: ReadonlySet<string>): string | undefined {
    let reached: string | undefined;
    for (const level of this.setupValue.config.assurance_levels ?? []) {
      if (!level.claims.every((c) => claims.has(c))) break;
      reached = level.name;
    }
    return reached;
  }

  /** Opens the sealed link of an unfinished session (cached state), for a challenge without a store query. */
  sessionUrl(provider: string, sessionId: string, sealed: string): string {
    return this.setupValue.sealer.open(sealed, sessionUrlContext(provider, sessionId));
  }

  recordHistory(subject: string, field: string, value: number): void {
    void this.records
      .recordHistory(subject, field, value, Date.now())
      .catch((err: unknown) => this.logger.warn({ err }, 'kyc history not recorded'));
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.reconcileTimer) clearInterval(this.reconcileTimer);
    if (this.retentionTimer) clearInterval(this.retentionTimer);
    await this.sessions.close();
    this.unsubscribe?.();
    await this.reconciling?.catch(() => undefined);
  }
}

/** Associated data of a stored webhook event's sealed payload. */
export function eventContext(provider: string, eventId: string): string {
  return `webhook-event:${provider}:${eventId}`;
}

function personalContext(key: RecordKey): string {
  return `personal:${key.subject}:${key.provider}:${key.workflow}`;
}

function retainedPersonal(decision: VerificationResult, keep: readonly string[]): string | undefined {
  if (keep.length === 0) return undefined;
  const out: Record<string, string> = {};
  const p = decision.personal;
  if (keep.includes('first_name') && p.firstName !== undefined) out.first_name = p.firstName;
  if (keep.includes('last_name') && p.lastName !== undefined) out.last_name = p.lastName;
  if (keep.includes('date_of_birth') && p.dateOfBirth !== undefined) out.date_of_birth = p.dateOfBirth;
  return Object.keys(out).length > 0 ? JSON.stringify(out) : undefined;
}
