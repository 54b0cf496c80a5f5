/**
 * The `kyc` service: what the kyc-gate and kyc-webhook policies use. It owns the subject cache, the session
 * single-flight (in process, plus a lease row in the store so two instances never both create a session for
 * one subject), the webhook inbox (persisted before it is acknowledged, applied idempotently, retried until it
 * applies), cross-instance invalidation over Redis, and the signed upstream assertion.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { EventBus } from '../pipeline/events.js';
import type { RedisService } from '../shared/redis.js';
import { ProviderRejected, ProviderUnavailable, type ProviderDecision, type VerificationState, type WebhookEvent } from '../providers/provider.js';
import { grantedClaims } from './claims.js';
import type { CompiledWorkflow, KycSetup } from './setup.js';
import { SubjectCache, type SubjectEntry } from './subject-cache.js';
import { VerificationStore, eventSeq, type RecordKey, type InboxEvent } from './verification-store.js';
import { isDeepStrictEqual } from 'node:util';
import type { StalePolicy } from '../store/outage.js';

export interface SessionOffer {
  sessionId: string;
  url: string;
  /** True when this call created it at the provider. */
  created: boolean;
}

const INVALIDATION_CHANNEL = 'kyc:invalidate';
/** Statuses after which a session's link is useless and is forgotten. */
const FINISHED_STATES: ReadonlySet<VerificationState> = new Set(['approved', 'declined', 'expired']);
/** Provider sessions kept in memory at most while the store cannot record them. */
const MAX_UNRECORDED_SESSIONS = 10_000;
/** How often kept provider sessions are tried again while the store answers (its recovery also triggers it). */
const FLUSH_INTERVAL_MS = 1000;

/** A provider session created while the store failed, until it is recorded. */
interface UnrecordedSession {
  key: RecordKey;
  workflowId: string;
  sessionId: string;
  /** The link, for offering it again (in memory only; the store keeps it sealed). */
  url: string;
  sealedUrl: string;
  status: string;
  state: VerificationState;
  createdAt: number;
}

/** Failed applications (other than an unavailable provider) after which a stored webhook event is parked. */
export const MAX_EVENT_ATTEMPTS = 10;

export class KycService {
  readonly records: VerificationStore;
  readonly cache: SubjectCache;
  /** Identifies this process in session leases. */
  readonly instanceId = randomUUID();
  private setupValue: KycSetup;
  private readonly sessionsInFlight = new Map<string, Promise<SessionOffer>>();
  private readonly logger: Logger;
  private readonly events: EventBus;
  private readonly redis: RedisService | undefined;
  private unsubscribe: (() => void) | undefined;
  private reconcileTimer: NodeJS.Timeout | undefined;
  private reconciling: Promise<void> | undefined;
  private closed = false;
  /**
   * Provider sessions created whose record could not be written (the store failed after the provider answered),
   * by subject and workflow: offered on the subject's next attempt and recorded as soon as the store answers, so
   * that a store failure never leaves a second provider session behind.
   */
  private readonly unrecorded = new Map<string, UnrecordedSession>();
  private flushTimer: NodeJS.Timeout | undefined;
  private readonly stopWatchingStore: () => void;

