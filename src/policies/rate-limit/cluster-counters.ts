/**
 * Local limits across workers (`server.workers` > 1), exact: the GCRA counters live in the supervisor, which is
 * the only one to charge them; a worker holds short leases of requests already charged there.
 *
 * A worker with no lease for a key asks the supervisor (one IPC round trip) for a batch covering every limit of
 * the request at once (all or nothing, as in `LocalCounters`). The supervisor grants at most what the counters
 * admit now, and only a share of it — floor(available / (2 × workers)), at least 1 — so that near exhaustion every
 * worker holds at most one request's worth and the others can still be granted the rest. Later requests of that
 * key spend the lease synchronously, with no round trip. A lease unused after `LEASE_MS` is handed back (the
 * supervisor takes its charge off), so requests never admitted are never counted. A refusal carries the time the
 * counters admit again; the worker refuses that key locally until then (at most `LEASE_MS`), then asks again.
 *
 * So over any stretch of time every worker together admits exactly what one process's counters would have admitted,
 * give or take the requests leased but not yet spent; a leased request is spent at most `LEASE_MS` after it was
 * charged, which is the most a burst can shift in time. Why not shared memory: node:cluster workers are processes,
 * and SharedArrayBuffer is shared only between threads; why not a round trip per request: it would cost the
 * supervisor a message per request and every request an await.
 */
import type { ClusterChannel, ClusterHub } from '../../pipeline/cluster.js';
import type { CompiledLimit } from './limits.js';
import type { Verdict } from './verdict.js';

/** How long a worker may hold leased requests before it hands back those it did not spend. */
export const LEASE_MS = 500;
/** Largest batch a worker asks for. */
const MAX_BATCH = 32;
/** Counters the supervisor keeps per table before it drops the oldest. */
const PRIMARY_MAX_KEYS = 1_000_000;

interface AcquireRequest {
  /** Table names (bucket + limit), keys, and each limit's GCRA interval and tolerance (ms). */
  t: string[];
  k: string[];
  i: number[];
  o: number[];
  p: boolean;
  w: number;
}

interface AcquireAnswer {
  /** Requests granted for every limit (0: refused). */
  g: number;
  /** When refused: ms until the counters admit again; the limit that refused. */
  r: number;
  x: number;
  /** When granted: requests left under the most restrictive limit after the grant, and ms until it is full again. */
  m: number;
  s: number;
}

interface RefundMessage {
  t: string;
  k: string;
  i: number;
  n: number;
}

// ---------------------------------------------------------------------------------------------------------------
// Supervisor side

/** The supervisor's counters: answers `ratelimit.acquire` and takes `ratelimit.refund`. */
export function serveClusterCounters(hub: ClusterHub): void {
  const tables = new Map<string, Map<string, number>>();
  const table = (name: string) => {
    let t = tables.get(name);
    if (t === undefined) {
      t = new Map();
      tables.set(name, t);
    }
    return t;
  };
  const sweeper = setInterval(() => {
    const now = Date.now();
    for (const t of tables.values()) for (const [key, tat] of t) if (tat <= now) t.delete(key);
  }, 10_000);
  sweeper.unref();
  hub.handle('ratelimit.acquire', (body) => acquire(body as AcquireRequest, hub.workers, table, Date.now()));
  hub.handle('ratelimit.refund', (body) => {
    const r = body as RefundMessage;
    const t = table(r.t);
    const tat = t.get(r.k);
    if (tat === undefined) return;
    const back = tat - r.n * r.i;
    if (back <= Date.now()) t.delete(r.k);
    else t.set(r.k, back);
  });
}

const EPSILON = 1e-6;

