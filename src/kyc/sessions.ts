/**
 * Verification sessions: offering a subject the unfinished session of a workflow, or a new one from the provider.
 * Concurrent callers for one subject share one attempt here, and instances take turns through a lease row in the
 * store, so a burst of first requests creates exactly one provider session. A provider session created while the
 * store failed is never dropped: it is kept in memory, offered on the subject's next attempt, and recorded as soon
 * as the store answers.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { EventBus } from '../pipeline/events.js';
import { ProviderUnavailable, type ProviderSession, type VerificationState } from '../providers/provider.js';
import type { CompiledWorkflow, KycSetup } from './setup.js';
import type { RecordKey, VerificationStore } from './verification-store.js';
import { providerOrder, routedProvider, type RoutingInput } from './routing.js';

export interface SessionOffer {
  sessionId: string;
  url: string;
  /** True when this call created it at the provider. */
  created: boolean;
}

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

export function sessionUrlContext(provider: string, sessionId: string): string {
  return `session-url:${provider}:${sessionId}`;
}

export interface SessionsDeps {
  readonly records: VerificationStore;
  /** The KYC setup in effect (it changes on reload). */
  setup(): KycSetup;
  /** Identifies this process in session leases. */
  readonly instanceId: string;
  readonly logger: Logger;
  readonly events: EventBus;
  /** Drops the subject's cached state here and on every instance. */
  invalidate(subject: string): void;
  /** Applies webhooks that arrived for a session before it was recorded. */
  drainSession(provider: string, sessionId: string): Promise<void>;
}

export class VerificationSessions {
  private readonly inFlight = new Map<string, Promise<SessionOffer>>();
  /**
   * Provider sessions created whose record could not be written (the store failed after the provider answered),
   * by subject and workflow: offered on the subject's next attempt and recorded as soon as the store answers, so
   * that a store failure never leaves a second provider session behind.
   */
  private readonly unrecorded = new Map<string, UnrecordedSession>();
  private flushTimer: NodeJS.Timeout | undefined;
  private readonly stopWatchingStore: () => void;
  private closed = false;

  constructor(private readonly deps: SessionsDeps) {
    this.stopWatchingStore = deps.records.store.availability.onChange((up) => {
      if (up && this.unrecorded.size > 0) void this.flushUnrecorded();
    });
  }

  /**
   * Offers the subject a verification session for `workflow`: the unfinished one if it exists, else a new one.
   * Concurrent callers for one subject share one attempt here, and instances take turns through a lease row, so
   * a burst of first requests creates exactly one provider session. Throws ProviderUnavailable, and
   * StoreUnavailable when the store fails (the provider session, if one was created, is kept: see `unrecorded`).
   */
  offer(subject: string, workflow: CompiledWorkflow, request?: RoutingInput): Promise<SessionOffer> {
    const key = subject + '\u0000' + workflow.name;
    let pending = this.inFlight.get(key);
    if (pending === undefined) {
      pending = this.obtainSession(subject, workflow, request).finally(() => this.inFlight.delete(key));
      this.inFlight.set(key, pending);
    }
    return pending;
  }

  private async obtainSession(
    subject: string,
    workflow: CompiledWorkflow,
    request: RoutingInput | undefined,
  ): Promise<SessionOffer> {
    const setup = this.deps.setup();
    const kept = this.unrecorded.get(subject + '\u0000' + workflow.name);
    if (kept !== undefined) {
      const offer = await this.offerKept(kept);
      if (offer !== undefined) return offer;
    }
    const routed = routedProvider(workflow.routing, subject, request);
    const order = providerOrder(routed, workflow.providers, setup.providers);
    const intended = routed ?? workflow.provider;
    if (order[0] !== intended) this.failover(subject, workflow.name, intended, 'breaker_open');
    let failure: ProviderUnavailable | undefined;
    for (let i = 0; i < order.length; i++) {
      const result = await this.obtainFrom(subject, workflow, order[i]!);
      if (!(result instanceof ProviderUnavailable)) return result;
      if (i < order.length - 1) this.failover(subject, workflow.name, order[i]!, result.reason);
      failure = result;
    }
    throw failure!;
  }

