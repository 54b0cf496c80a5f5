/**
 * Upstream groups: named sets of targets behind one keep-alive pool each (undici), chosen per request by
 * round robin or least outstanding requests, with passive health: a target whose exchanges fail several times in a
 * row (no connection, connection reset or no answer in time) is taken out of rotation for a while, then let back
 * in on probation, where one more failure takes it out again. With active health, each target is also probed on a
 * timer, and one that fails its probes is out of rotation until it passes them again.
 */
import { Pool, type Dispatcher, type buildConnector } from 'undici';
import { Http2Upstream } from './h2-upstream.js';
import type { SecureContextOptions } from 'node:tls';
import { performance } from 'node:perf_hooks';

export type Balance = 'round_robin' | 'least_outstanding';

export interface UpstreamTargetOptions {
  url: string;
  weight: number;
}

export interface UpstreamPoolOptions {
  connections: number;
  keepAliveTimeoutMs: number;
  connectTimeoutMs: number;
  /** TLS to the upstream; `servername` defaults to the target host. */
  tls?: SecureContextOptions & { servername?: string; rejectUnauthorized?: boolean };
  /** HTTP/2 to the targets (h2 over TLS, h2c on http targets): one node:http2 session per target. */
  http2?: boolean;
  /** A connector that replaces the TLS options (e.g. SPIFFE-pinned upstreams), closed with the group. */
  connector?: { connect: buildConnector.connector; close(): void };
}

export interface PassiveHealthOptions {
  /** Failed exchanges in a row that take a target out of rotation; 0 turns passive health off. */
  consecutiveFailures: number;
  /** How long a target stays out of rotation, in milliseconds. */
  ejectMs: number;
}

export interface ActiveHealthOptions {
  /** Path probed on every target (as is: not prefixed with the target's base path). */
  path: string;
  intervalMs: number;
  /** A probe without a complete answer in this time failed. */
  timeoutMs: number;
  /** Failed probes in a row that take a target out of rotation. */
  unhealthyAfter: number;
  /** Passed probes in a row that bring it back. */
  healthyAfter: number;
}

/**
 * A target left rotation or came back: `ejected`/`restored` by passive health, `unhealthy`/`healthy` by its probes.
 * `detail` says why.
 */
export type HealthChange = (
  target: UpstreamTarget,
  change: 'ejected' | 'restored' | 'unhealthy' | 'healthy',
  detail: string,
) => void;

export interface UpstreamGroupOptions extends UpstreamPoolOptions {
  health?: PassiveHealthOptions;
  active?: ActiveHealthOptions;
  onHealthChange?: HealthChange;
  /**
   * Other targets tried, one after the other, when no connection to the chosen one could be made: the request
   * was never sent, so trying elsewhere cannot repeat it. 0: none.
   */
  connectRetries?: number;
  /** How many times an idempotent request is sent again after its connection was reset before any answer. 0: never. */
  idempotentRetries?: number;
}

/** What forwarding and probes use of a target's connections: an undici pool, or an HTTP/2 session (h2-upstream.ts). */
export interface TargetPool {
  dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean;
  request(options: {
    path: string;
    method: string;
    headers?: Record<string, string>;
    headersTimeout?: number;
    bodyTimeout?: number;
    signal?: AbortSignal;
  }): Promise<{ statusCode: number; body: { dump(options?: { limit: number }): Promise<void> } }>;
  close(): Promise<void>;
}

export class UpstreamTarget {
  readonly url: string;
  readonly host: string;
  /** Base path of the target URL, prefixed to forwarded paths ('' for '/'). */
  readonly basePath: string;
  readonly pool: TargetPool;
  outstanding = 0;
  /** Failed exchanges in a row (see UpstreamGroup.failed); any answer resets it. */
  failures = 0;
  /** performance.now() until which the target is out of rotation; 0 while it is in. */
  ejectedUntil = 0;
  /** Failed its active probes: out of rotation until it passes them again. */
  down = false;
  /** Probes in a row with the same outcome, counted towards the next change (active health). */
  probeStreak = 0;
  probing = false;