export function acquire(
  q: AcquireRequest,
  workers: number,
  table: (name: string) => Map<string, number>,
  now: number,
): AcquireAnswer {
  const n = q.t.length;
  const tats = new Array<number>(n);
  let available = Infinity;
  let refusedBy = -1;
  let retry = 0;
  for (let j = 0; j < n; j++) {
    const stored = table(q.t[j]!).get(q.k[j]!);
    const tat = stored === undefined || stored < now ? now : stored;
    tats[j] = tat;
    // Requests admitted now: k such that tat + k × interval − tolerance ≤ now.
    const fits = Math.floor((q.o[j]! - (tat - now)) / q.i[j]! + EPSILON);
    if (fits < 1) {
      const wait = tat + q.i[j]! - q.o[j]! - now;
      if (refusedBy === -1 || wait > retry) retry = wait;
      if (refusedBy === -1) refusedBy = j;
    }
    if (fits < available) available = fits;
  }
  if (refusedBy !== -1) {
    if (q.p) for (let j = 0; j < n; j++) store(table(q.t[j]!), q.k[j]!, tats[j]! + q.i[j]!);
    return { g: 0, r: Math.max(1, retry), x: refusedBy, m: 0, s: 0 };
  }
  const grant = Math.max(1, Math.min(q.w, Math.floor(available / (2 * workers))));
  let best = 0;
  let bestRemaining = Infinity;
  let bestReset = 0;
  for (let j = 0; j < n; j++) {
    const next = tats[j]! + grant * q.i[j]!;
    store(table(q.t[j]!), q.k[j]!, next);
    const remaining = Math.floor((q.o[j]! - (next - now)) / q.i[j]! + EPSILON);
    if (remaining < bestRemaining) {
      bestRemaining = remaining;
      best = j;
      bestReset = next - now;
    }
  }
  return { g: grant, r: 0, x: best, m: bestRemaining, s: bestReset };
}

function store(t: Map<string, number>, key: string, tat: number): void {
  if (t.size >= PRIMARY_MAX_KEYS && !t.has(key)) {
    const oldest = t.keys().next();
    if (!oldest.done) t.delete(oldest.value);
  }
  t.set(key, tat);
}

// ---------------------------------------------------------------------------------------------------------------
// Worker side

interface Lease {
  /** Requests charged in the supervisor and not yet spent. */
  tokens: number;
  /** When unspent tokens go back. */
  expires: number;
  /** Refused until then (no round trip before). */
  refusedUntil: number;
  /** The time the supervisor said the counters admit again. */
  retryAt: number;
  /** The supervisor's remaining count and full-again time at the last grant (for headers). */
  remaining: number;
  resetAt: number;
  /** The limit's interval, for the refund. */
  intervalMs: number;
}

/** One limit's leases in this worker: key to lease. */
export interface LeaseTable {
  readonly name: string;
  readonly leases: Map<string, Lease>;
}

export class ClusterCounters {
  private static instance: ClusterCounters | undefined;

  /** The worker's leases, shared by every rate-limit policy instance (and kept across reloads). */
  static shared(channel: ClusterChannel): ClusterCounters {
    ClusterCounters.instance ??= new ClusterCounters(channel);
    return ClusterCounters.instance;
  }