  /** A new session goes past a provider that cannot take it: on record, for the operator and the audit trail. */
  private failover(subject: string, workflow: string, provider: string, reason: string): void {
    this.deps.logger.warn(
      { provider, workflow, reason },
      'verification provider unavailable: new session goes to the next provider',
    );
    this.deps.events.emit({ type: 'kyc.provider.failover', outcome: reason, data: { subject, workflow, provider } });
  }

  /**
   * A session at one provider: the unfinished one, or a new one. A provider that cannot create it is answered as a
   * value (the next provider is tried); anything else (the store, another instance's lease running out) throws.
   */
  private async obtainFrom(
    subject: string,
    workflow: CompiledWorkflow,
    providerName: string,
  ): Promise<SessionOffer | ProviderUnavailable> {
    const setup = this.deps.setup();
    const provider = setup.providers.get(providerName);
    if (!provider) return new ProviderUnavailable(`provider ${providerName} is not configured`, 30, 'unreachable');
    const workflowId = workflow.workflowIds.get(providerName) ?? workflow.workflowId;
    const key: RecordKey = { subject, provider: providerName, workflow: workflow.name };
    const leaseMs = setup.config.session_lease_ms;
    const giveUpAt = Date.now() + leaseMs + 1000;
    for (;;) {
      const now = Date.now();
      const owner = `${this.deps.instanceId}:${randomUUID()}`;
      if (
        await this.deps.records.acquireSessionLease(
          key,
          workflowId,
          owner,
          now,
          leaseMs,
          now - workflow.sessionReuseMs,
          this.deps.instanceId,
        )
      ) {
        let session: ProviderSession;
        try {
          session = await provider.createSession({
            workflowId,
            vendorData: subject,
            ...(workflow.callbackUrl ? { callback: workflow.callbackUrl } : {}),
            metadata: {
              workflow: workflow.name,
              ...(workflow.applicationName !== undefined ? { application: workflow.applicationName } : {}),
              ...(workflow.purpose !== undefined ? { purpose: workflow.purpose } : {}),
            },
          });
        } catch (err) {
          // Not awaited: a store that fails too must not add its deadline to the answer (the lease then expires,
          // or this instance takes it over on the next attempt).
          void this.deps.records.releaseSessionLease(key, owner).catch(() => undefined);
          if (err instanceof ProviderUnavailable) return err;
          throw err;
        }
        const sealedUrl = setup.sealer.seal(session.url, sessionUrlContext(providerName, session.sessionId));
        const created: UnrecordedSession = {
          key,
          workflowId,
          sessionId: session.sessionId,
          url: session.url,
          sealedUrl,
          status: session.status,
          state: session.state,
          createdAt: Date.now(),
        };
        try {
          await this.deps.records.recordSession(
            key,
            owner,
            { sessionId: session.sessionId, sealedUrl, status: session.status, state: session.state },
            created.createdAt,
          );
        } catch (err) {
          // The provider session exists (and may be billed): it is never dropped. Kept here, it is recorded as soon
          // as the store answers, and offered on the subject's next attempt meanwhile.
          this.keepUnrecorded(created, err);
          throw err;
        }
        this.sessionRecorded(created);
        return { sessionId: session.sessionId, url: session.url, created: true };
      }
      const row = await this.deps.records.record(key);
      if (
        row?.session_id &&
        row.session_url &&
        (row.state === 'unverified' || row.state === 'pending') &&
        Number(row.session_started_at) > now - workflow.sessionReuseMs
      ) {
        return {
          sessionId: row.session_id,
          url: setup.sealer.open(row.session_url, sessionUrlContext(providerName, row.session_id)),
          created: false,
        };
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
    this.deps.events.emit({
      type: 'kyc.session.created',
      outcome: 'created',
      data: { subject, provider, workflow, session_id: session.sessionId },
    });
    this.deps.invalidate(subject);
    // A webhook may have arrived before the session was recorded: apply it now.
    void this.deps.drainSession(provider, session.sessionId);
  }

  private keepUnrecorded(session: UnrecordedSession, err: unknown): void {
    const id = session.key.subject + '\u0000' + session.key.workflow;
    this.unrecorded.delete(id);
    if (this.unrecorded.size >= MAX_UNRECORDED_SESSIONS) {
      const [oldestId, oldest] = this.unrecorded.entries().next().value!;
      this.unrecorded.delete(oldestId);
      this.deps.logger.error(
        { provider: oldest.key.provider, session_id: oldest.sessionId },
        'too many provider sessions waiting to be recorded: the oldest is given up (it stays at the provider)',
      );
    }
    this.unrecorded.set(id, session);
    this.deps.logger.warn(
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
    if (this.deps.records.store.availability.down) return offer;
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
    const setup = this.deps.setup();
    const workflow = setup.workflows.get(kept.key.workflow);
    const now = Date.now();
    const reusableSince = now - (workflow?.sessionReuseMs ?? 0);
    const owner = `${this.deps.instanceId}:${randomUUID()}`;
    if (
      await this.deps.records.acquireSessionLease(
        kept.key,
        kept.workflowId,
        owner,
        now,
        setup.config.session_lease_ms,
        reusableSince,
        this.deps.instanceId,
      )
    ) {
      await this.deps.records.recordSession(
        kept.key,
        owner,
        { sessionId: kept.sessionId, sealedUrl: kept.sealedUrl, status: kept.status, state: kept.state },
        Date.now(),
        kept.createdAt,
      );
      if (this.unrecorded.get(id) === kept) this.unrecorded.delete(id);
      this.deps.logger.info(
        { subject: kept.key.subject, provider: kept.key.provider, session_id: kept.sessionId },
        'provider session recorded after a store failure',
      );
      this.sessionRecorded(kept);
      return 'recorded';
    }
    const row = await this.deps.records.record(kept.key);
    if (row?.session_id === kept.sessionId) {
      if (this.unrecorded.get(id) === kept) this.unrecorded.delete(id);
      this.sessionRecorded(kept);
      return 'recorded';
    }
    if (
      row?.session_id &&
      row.session_url &&
      (row.state === 'unverified' || row.state === 'pending') &&
      Number(row.session_started_at) > reusableSince
    ) {
      if (this.unrecorded.get(id) === kept) this.unrecorded.delete(id);
      this.deps.logger.warn(
        {
          subject: kept.key.subject,
          provider: kept.key.provider,
          session_id: kept.sessionId,
          replaced_by: row.session_id,
        },
        'provider session not recorded: another instance created one meanwhile',
      );
      return 'superseded';
    }
    return 'waiting';
  }

  /** Provider sessions waiting to be recorded (created while the store failed). */
  get unrecordedCount(): number {
    return this.unrecorded.size;
  }

  /**
   * Records every kept session, through the per-subject single flight so that it never races the subject's own
   * attempt. Runs when the store answers again and every second while sessions wait.
   */
  flushUnrecorded(): Promise<void> {
    const runs: Array<Promise<unknown>> = [];
    for (const [id, kept] of this.unrecorded) {
      if (this.inFlight.has(id)) continue;
      const workflow = this.deps.setup().workflows.get(kept.key.workflow);
      if (workflow === undefined) {
        this.unrecorded.delete(id);
        this.deps.logger.error(
          { provider: kept.key.provider, workflow: kept.key.workflow, session_id: kept.sessionId },
          'provider session not recorded: its workflow is no longer configured',
        );
        continue;
      }
      runs.push(this.offer(kept.key.subject, workflow).catch(() => undefined));
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
      if (this.deps.records.store.availability.down) next();
      else void this.flushUnrecorded().then(next);
    }, FLUSH_INTERVAL_MS);
    this.flushTimer.unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.stopWatchingStore();
    if (this.unrecorded.size > 0) {
      await this.flushUnrecorded().catch(() => undefined);
      for (const kept of this.unrecorded.values()) {
        this.deps.logger.error(
          { subject: kept.key.subject, provider: kept.key.provider, session_id: kept.sessionId },
          'provider session still not recorded at shutdown (store unavailable)',
        );
      }
    }
  }
}