  constructor(url: string, options: UpstreamPoolOptions) {
    const parsed = new URL(url);
    this.url = url;
    this.host = parsed.host;
    this.basePath = parsed.pathname === '/' ? '' : parsed.pathname.replace(/\/$/, '');
    if (options.http2) {
      this.pool = new Http2Upstream(parsed.origin, {
        connectTimeoutMs: options.connectTimeoutMs,
        idleTimeoutMs: Math.max(options.keepAliveTimeoutMs, 60_000),
        ...(options.tls ? { tls: options.tls } : {}),
      });
      return;
    }
    this.pool = new Pool(parsed.origin, {
      connections: options.connections,
      pipelining: 1,
      keepAliveTimeout: options.keepAliveTimeoutMs,
      keepAliveMaxTimeout: Math.max(options.keepAliveTimeoutMs, 600_000),
      connect: options.connector
        ? options.connector.connect
        : {
            timeout: options.connectTimeoutMs,
            ...(options.tls ?? {}),
          },
      // Per-request values are always passed; these are the upper bounds.
      headersTimeout: 300_000,
      bodyTimeout: 300_000,
      strictContentLength: true,
    });
  }
}

export class UpstreamGroup {
  readonly name: string;
  readonly targets: readonly UpstreamTarget[];
  readonly balance: Balance;
  /** How many other targets a request may try when no connection could be made (never more than there are). */
  readonly connectRetries: number;
  /** How many times an idempotent request is sent again after a reset before any answer (any group size). */
  readonly idempotentRetries: number;
  /** Round-robin order, with each target repeated by its weight. */
  private readonly ring: readonly UpstreamTarget[];
  private next = 0;
  private readonly connector: UpstreamPoolOptions['connector'];
  /** Passive health, or undefined when off (turned off, or a single target: there is nowhere else to go). */
  private readonly health: PassiveHealthOptions | undefined;
  /** Targets out of rotation now (passive, active): while 0, choosing a target costs nothing more than without health checks. */
  private ejected = 0;
  private down = 0;
  private readonly active: ActiveHealthOptions | undefined;
  private prober: NodeJS.Timeout | undefined;
  private readonly onHealthChange: HealthChange | undefined;

  constructor(name: string, targets: UpstreamTargetOptions[], balance: Balance, options: UpstreamGroupOptions) {
    this.connector = options.connector;
    this.name = name;
    this.balance = balance;
    this.targets = targets.map((t) => new UpstreamTarget(t.url, options));
    const ring: UpstreamTarget[] = [];
    targets.forEach((t, i) => {
      for (let w = 0; w < t.weight; w++) ring.push(this.targets[i]!);
    });
    this.ring = ring;
    const several = this.targets.length > 1;
    this.health =
      several && options.health !== undefined && options.health.consecutiveFailures > 0 ? options.health : undefined;
    this.connectRetries = several ? Math.min(options.connectRetries ?? 0, this.targets.length - 1) : 0;
    this.idempotentRetries = options.idempotentRetries ?? 0;
    this.active = several ? options.active : undefined;
    this.onHealthChange = options.onHealthChange;
    if (this.active !== undefined) {
      this.prober = setInterval(() => this.probeAll(), this.active.intervalMs);
      this.prober.unref();
      this.probeAll();
    }
  }

  pick(): UpstreamTarget {
    const ring = this.ring;
    if (ring.length === 1) return ring[0]!;
    const start = this.next;
    this.next = (start + 1) % ring.length;
    // Every target out of rotation: all of them take traffic again rather than none (a wrong ejection must not
    // take the whole group down).
    if (this.ejected + this.down !== 0) return this.pickInRotation(start, undefined) ?? ring[start]!;
    if (this.balance === 'round_robin') return ring[start]!;
    // Least outstanding: scan from the round-robin position so ties spread evenly.
    let best = ring[start]!;
    for (let i = 1; i < ring.length; i++) {
      const candidate = ring[(start + i) % ring.length]!;
      if (candidate.outstanding < best.outstanding) best = candidate;
    }
    return best;
  }

  /**
   * A target in rotation that is not in `tried`, for a request that could not connect; undefined when none is left.
   * It does not move the round-robin position: a retry does not take another request's turn.
   */
  retryTarget(tried: readonly UpstreamTarget[]): UpstreamTarget | undefined {
    return this.pickInRotation(this.next, tried);
  }