  private readonly tables = new Map<string, LeaseTable>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly channel: ClusterChannel) {
    this.sweeper = setInterval(() => this.sweep(Date.now()), LEASE_MS / 2);
    this.sweeper.unref();
  }

  table(bucket: string, limit: string): LeaseTable {
    const name = bucket + '\u001e' + limit;
    let table = this.tables.get(name);
    if (table === undefined) {
      table = { name, leases: new Map() };
      this.tables.set(name, table);
    }
    return table;
  }

  /**
   * Decides from leases alone when it can: true when `out` holds the verdict (spent from leases, or refused while
   * the supervisor's refusal stands); false when the supervisor must be asked (`acquire`).
   */
  decideLocally(
    tables: readonly LeaseTable[],
    keys: readonly string[],
    n: number,
    now: number,
    penalise: boolean,
    out: Verdict,
  ): boolean {
    let covered = true;
    for (let i = 0; i < n; i++) {
      const lease = tables[i]!.leases.get(keys[i]!);
      if (lease === undefined) {
        covered = false;
        continue;
      }
      if (!penalise && lease.refusedUntil > now) {
        out.allowed = false;
        out.retryAfterMs = Math.max(1, lease.retryAt - now);
        out.limitIndex = i;
        out.remaining = 0;
        out.resetMs = lease.resetAt - now;
        return true;
      }
      if (lease.tokens < 1 || lease.expires <= now) covered = false;
    }
    if (!covered) return false;
    let best = 0;
    let bestRemaining = Infinity;
    for (let i = 0; i < n; i++) {
      const lease = tables[i]!.leases.get(keys[i]!)!;
      lease.tokens--;
      const remaining = lease.remaining + lease.tokens;
      if (remaining < bestRemaining) {
        bestRemaining = remaining;
        best = i;
      }
    }
    const lease = tables[best]!.leases.get(keys[best]!)!;
    out.allowed = true;
    out.retryAfterMs = 0;
    out.limitIndex = best;
    out.remaining = bestRemaining;
    out.resetMs = Math.max(0, lease.resetAt - now);
    return true;
  }

  /**
   * Asks the supervisor for a batch of the limits this worker holds no lease for; this request spends one of it and
   * one of each lease it does hold (reserved before asking, given back if the supervisor refuses).
   */
  async acquire(
    tables: readonly LeaseTable[],
    keys: readonly string[],
    limits: readonly CompiledLimit[],
    n: number,
    penalise: boolean,
    out: Verdict,
  ): Promise<void> {
    const now = Date.now();
    const q: AcquireRequest = { t: [], k: [], i: [], o: [], p: penalise, w: MAX_BATCH };
    /** Index in the request of each limit asked for; leases this request already spends from. */
    const asked: number[] = [];
    const reserved: Lease[] = [];
    for (let i = 0; i < n; i++) {
      const lease = this.lease(tables[i]!, keys[i]!, limits[i]!, now);
      if (lease.tokens >= 1 && lease.expires > now) {
        lease.tokens--;
        reserved.push(lease);
        continue;
      }
      asked.push(i);
      q.t.push(tables[i]!.name);
      q.k.push(keys[i]!);
      q.i.push(limits[i]!.intervalMs);
      q.o.push(limits[i]!.toleranceMs);
    }
    let a: AcquireAnswer;
    try {
      a =
        asked.length === 0
          ? { g: 1, r: 0, x: 0, m: 0, s: 0 }
          : await this.channel.request<AcquireAnswer>('ratelimit.acquire', q);
    } catch (err) {
      for (const lease of reserved) lease.tokens++;
      throw err;
    }
    const at = Date.now();
    const index = asked[a.x] ?? 0;
    if (a.g === 0) {
      for (const lease of reserved) lease.tokens++;
      out.allowed = false;
      out.retryAfterMs = a.r;
      out.limitIndex = index;
      out.remaining = 0;
      out.resetMs = a.r;
      const lease = this.lease(tables[index]!, keys[index]!, limits[index]!, at);
      lease.retryAt = at + a.r;
      lease.resetAt = at + a.r;
      lease.refusedUntil = at + Math.min(a.r, LEASE_MS);
      return;
    }
    for (let j = 0; j < asked.length; j++) {
      const i = asked[j]!;
      const lease = this.lease(tables[i]!, keys[i]!, limits[i]!, at);
      lease.tokens += a.g - 1;
      lease.expires = at + LEASE_MS;
      lease.refusedUntil = 0;
      if (j === a.x) {
        lease.remaining = a.m;
        lease.resetAt = at + a.s;
      }
    }
    out.allowed = true;
    out.retryAfterMs = 0;
    out.limitIndex = index;
    out.remaining = a.m + a.g - 1;
    out.resetMs = a.s;
  }

  private lease(table: LeaseTable, key: string, limit: CompiledLimit, now: number): Lease {
    let lease = table.leases.get(key);
    if (lease !== undefined && lease.expires <= now && lease.tokens > 0) {
      // Expired while the sweep had not run yet: hand it back rather than spend it late.
      this.channel.send('ratelimit.refund', { t: table.name, k: key, i: lease.intervalMs, n: lease.tokens });
      lease.tokens = 0;
    }
    if (lease === undefined) {
      lease = {
        tokens: 0,
        expires: now + LEASE_MS,
        refusedUntil: 0,
        retryAt: 0,
        remaining: 0,
        resetAt: now,
        intervalMs: limit.intervalMs,
      };
      table.leases.set(key, lease);
    }
    return lease;
  }

  /** Hands back what expired leases did not spend, and forgets leases with nothing left to say. */
  sweep(now: number): void {
    for (const table of this.tables.values()) {
      for (const [key, lease] of table.leases) {
        if (lease.expires > now || lease.refusedUntil > now) continue;
        if (lease.tokens > 0) {
          const refund: RefundMessage = { t: table.name, k: key, i: lease.intervalMs, n: lease.tokens };
          this.channel.send('ratelimit.refund', refund);
        }
        table.leases.delete(key);
      }
    }
  }
}
