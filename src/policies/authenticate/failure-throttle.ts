/**
 * Counts failed authentication attempts per client address in fixed windows, so that one address cannot guess
 * keys or tokens at line rate. IPv6 clients are counted per /64 (a client usually holds a whole /64 and could
 * otherwise rotate through it for a fresh budget). Bounded: when a table is full, new addresses are not tracked
 * until the next sweep rather than evicting addresses that are already throttled.
 *
 * The count is the deployment's, not one process's: an attacker must not get a fresh budget per worker or per
 * instance. Each process counts its own failures (that alone decides in a single process, and stands in while the
 * shared count cannot be reached), and reports each failure to the shared count:
 * - with Redis, one script call per failure (INCR, and the window's expiry on the first): the instance whose report
 *   reaches the limit publishes the address and the window's end on `<key_prefix>auth:throttled`, and every
 *   instance (every worker of each) refuses it from then on;
 * - with several workers and no Redis, the supervisor counts (`authfail.record`, sent before the refusal is
 *   answered) and announces the address to every worker as an invalidation on the same channel (its fan-out,
 *   shared/invalidation.ts), which reaches each worker ahead of any connection the supervisor hands it later: a
 *   client refused its last guess finds every worker closed to it.
 * Checking an address stays a map lookup on the request path; only failures talk to Redis or the supervisor.
 */
import type { ClusterChannel, ClusterHub } from '../../pipeline/cluster.js';
import type { RedisService } from '../../shared/redis.js';
import { clusterInvalidations, clusterTopic } from '../../shared/invalidation.js';
import { ipv6Network } from '../../shared/ipv6-prefix.js';

const MAX_TRACKED = 100_000;
/** Where a throttled address is announced (Redis pub/sub, or the supervisor's fan-out): `table|key|until`. */
export const THROTTLED_CHANNEL = 'auth:throttled';
const RECORD_TOPIC = 'authfail.record';
const announcement = (table: string, key: string, until: number) => `${table}|${key}|${until}`;

