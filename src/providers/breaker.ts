/**
 * A small circuit breaker for calls to an verification provider. After `failureThreshold` consecutive failures it
 * opens: calls fail at once (ProviderUnavailable 'breaker_open') for `cooldownMs`. Then it is half-open and lets
 * ONE probe through: success closes it, failure re-opens it for another cool-down. Only outages count as
 * failures (timeouts, network errors, 5xx) and calls slower than `slowCallMs`, even successful ones; a provider
 * that answers in time, even with a 4xx, is up.
 */
import { ProviderUnavailable } from './provider.js';

export type BreakerState = 'closed' | 'open' | 'half_open';

export interface BreakerOptions {
  /** Consecutive failures that open the breaker. Default 5. */
  failureThreshold?: number;
  /** How long the breaker stays open before a probe, in milliseconds. Default 30 000. */
  cooldownMs?: number;
  /** Clock in milliseconds (tests). */
  now?: () => number;
  /** Told about every state change (metrics, logs). */
  onStateChange?: (state: BreakerState, lastError: string | undefined) => void;
}

export class CircuitBreaker {
  private readonly threshold: number;
  private readonly cooldownMs: number;
  private readonly now: () => number;
  private readonly onStateChange: BreakerOptions['onStateChange'];
  private current: BreakerState = 'closed';
  private failures = 0;
  private openedAt = 0;
  private probeInFlight = false;
  /** Short description of the last failure (never a secret or a response body). */
  lastError: string | undefined;

  constructor(options: BreakerOptions = {}) {
    this.threshold = Math.max(1, options.failureThreshold ?? 5);
    this.cooldownMs = Math.max(0, options.cooldownMs ?? 30_000);
    this.now = options.now ?? Date.now;
    this.onStateChange = options.onStateChange;
  }

  /** Current state; an open breaker whose cool-down has passed reads as half-open. */
  get state(): BreakerState {
    if (this.current === 'open' && this.now() - this.openedAt >= this.cooldownMs) return 'half_open';
    return this.current;
  }

  get consecutiveFailures(): number {
    return this.failures;
  }

  /**
   * Runs `call` through the breaker. `isFailure` says whether an error is an outage (counts) or an answer (does
   * not). Throws ProviderUnavailable('breaker_open') without calling when the breaker is open.
   */
  async run<T>(call: () => Promise<T>, isFailure: (err: unknown) => boolean, slowCallMs = Infinity): Promise<T> {
    this.admit();
    const started = this.now();
    try {
      const result = await call();
      // A provider that answers, but too slowly, is failing its callers all the same.
      const took = this.now() - started;
      if (took > slowCallMs) this.failed(`slow call (${took} ms)`);
      else this.succeeded();
      return result;
    } catch (err) {
      if (isFailure(err)) this.failed(err instanceof Error ? err.message : String(err));
      else this.succeeded();
      throw err;
    }
  }

  private admit(): void {
    const state = this.state;
    if (state === 'closed') return;
    if (state === 'half_open' && !this.probeInFlight) {
      this.probeInFlight = true;
      this.setState('half_open');
      return;
    }
    const remainingMs = state === 'open' ? this.cooldownMs - (this.now() - this.openedAt) : this.cooldownMs;
    throw new ProviderUnavailable(
      'the provider circuit breaker is open',
      Math.max(1, Math.ceil(remainingMs / 1000)),
      'breaker_open',
    );
  }

  private succeeded(): void {
    this.failures = 0;
    this.probeInFlight = false;
    if (this.current !== 'closed') this.setState('closed');
  }

  private failed(message: string): void {
    this.lastError = message;
    this.failures++;
    const wasProbe = this.probeInFlight;
    this.probeInFlight = false;
    if (wasProbe || this.failures >= this.threshold) {
      this.openedAt = this.now();
      this.setState('open');
    }
  }

  private setState(state: BreakerState): void {
    const changed = this.current !== state;
    this.current = state;
    if (changed) this.onStateChange?.(state, this.lastError);
  }
}
