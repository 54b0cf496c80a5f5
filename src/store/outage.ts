/**
 * What the gateway does while its store cannot be reached. Requests that must read the store answer 503; but state
 * already in memory that was known good (API keys, consumers, users' verification state) is served past its refresh
 * time, for `store.stale_period_seconds` at most, instead of locking out every client and user once an outage
 * outlasts the caches. A store that answers always wins: what it says (not found, revoked, declined) replaces the
 * cached state at once, and cached refusals stay refusals. Every decision made on such stale state is marked on the
 * request (`stale` in the audit record, `kycgate_stale_decisions_total`); the log says when an outage starts, what
 * is served meanwhile, and when it ends.
 *
 * The store's own operations tell when it stops answering (StoreAvailability); while it is down, a probe pings it
 * every second, so the end of an outage is noticed within about a second even when no request needs the store.
 */
import type { Logger } from 'pino';
import type { Store } from './store.js';

/** What the caches of store state need to know to decide whether they may serve an entry past its refresh time. */
export interface StalePolicy {
  /** Whether an entry due for refresh at `dueAt` may be served now without re-reading it (same clock as `now`). */
  servesStale(dueAt: number, now: number): boolean;
  /** Whether an entry due at `dueAt` is still worth keeping, in case the store cannot be reached when it is re-read. */
  keeps(dueAt: number, now: number): boolean;
  /** Whether a failed re-read (`err`) of an entry due at `dueAt` lets it be served stale. */
  coversFailure(err: unknown, dueAt: number, now: number): boolean;
  /** A decision is being made on stale state of kind `what` (api_key, kyc_subject). */
  servedStale(what: string): void;
}

export const DEFAULT_STALE_PERIOD_SECONDS = 900;
/** How often an unreachable store is pinged to notice it is back. */
const PROBE_INTERVAL_MS = 1000;

export class StoreOutage implements StalePolicy {
  private staleMs: number;
  private probe: NodeJS.Timeout | undefined;
  private probing = false;
  private since: number | undefined;
  /** Decisions made on stale state during the current outage, by kind. */
  private served = new Map<string, number>();
  private readonly stopListening: () => void;

  constructor(
    private readonly store: Store,
    private readonly logger: Logger,
    stalePeriodSeconds: number = DEFAULT_STALE_PERIOD_SECONDS,
  ) {
    this.staleMs = stalePeriodSeconds * 1000;
    this.stopListening = store.availability.onChange((up) => (up ? this.ended() : this.started()));
  }

  configure(stalePeriodSeconds: number): void {
    this.staleMs = stalePeriodSeconds * 1000;
  }

  get stalePeriodMs(): number {
    return this.staleMs;
  }

  /** True while the store is known not to answer. */
  get down(): boolean {
    return this.store.availability.down;
  }

  servesStale(dueAt: number, now: number): boolean {
    return this.store.availability.down && now < dueAt + this.staleMs;
  }

  keeps(dueAt: number, now: number): boolean {
    return now < dueAt + this.staleMs;
  }

  coversFailure(err: unknown, dueAt: number, now: number): boolean {
    return now < dueAt + this.staleMs && (err as { unreachable?: unknown } | null)?.unreachable === true;
  }

  /** Counts each decision made on stale state (the store subsystem's metric). */
  onServedStale: ((what: string) => void) | undefined;

  servedStale(what: string): void {
    this.onServedStale?.(what);
    const before = this.served.get(what);
    this.served.set(what, (before ?? 0) + 1);
    if (before !== undefined) return;
    const since = this.store.availability.downSince;
    this.logger.warn(
      {
        what,
        store_down_since: since === undefined ? undefined : new Date(since).toISOString(),
        stale_period_seconds: this.staleMs / 1000,
      },
      `store unreachable: deciding on cached ` +
        `${what === 'api_key' ? 'API keys and consumers' : 'verification state'} past its refresh time (for ` +
        `up to stale_period_seconds after it was due), marked stale in the audit trail`,
    );
  }

  private started(): void {
    this.since = Date.now();
    const err = this.store.availability.error;
    this.logger.warn(
      { store: this.store.dialect, reason: err?.reason, err: err?.message, stale_period_seconds: this.staleMs / 1000 },
      this.staleMs > 0
        ? 'store unreachable: requests that must read it answer 503; cached API keys, consumers and ' +
            'verification state are served past their refresh time for up to stale_period_seconds'
        : 'store unreachable: requests that must read it answer 503 (stale_period_seconds is 0: cached state is not served past its refresh time)',
    );
    this.probe ??= setInterval(() => void this.ping(), PROBE_INTERVAL_MS);
    this.probe.unref();
  }

  private ended(): void {
    if (this.probe) clearInterval(this.probe);
    this.probe = undefined;
    const stale = Object.fromEntries(this.served);
    this.served = new Map();
    const outageMs = this.since === undefined ? undefined : Date.now() - this.since;
    this.since = undefined;
    this.logger.info(
      { store: this.store.dialect, outage_ms: outageMs, stale_decisions: stale },
      'store reachable again: cached state is re-read from it as it comes due',
    );
  }

  private async ping(): Promise<void> {
    if (this.probing) return;
    this.probing = true;
    try {
      await this.store.ping();
    } catch {
      /* still down; StoreAvailability heard it */
    } finally {
      this.probing = false;
    }
  }

  close(): void {
    if (this.probe) clearInterval(this.probe);
    this.probe = undefined;
    this.stopListening();
  }
}