  constructor(setup: KycSetup, records: VerificationStore, deps: { logger: Logger; events: EventBus; redis: RedisService | undefined; stale?: StalePolicy | undefined }) {
    this.setupValue = setup;
    this.records = records;
    this.logger = deps.logger;
    this.events = deps.events;
    this.redis = deps.redis;
    const cache = setup.config.cache;
    this.cache = new SubjectCache((subject) => records.recordsOf(subject), { verifiedMs: cache.ttl_seconds * 1000, unverifiedMs: cache.unverified_ttl_seconds * 1000 }, cache.max_entries, deps.stale);
    if (this.redis) this.unsubscribe = this.redis.subscribe(INVALIDATION_CHANNEL, (subject) => this.cache.invalidate(subject));
    this.stopWatchingStore = records.store.availability.onChange((up) => {
      if (up && this.unrecorded.size > 0) void this.flushUnrecorded();
    });
    this.scheduleReconcile();
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
    const keep = isDeepStrictEqual(old.config.cache, c) && isDeepStrictEqual(old.config.assertion, next.config.assertion) && old.signer.jwksBody === next.signer.jwksBody;
    if (!keep) this.cache.configure({ verifiedMs: c.ttl_seconds * 1000, unverifiedMs: c.unverified_ttl_seconds * 1000 }, c.max_entries);
    if (old.config.reconcile_interval_seconds !== next.config.reconcile_interval_seconds) this.scheduleReconcile();
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
   * Offers the subject a verification session for `workflow`: the unfinished one if it exists, else a new one.
   * Concurrent callers for one subject share one attempt here, and instances take turns through a lease row, so
   * a burst of first requests creates exactly one provider session. Throws ProviderUnavailable, and
   * StoreUnavailable when the store fails (the provider session, if one was created, is kept: see `unrecorded`).
   */
  offerSession(subject: string, workflow: CompiledWorkflow): Promise<SessionOffer> {
    const key = subject + '\u0000' + workflow.name;
    let pending = this.sessionsInFlight.get(key);
    if (pending === undefined) {
      pending = this.obtainSession(subject, workflow).finally(() => this.sessionsInFlight.delete(key));
      this.sessionsInFlight.set(key, pending);
    }
    return pending;
  }

  private async obtainSession(subject: string, workflow: CompiledWorkflow): Promise<SessionOffer> {
    const setup = this.setupValue;
    const kept = this.unrecorded.get(subject + '\u0000' + workflow.name);
    if (kept !== undefined) {
      const offer = await this.offerKept(kept);
      if (offer !== undefined) return offer;
    }
    const provider = setup.providers.get(workflow.provider);
    if (!provider) throw new ProviderUnavailable(`provider ${workflow.provider} is not configured`, 30, 'unreachable');
    const key: RecordKey = { subject, provider: workflow.provider, workflow: workflow.name };
    const leaseMs = setup.config.session_lease_ms;
    const giveUpAt = Date.now() + leaseMs + 1000;
    for (;;) {
      const now = Date.now();
      const owner = `${this.instanceId}:${randomUUID()}`;
      if (await this.records.acquireSessionLease(key, workflow.workflowId, owner, now, leaseMs, now - workflow.sessionReuseMs, this.instanceId)) {
        let session;
        try {
          session = await provider.createSession({
            workflowId: workflow.workflowId,
            vendorData: subject,
            ...(workflow.callbackUrl ? { callback: workflow.callbackUrl } : {}),
            metadata: { workflow: workflow.name },
          });
        } catch (err) {
          // Not awaited: a store that fails too must not add its deadline to the answer (the lease then expires,
          // or this instance takes it over on the next attempt).
          void this.records.releaseSessionLease(key, owner).catch(() => undefined);
          throw err;
        }
        const sealedUrl = setup.sealer.seal(session.url, sessionUrlContext(workflow.provider, session.sessionId));
        const created: UnrecordedSession = {
          key,
          workflowId: workflow.workflowId,
          sessionId: session.sessionId,
          url: session.url,
          sealedUrl,
          status: session.status,
          state: session.state,
          createdAt: Date.now(),
        };
        try {
          await this.records.recordSession(key, owner, { sessionId: session.sessionId, sealedUrl, status: session.status, state: session.state }, created.createdAt);
        } catch (err) {
          // The provider session exists (and may be billed): it is never dropped. Kept here, it is recorded as soon
          // as the store answers, and offered on the subject's next attempt meanwhile.
          this.keepUnrecorded(created, err);
          throw err;
        }
        this.sessionRecorded(created);
        return { sessionId: session.sessionId, url: session.url, created: true };
      }
      const row = await this.records.record(key);
      if (row && row.session_id && row.session_url && (row.state === 'unverified' || row.state === 'pending') && Number(row.session_started_at) > now - workflow.sessionReuseMs) {
        return { sessionId: row.session_id, url: setup.sealer.open(row.session_url, sessionUrlContext(workflow.provider, row.session_id)), created: false };
      }
      // Another instance holds the lease and is creating the session: there is no event to wait on across
      // instances, so poll briefly, bounded by the lease.
      if (Date.now() > giveUpAt) throw new ProviderUnavailable('session creation did not finish in time', 2, 'timeout');
      await sleep(50);
    }
  }

  /** A session now in the store: events, every instance's cache, and webhooks that arrived before it. */
  private sessionRecorded(session: UnrecordedSession): void {
    const { subject, provider, workflow } = session.key;
    this.events.emit({ type: 'kyc.session.created', outcome: 'created', data: { subject, provider, workflow, session_id: session.sessionId } });
    this.invalidate(subject);
    // A webhook may have arrived before the session was recorded: apply it now.
    void this.drainSession(provider, session.sessionId);
  }

  private keepUnrecorded(session: UnrecordedSession, err: unknown): void {
    const id = session.key.subject + '\u0000' + session.key.workflow;
    this.unrecorded.delete(id);
    if (this.unrecorded.size >= MAX_UNRECORDED_SESSIONS) {
      const [oldestId, oldest] = this.unrecorded.entries().next().value!;
      this.unrecorded.delete(oldestId);
      this.logger.error({ provider: oldest.key.provider, session_id: oldest.sessionId }, 'too many provider sessions waiting to be recorded: the oldest is given up (it stays at the provider)');
    }
    this.unrecorded.set(id, session);
    this.logger.warn(
      { err, subject: session.key.subject, provider: session.key.provider, session_id: session.sessionId },
      'provider session created but not recorded (store failure): kept in memory, offered on the next attempt and recorded as soon as the store answers',
    );
    this.scheduleFlush();
  }

  /**
   * The offer for a provider session created earlier whose record failed: recorded first when the store answers
   * (the user gets the same link either way), or undefined when another session has replaced it meanwhile.
   */
  private async offerKept(kept: UnrecordedSession): Promise<SessionOffer | undefined> {
    const offer: SessionOffer = { sessionId: kept.sessionId, url: kept.url, created: false };
    // Known to be down: no wait for it; the session is recorded when it is back.
    if (this.records.store.availability.down) return offer;
    try {
      return (await this.recordKept(kept)) === 'superseded' ? undefined : offer;
    } catch {
      return offer;
    }
  }

  /**
   * Records a kept session: under a lease (this instance's own leftover lease is taken over at once). `recorded`
   * also when an earlier attempt's write did reach the store; `superseded` when a session created by another
   * instance is in its place (ours is dropped: it stays unused at the provider); `waiting` while another instance
   * holds the lease.
   */
  private async recordKept(kept: UnrecordedSession): Promise<'recorded' | 'superseded' | 'waiting'> {
    const id = kept.key.subject + '\u0000' + kept.key.workflow;
    const setup = this.setupValue;
    const workflow = setup.workflows.get(kept.key.workflow);
    const now = Date.now();
    const reusableSince = now - (workflow?.sessionReuseMs ?? 0);
    const owner = `${this.instanceId}:${randomUUID()}`;
    if (await this.records.acquireSessionLease(kept.key, kept.workflowId, owner, now, setup.config.session_lease_ms, reusableSince, this.instanceId)) {
      await this.records.recordSession(kept.key, owner, { sessionId: kept.sessionId, sealedUrl: kept.sealedUrl, status: kept.status, state: kept.state }, Date.now(), kept.createdAt);
      if (this.unrecorded.get(id) === kept) this.unrecorded.delete(id);
      this.logger.info({ subject: kept.key.subject, provider: kept.key.provider, session_id: kept.sessionId }, 'provider session recorded after a store failure');
      this.sessionRecorded(kept);
      return 'recorded';
    }
    const row = await this.records.record(kept.key);
    if (row?.session_id === kept.sessionId) {
      if (this.unrecorded.get(id) === kept) this.unrecorded.delete(id);
      this.sessionRecorded(kept);
      return 'recorded';
    }
    if (row && row.session_id && row.session_url && (row.state === 'unverified' || row.state === 'pending') && Number(row.session_started_at) > reusableSince) {
      if (this.unrecorded.get(id) === kept) this.unrecorded.delete(id);
      this.logger.warn({ subject: kept.key.subject, provider: kept.key.provider, session_id: kept.sessionId, replaced_by: row.session_id }, 'provider session not recorded: another instance created one meanwhile');
      return 'superseded';
    }
    return 'waiting';
  }

  /** Provider sessions waiting to be recorded (created while the store failed). */
  get unrecordedSessions(): number {
    return this.unrecorded.size;
  }

  /**
   * Records every kept session, through the per-subject single flight so that it never races the subject's own
   * attempt. Runs when the store answers again and every second while sessions wait.
   */
  flushUnrecorded(): Promise<void> {
    const runs: Array<Promise<unknown>> = [];
    for (const [id, kept] of this.unrecorded) {
      if (this.sessionsInFlight.has(id)) continue;
      const workflow = this.setupValue.workflows.get(kept.key.workflow);
      if (workflow === undefined) {
        this.unrecorded.delete(id);
        this.logger.error({ provider: kept.key.provider, workflow: kept.key.workflow, session_id: kept.sessionId }, 'provider session not recorded: its workflow is no longer configured');
        continue;
      }
      runs.push(this.offerSession(kept.key.subject, workflow).catch(() => undefined));
    }
    return Promise.all(runs).then(() => undefined);
  }

  private scheduleFlush(): void {
    if (this.flushTimer !== undefined || this.closed) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined;
      if (this.unrecorded.size === 0 || this.closed) return;
      const next = () => {
        if (this.unrecorded.size > 0) this.scheduleFlush();
      };
      // While the store is known to be down its recovery triggers the flush; the timer only keeps watch.
      if (this.records.store.availability.down) next();
      else void this.flushUnrecorded().then(next);
    }, FLUSH_INTERVAL_MS);
    this.flushTimer.unref();
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
    const inserted = await this.records.insertEvent(providerName, event.eventId, event.sessionId, seq, payload, setup.sealer.currentKeyId, Date.now());
    if (!inserted) {
      const existing = await this.records.event(providerName, event.eventId);
      if (existing?.processed_at !== null && existing?.processed_at !== undefined) return 'duplicate';
    }
    void this.applyEvent(providerName, event).catch((err: unknown) => this.logger.warn({ err, provider: providerName, event_id: event.eventId }, 'webhook event not applied yet; will retry'));
    return 'accepted';
  }

  /** Applies one event to the verification record; idempotent, and an older event never overwrites a newer one. */
  async applyEvent(providerName: string, event: WebhookEvent): Promise<string> {
    const setup = this.setupValue;
    const owner = await this.records.sessionOwner(providerName, event.sessionId);
    if (!owner) {
      // Kept for reconciliation: the session may be recorded a moment later, or be an operator's to look at.
      await this.records.markEvent(providerName, event.eventId, 'unknown_session', null);
      this.events.emit({ type: 'webhook.unmatched', outcome: 'unknown_session', data: { provider: providerName, event_id: event.eventId, session_id: event.sessionId } });
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
      let decision: ProviderDecision | undefined = event.decision;
      if (decision === undefined) {
        const provider = setup.providers.get(providerName);
        if (!provider) throw new ProviderUnavailable(`provider ${providerName} is not configured`, 30, 'unreachable');
        // Only the status was authenticated (or the event carried no decision): ask the provider for the facts.
        decision = await provider.fetchDecision(event.sessionId);
      }
      if (decision.state === 'approved') claims = grantedClaims(workflow.claimRules, decision).join(' ');
      verifiedAt = at;
      expiresAt = at + workflow.maxAgeMs;
      const kept = retainedPersonal(decision, workflow.retainPersonal);
      if (kept !== undefined) {
        personal = setup.sealer.seal(kept, personalContext(owner));
        keyId = setup.sealer.currentKeyId;
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
        data: { subject: owner.subject, provider: providerName, workflow: owner.workflow, status: event.status, claims: claims === '' ? [] : claims.split(' ') },
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
    const event = JSON.parse(this.setupValue.sealer.open(row.payload, eventContext(row.provider, row.event_id))) as WebhookEvent;
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
    const log = { err: err instanceof ProviderRejected ? { message: err.message, status: err.status } : err, provider: row.provider, event_id: row.event_id, attempts };
    try {
      if (attempts >= MAX_EVENT_ATTEMPTS) {
        await this.records.markEvent(row.provider, row.event_id, 'failed', Date.now());
        this.logger.error(log, 'webhook event could not be applied; given up');
      } else {
        await this.records.markEvent(row.provider, row.event_id, 'error', null);
        this.logger.warn(log, 'webhook event not applied; will retry');
      }
    } catch (markErr) {
      this.logger.warn({ err: markErr, provider: row.provider, event_id: row.event_id }, 'webhook event failure not recorded');
    }
  }

  private scheduleReconcile(): void {
    if (this.reconcileTimer) clearInterval(this.reconcileTimer);
    this.reconcileTimer = setInterval(() => void this.reconcile(), this.setupValue.config.reconcile_interval_seconds * 1000);
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
      .sign({ subject: entry.subject, audience, status: entry.status, claims: entry.claimList, verifiedAt: wf?.verifiedAt ?? null }, Math.floor(now / 1000))
      .then((token) => {
        entry.keepAssertion(audience, token, now + setup.config.assertion.cache_seconds * 1000);
        return token;
      });
  }

  /** Opens the sealed link of an unfinished session (cached state), for a challenge without a store query. */
  sessionUrl(provider: string, sessionId: string, sealed: string): string {
    return this.setupValue.sealer.open(sealed, sessionUrlContext(provider, sessionId));
  }

  recordHistory(subject: string, field: string, value: number): void {
    void this.records.recordHistory(subject, field, value, Date.now()).catch((err: unknown) => this.logger.warn({ err }, 'kyc history not recorded'));
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.reconcileTimer) clearInterval(this.reconcileTimer);
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.stopWatchingStore();
    if (this.unrecorded.size > 0) {
      await this.flushUnrecorded().catch(() => undefined);
      for (const kept of this.unrecorded.values()) {
        this.logger.error({ subject: kept.key.subject, provider: kept.key.provider, session_id: kept.sessionId }, 'provider session still not recorded at shutdown (store unavailable)');
      }
    }
    this.unsubscribe?.();
    await this.reconciling?.catch(() => undefined);
  }
}

function sessionUrlContext(provider: string, sessionId: string): string {
  return `session-url:${provider}:${sessionId}`;
}

function eventContext(provider: string, eventId: string): string {
  return `webhook-event:${provider}:${eventId}`;
}

function personalContext(key: RecordKey): string {
  return `personal:${key.subject}:${key.provider}:${key.workflow}`;
}

function retainedPersonal(decision: ProviderDecision, keep: readonly string[]): string | undefined {
  if (keep.length === 0) return undefined;
  const out: Record<string, string> = {};
  const p = decision.personal;
  if (keep.includes('first_name') && p.firstName !== undefined) out.first_name = p.firstName;
  if (keep.includes('last_name') && p.lastName !== undefined) out.last_name = p.lastName;
  if (keep.includes('date_of_birth') && p.dateOfBirth !== undefined) out.date_of_birth = p.dateOfBirth;
  return Object.keys(out).length > 0 ? JSON.stringify(out) : undefined;
}
