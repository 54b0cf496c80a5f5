/**
 * In-memory GCRA counters: one number per key (the theoretical arrival time, TAT), in one table per limit. A
 * decision over several limits is all-or-nothing: either every limit admits the request and all are charged, or
 * none is charged (unless rejected requests are penalised). Synchronous; a decision allocates nothing beyond a new
 * table entry.
 */
import type { CompiledLimit } from './limits.js';
import type { Verdict } from './verdict.js';

/** One limit's counters: client key to TAT (ms since the epoch). */
export type CounterTable = Map<string, number>;

export class LocalCounters {
  private static instance: LocalCounters | undefined;

  /**
   * The process-wide counters. Tables are named by route (or `*` for gateway scope) and limit name, so policies
   * never share a counter by accident; sharing them lets gateway-scope limits count across routes and keeps
   * counts across config reloads (a reload must not hand every client a fresh quota).
   */
  static shared(maxKeys: number): LocalCounters {
    const counters = (LocalCounters.instance ??= new LocalCounters(maxKeys));
    if (maxKeys > counters.maxKeys) counters.maxKeys = maxKeys;
    return counters;
  }

  private readonly tables = new Map<string, CounterTable>();
  private readonly pending: number[] = [];
  private readonly sweeper: NodeJS.Timeout;

  constructor(private maxKeys: number) {
    // Entries whose TAT has passed carry no information (a fresh key behaves the same): drop them regularly.
    this.sweeper = setInterval(() => this.sweep(Date.now()), 10_000);
    this.sweeper.unref();
  }

  table(bucket: string, limit: string): CounterTable {
    const name = bucket + '\u001e' + limit;
    let table = this.tables.get(name);
    if (table === undefined) {
      table = new Map();
      this.tables.set(name, table);
    }
    return table;
  }

  decide(
    tables: readonly CounterTable[],
    keys: readonly string[],
    limits: readonly CompiledLimit[],
    n: number,
    now: number,
    penalise: boolean,
    out: Verdict,
  ): void {
    const pending = this.pending;
    let allowed = true;
    let retry = 0;
    let bestIndex = 0;
    let bestRemaining = Infinity;
    let bestReset = 0;
    for (let i = 0; i < n; i++) {
      const limit = limits[i]!;
      const stored = tables[i]!.get(keys[i]!);
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
      for (let i = 0; i < n; i++) {
        const table = tables[i]!;
        if (table.size >= this.maxKeys) evictOldest(table, now);
        table.set(keys[i]!, pending[i]!);
      }
    }
    out.allowed = allowed;
    out.retryAfterMs = allowed ? 0 : retry;
    out.limitIndex = bestIndex;
    out.remaining = allowed ? bestRemaining : 0;
    out.resetMs = bestReset;
  }

  sweep(now: number): void {
    for (const table of this.tables.values()) for (const [key, tat] of table) if (tat <= now) table.delete(key);
  }
}

/**
 * A full table drops a few of its oldest entries (Map iteration is insertion order), preferring expired ones; it
 * never scans the whole table on the request path, so a flood of distinct keys cannot make decisions slow.
 */
function evictOldest(table: CounterTable, now: number): void {
  let dropped = 0;
  for (const [key, tat] of table) {
    table.delete(key);
    if (++dropped >= 8 || tat > now) break;
  }
}