  /** An exchange with `target` failed before any answer: no connection, connection reset, no answer in time. */
  failed(target: UpstreamTarget): void {
    const health = this.health;
    if (health === undefined || target.ejectedUntil !== 0) return;
    if (++target.failures < health.consecutiveFailures) return;
    target.ejectedUntil = performance.now() + health.ejectMs;
    this.ejected++;
    this.onHealthChange?.(target, 'ejected', `${target.failures} failed exchanges in a row`);
  }

  /** `target` answered (any status: it is up). */
  answered(target: UpstreamTarget): void {
    if (target.failures !== 0) target.failures = 0;
  }

  /** The first target from `start` in rotation and not in `skip` (the least busy for least_outstanding). */
  private pickInRotation(start: number, skip: readonly UpstreamTarget[] | undefined): UpstreamTarget | undefined {
    const ring = this.ring;
    const now = this.ejected !== 0 ? performance.now() : 0;
    let best: UpstreamTarget | undefined;
    for (let i = 0; i < ring.length; i++) {
      const candidate = ring[(start + i) % ring.length]!;
      if (skip?.includes(candidate)) continue;
      if (candidate.down) continue;
      if (candidate.ejectedUntil !== 0 && !this.restoreIfDue(candidate, now)) continue;
      if (this.balance === 'round_robin') return candidate;
      if (best === undefined || candidate.outstanding < best.outstanding) best = candidate;
    }
    return best;
  }

  /** Lets an ejected target back in once its time is up, on probation: its next failure takes it out again. */
  private restoreIfDue(target: UpstreamTarget, now: number): boolean {
    if (now < target.ejectedUntil) return false;
    target.ejectedUntil = 0;
    target.failures = this.health!.consecutiveFailures - 1;
    this.ejected--;
    this.onHealthChange?.(target, 'restored', 'ejection time over: on probation');
    return true;
  }

  /** Each target and whether it takes traffic now (out of rotation: passive ejection not yet over, or failing its probes). */
  rotation(): Array<{ target: UpstreamTarget; inRotation: boolean }> {
    const now = performance.now();
    return this.targets.map((target) => ({
      target,
      inRotation: !target.down && (target.ejectedUntil === 0 || now >= target.ejectedUntil),
    }));
  }

  /** One probe per target, except where the previous probe is still out. */
  private probeAll(): void {
    for (const t of this.targets) if (!t.probing) void this.probe(t);
  }

  private async probe(target: UpstreamTarget): Promise<void> {
    const active = this.active!;
    target.probing = true;
    let failure: string | undefined;
    try {
      const res = await target.pool.request({
        path: active.path,
        method: 'GET',
        headers: { host: target.host, 'user-agent': 'kycgate-health-check' },
        headersTimeout: active.timeoutMs,
        bodyTimeout: active.timeoutMs,
        signal: AbortSignal.timeout(active.timeoutMs),
      });
      await res.body.dump({ limit: 65536 });
      if (res.statusCode >= 400) failure = `status ${res.statusCode}`;
    } catch (err) {
      failure = (err as { code?: string }).code ?? (err as Error).name;
    } finally {
      target.probing = false;
    }
    if (this.prober === undefined) return; // closed meanwhile
    const passed = failure === undefined;
    // The streak counts probes that disagree with the target's state: it changes state once it is long enough.
    if (passed === !target.down) {
      target.probeStreak = 0;
      return;
    }
    target.probeStreak++;
    if (target.down && target.probeStreak >= active.healthyAfter) {
      target.down = false;
      target.probeStreak = 0;
      this.down--;
      this.onHealthChange?.(target, 'healthy', `${active.healthyAfter} probes passed in a row`);
    } else if (!target.down && target.probeStreak >= active.unhealthyAfter) {
      target.down = true;
      target.probeStreak = 0;
      this.down++;
      this.onHealthChange?.(target, 'unhealthy', failure!);
    }
  }

  /** Closes pools once their in-flight requests have finished. */
  async close(): Promise<void> {
    if (this.prober !== undefined) clearInterval(this.prober);
    this.prober = undefined;
    await Promise.all(this.targets.map((t) => t.pool.close().catch(() => undefined)));
    this.connector?.close();
  }
}
