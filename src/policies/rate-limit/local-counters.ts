/**
 * In-memory GCRA counters: one number per key (the theoretical arrival time, TAT). A decision over several
 * limits is all-or-nothing: either every limit admits the request and all are charged, or none is charged (unless
 * rejected requests are penalised). Synchronous and allocation-free apart from the Map entries themselves.
 */
import type { CompiledLimit } from './limits.js';
import type { Decision } from './decision.js';

export class LocalCounters {
  private static instance: LocalCounters | undefined;

  /**
   * The process-wide counters. Keys name the route (or `*` for gateway scope) and the limit, so policies never
   * share a counter by accident; sharing one map lets gateway-scope limits count across routes and keeps counts
   * across config reloads (a reload must not hand every client a fresh quota).
   */
  static shared(maxKeys: number): LocalCounters {
    const counters = (LocalCounters.instance ??= new LocalCounters(maxKeys));
    if (maxKeys > counters.maxKeys) counters.maxKeys = maxKeys;
    return counters;
  }

  private readonly tats = new Map<string, number>();
  private readonly pending: number[] = [];
  private readonly sweeper: NodeJS.Timeout;

  constructor(private maxKeys: number) {
    // Entries whose TAT has passed carry no information (a fresh key behaves the same): drop them regularly.
    this.sweeper = setInterval(() => this.sweep(Date.now()), 10_000);
    this.sweeper.unref();
  }

  get size(): number {
    return this.tats.size;
  }

  decide(keys: readonly string[], limits: readonly CompiledLimit[], n: number, now: number, penalise: boolean, out: Decision): void {
    const tats = this.tats;
    const pending = this.pending;
    let allowed = true;
    let retry = 0;
    let bestIndex = 0;
    let bestRemaining = Infinity;
    let bestReset = 0;
    for (let i = 0; i < n; i++) {
      const limit = limits[i]!;
      const stored = tats.get(keys[i]!);
      const tat = stored === undefined || stored < now ? now : stored;
      const next = tat + limit.intervalMs;
      pending[i] = next;
      const wait = next - limit.toleranceMs - now;
      if (wait > 0) {
        if (allowed || wait > retry) retry = wait;
        if (allowed) {
          bestIndex = i;
          bestRemaining = 0;
          bestReset = tat - now;
        }
        allowed = false;
      } else if (allowed) {
        const remaining = Math.floor((limit.toleranceMs - (next - now)) / limit.intervalMs);
        if (remaining < bestRemaining) {
          bestRemaining = remaining;
          bestIndex = i;
          bestReset = next - now;
        }
      }
    }
    if (allowed || penalise) {
      if (tats.size + n > this.maxKeys) this.makeRoom(now, n);
      for (let i = 0; i < n; i++) tats.set(keys[i]!, pending[i]!);
    }
    out.allowed = allowed;
    out.retryAfterMs = allowed ? 0 : retry;
    out.limitIndex = bestIndex;
    out.remaining = allowed ? bestRemaining : 0;
    out.resetMs = bestReset;
  }

  private makeRoom(now: number, n: number): void {
    this.sweep(now);
    // Still full: drop the oldest inserted keys (Map iteration is insertion order).
    for (const key of this.tats.keys()) {
      if (this.tats.size + n <= this.maxKeys) break;
      this.tats.delete(key);
    }
  }

  sweep(now: number): void {
    for (const [key, tat] of this.tats) if (tat <= now) this.tats.delete(key);
  }

  close(): void {
    clearInterval(this.sweeper);
    this.tats.clear();
  }
}