/** KEYS[1]: the address's counter; ARGV[1]: the window in ms. Returns {count, ms left in the window}. */
const COUNT_SCRIPT = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local left = redis.call('PTTL', KEYS[1])
if left < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); left = tonumber(ARGV[1]) end
return {n, left}`;

interface Window {
  count: number;
  endsAt: number;
}

/** Failure counts in fixed windows, per address key. */
class Windows {
  private readonly map = new Map<string, Window>();

  constructor(
    private readonly maxFailures: number,
    private readonly windowMs: number,
  ) {}

  get size(): number {
    return this.map.size;
  }

  /** Counts one failure of `key`; its window's count and end. */
  add(key: string, now: number): Window | undefined {
    const w = this.map.get(key);
    if (w !== undefined && w.endsAt > now) {
      w.count++;
      return w;
    }
    if (w === undefined && this.map.size >= MAX_TRACKED) return undefined;
    const fresh = { count: 1, endsAt: now + this.windowMs };
    this.map.set(key, fresh);
    return fresh;
  }

  /** When `key` is over the limit: the end of its window; else 0. */
  closedUntil(key: string, now: number): number {
    const w = this.map.get(key);
    if (w === undefined || w.count < this.maxFailures) return 0;
    if (w.endsAt <= now) {
      this.map.delete(key);
      return 0;
    }
    return w.endsAt;
  }

  sweep(now: number): void {
    for (const [key, w] of this.map) if (w.endsAt <= now) this.map.delete(key);
  }
}

/** Where failures are shared beyond this process: Redis, the supervisor of the workers, or nowhere. */
export interface SharedCount {
  redis?: RedisService | undefined;
  cluster?: ClusterChannel | undefined;
}

export class FailureThrottle {
  private readonly windows: Windows;
  /** Addresses the shared count closed, until when (epoch ms). */
  private readonly closed = new Map<string, number>();
  private readonly timer: NodeJS.Timeout;
  /** Names this limit setting in messages and keys: throttles with other limits count apart. */
  private readonly table: string;
  private readonly unsubscribe: (() => void) | undefined;

  constructor(
    private readonly maxFailures: number,
    private readonly windowMs: number,
    private readonly shared: SharedCount = {},
  ) {
    this.windows = new Windows(maxFailures, windowMs);
    this.table = `${maxFailures}:${windowMs}`;
    this.timer = setInterval(() => this.sweep(), Math.min(windowMs, 60_000));
    this.timer.unref();
    // Announcements arrive as invalidations do: through Redis, else from the supervisor.
    const feed = shared.redis ?? (shared.cluster && clusterInvalidations(shared.cluster));
    this.unsubscribe = feed?.subscribe(THROTTLED_CHANNEL, (message) => this.announced(message));
  }

  /** `table|key|until` from another process (IPv6 keys hold colons, never `|`); another limit's is not ours. */
  private announced(message: string): void {
    const first = message.indexOf('|');
    const last = message.lastIndexOf('|');
    if (first <= 0 || last <= first || message.slice(0, first) !== this.table) return;
    const until = Number(message.slice(last + 1));
    if (Number.isFinite(until)) this.shut(message.slice(first + 1, last), until);
  }

  /** Seconds the address must wait, or 0 when it may try. */
  retryAfter(address: string): number {
    if (this.windows.size === 0 && this.closed.size === 0) return 0;
    const key = ipv6Network(address, 64);
    const now = Date.now();
    let until = this.windows.closedUntil(key, now);
    if (until === 0) {
      const shared = this.closed.get(key);
      if (shared !== undefined) {
        if (shared > now) until = shared;
        else this.closed.delete(key);
      }
    }
    return until === 0 ? 0 : Math.ceil((until - now) / 1000);
  }

  recordFailure(address: string): void {
    const key = ipv6Network(address, 64);
    this.windows.add(key, Date.now());
    const { redis, cluster } = this.shared;
    if (redis !== undefined) this.countInRedis(redis, key);
    else if (cluster !== undefined)
      cluster.send(RECORD_TOPIC, { t: this.table, k: key, m: this.maxFailures, w: this.windowMs });
  }

  /** The shared count in Redis; a Redis that does not answer leaves this process's own count to decide. */
  private countInRedis(redis: RedisService, key: string): void {
    const counted = redis.client.eval(COUNT_SCRIPT, 1, `${redis.prefix}authfail:${this.table}:${key}`, this.windowMs);
    (counted as Promise<[number, number]>).then(
      ([count, left]) => {
        if (count < this.maxFailures) return;
        const until = Date.now() + Number(left);
        this.shut(key, until);
        if (count === this.maxFailures) void redis.publish(THROTTLED_CHANNEL, announcement(this.table, key, until));
      },
      () => undefined,
    );
  }

  /** Refuses `key` until `until` (epoch ms), as the shared count says. */
  private shut(key: string, until: number): void {
    if (!this.closed.has(key) && this.closed.size >= MAX_TRACKED) return;
    const known = this.closed.get(key);
    if (known === undefined || until > known) this.closed.set(key, until);
  }

  private sweep(): void {
    const now = Date.now();
    this.windows.sweep(now);
    for (const [key, until] of this.closed) if (until <= now) this.closed.delete(key);
  }

  close(): void {
    clearInterval(this.timer);
    this.unsubscribe?.();
  }
}

/**
 * The supervisor's side (`server.workers` > 1, no Redis): counts the failures every worker reports, per limit
 * setting, and tells every worker when an address reaches its limit.
 */
export function serveFailureCounts(hub: ClusterHub): void {
  const tables = new Map<string, { windows: Windows; max: number }>();
  const sweeper = setInterval(() => {
    const now = Date.now();
    for (const t of tables.values()) t.windows.sweep(now);
  }, 10_000);
  sweeper.unref();
  hub.handle(RECORD_TOPIC, (body) => {
    const m = body as { t?: unknown; k?: unknown; m?: unknown; w?: unknown };
    if (typeof m.t !== 'string' || typeof m.k !== 'string' || typeof m.m !== 'number' || typeof m.w !== 'number')
      return;
    let table = tables.get(m.t);
    if (table === undefined) {
      table = { windows: new Windows(m.m, m.w), max: m.m };
      tables.set(m.t, table);
    }
    const w = table.windows.add(m.k, Date.now());
    if (w !== undefined && w.count >= table.max)
      hub.broadcast(clusterTopic(THROTTLED_CHANNEL), announcement(m.t, m.k, w.endsAt));
  });
}
