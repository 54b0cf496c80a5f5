/**
 * rate-limit: GCRA limits per route or across the gateway, keyed by client IP, consumer, credential, subject,
 * header or a combination, with limits by consumer plan. Local mode decides synchronously in memory; Redis mode
 * makes one atomic script call per decision so that every instance enforces one shared limit, with a command
 * timeout and a breaker so that a slow or dead Redis never holds requests (then: local limits or 503).
 */
import type { PolicyDefinition, PolicyInstance, PolicyResult } from '../../pipeline/policy.js';
import type { RequestContext } from '../../pipeline/context.js';
import { problem, type Problem } from '../../pipeline/problem.js';
import type { RedisService } from '../../shared/redis.js';
import type { EventBus } from '../../pipeline/events.js';
import { rateLimitSchema, type RateLimitConfig } from './schema.js';
import { compileLimitSet, fallbackKeyValue, keyValue, type CompiledLimit, type LimitSet } from './limits.js';
import { Verdict } from './verdict.js';
import { LocalCounters, type CounterTable } from './local-counters.js';
import { RedisBreaker, RedisCounters } from './redis-counters.js';
import { registerRateLimitMetrics } from './metrics.js';
import { ClusterCounters, serveClusterCounters, type LeaseTable } from './cluster-counters.js';
import type { ClusterChannel } from '../../pipeline/cluster.js';

export const rateLimitPolicy: PolicyDefinition<RateLimitConfig> = {
  name: 'rate-limit',
  description:
    'Limits request rates (GCRA) per client, consumer, credential, subject or header, locally or shared through Redis.',
  phase: 'protect',
  schema: rateLimitSchema,
  init: registerRateLimitMetrics,
  primary: serveClusterCounters,
  async create(config, setup): Promise<PolicyInstance> {
    const redis = config.store === 'redis' ? setup.services.get<RedisService>('redis') : undefined;
    const cluster = config.store === 'local' ? setup.services.find<ClusterChannel>('cluster') : undefined;
    const limiter = new RateLimiter(config, setup.routeName, setup.services.events, redis, cluster);
    // At start-up the connection may still be opening: wait for it (bounded), so the first requests are already
    // counted in Redis rather than in the fallback. If Redis stays unreachable the failure mode applies.
    if (redis !== undefined) await untilReady(redis);
    return limiter;
  },
};

function untilReady(redis: RedisService): Promise<void> {
  const client = redis.client;
  if (client.status === 'ready') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      client.off('ready', done);
      resolve();
    };
    const timer = setTimeout(done, redis.config.connect_timeout_ms);
    client.once('ready', done);
  });
}

class RateLimiter implements PolicyInstance {
  /** Every request counts: a front proxy that reused an allow would let a whole burst through on one count. */
  readonly decisionReuse = 'per-request';
  private readonly defaultSet: LimitSet;
  private readonly plans: Map<string, LimitSet>;
  /** Scratch for the synchronous path (one request at a time): keys, limits and tables that apply to this request. */
  private readonly keys: string[] = [];
  private readonly active: CompiledLimit[] = [];
  private readonly activeTables: CounterTable[] = [];
  private readonly tables: Map<CompiledLimit, CounterTable>;
  private readonly verdict = new Verdict();
  private readonly local: LocalCounters;
  private readonly redis: RedisCounters | undefined;
  private readonly breaker: RedisBreaker;
  private readonly redisKeyPrefix: string;
  /** True when every limit is keyed the same way: the hash tag can then include the client, spreading keys. */
  private readonly tagByClient: boolean;
  private readonly bucket: string;
  /** With several workers and `store: local`: leases of the supervisor's counters (exact across workers). */
  private readonly cluster: ClusterCounters | undefined;
  private readonly leaseTables: Map<CompiledLimit, LeaseTable> | undefined;
  private readonly activeLeases: LeaseTable[] = [];

  constructor(
    private readonly config: RateLimitConfig,
    routeName: string,
    private readonly events: EventBus,
    redis: RedisService | undefined,
    cluster: ClusterChannel | undefined,
  ) {
    this.defaultSet = compileLimitSet(config.limits, config.ipv6_prefix);
    this.plans = new Map(
      Object.entries(config.plans).map(([plan, limits]) => [plan, compileLimitSet(limits, config.ipv6_prefix)]),
    );
    const all = [this.defaultSet, ...this.plans.values()];
    if (all.every((s) => s.limits.length === 0))
      throw new Error('rate-limit: give at least one limit in `limits` or `plans`');
    const specs = new Set(all.flatMap((s) => s.limits.map((l) => l.keySpec)));
    this.tagByClient = specs.size === 1;
    this.bucket = config.scope === 'gateway' ? '*' : routeName;
    this.local = LocalCounters.shared(config.local_max_keys);
    this.tables = new Map(all.flatMap((s) => s.limits).map((l) => [l, this.local.table(this.bucket, l.name)]));
    if (cluster !== undefined) {
      const counters = ClusterCounters.shared(cluster);
      this.cluster = counters;
      this.leaseTables = new Map(all.flatMap((s) => s.limits).map((l) => [l, counters.table(this.bucket, l.name)]));
    }
    this.breaker = new RedisBreaker(config.breaker.failures, config.breaker.open_ms);
    this.redis = redis === undefined ? undefined : new RedisCounters(redis.client);
    this.redisKeyPrefix = redis === undefined ? '' : redis.prefix + 'rl:';
  }

  onRequest(ctx: RequestContext): PolicyResult | Promise<PolicyResult> {
    const plan = ctx.identity?.plan;
    const set = (plan !== undefined ? this.plans.get(plan) : undefined) ?? this.defaultSet;
    const limits = set.limits;
    const keys = this.keys;
    const active = this.active;
    let n = 0;
    for (let i = 0; i < limits.length; i++) {
      const limit = limits[i]!;
      let value = keyValue(limit, ctx);
      if (value === undefined) {
        if (this.config.missing_key === 'skip') continue;
        value = fallbackKeyValue(ctx, this.config.ipv6_prefix);
      }
      keys[n] = value;
      active[n] = limit;
      this.activeTables[n] = this.tables.get(limit)!;
      if (this.leaseTables !== undefined) this.activeLeases[n] = this.leaseTables.get(limit)!;
      n++;
    }
    if (n === 0) return undefined;

    const redis = this.redis;
    if (redis !== undefined) {
      const now = Date.now();
      if (redis.available && this.breaker.allow(now)) return this.decideShared(ctx, set, n);
      if (this.config.on_redis_failure === 'fail_closed') return this.unavailable(ctx);
    }
    if (this.cluster !== undefined) return this.decideAcrossWorkers(ctx, set, n);
    // Local counters: the configured store, or the fail-open fallback while Redis is unavailable.
    this.local.decide(this.activeTables, keys, active, n, Date.now(), this.config.penalise_rejected, this.verdict);
    return this.answer(ctx, set, active, this.verdict, 'local');
  }

  /** Several workers: spend a lease when this worker holds one, else ask the supervisor's counters. */
  private decideAcrossWorkers(ctx: RequestContext, set: LimitSet, n: number): PolicyResult | Promise<PolicyResult> {
    const cluster = this.cluster!;
    const penalise = this.config.penalise_rejected;
    if (cluster.decideLocally(this.activeLeases, this.keys, n, Date.now(), penalise, this.verdict))
      return this.answer(ctx, set, this.active, this.verdict, 'local');
    const active = this.active.slice(0, n);
    const verdict = new Verdict();
    return cluster.acquire(this.activeLeases.slice(0, n), this.keys.slice(0, n), active, n, penalise, verdict).then(
      () => this.answer(ctx, set, active, verdict, 'local'),
      () => this.unavailable(ctx),
    );
  }

  private redisKey(limit: CompiledLimit, value: string): string {
    return this.tagByClient
      ? this.redisKeyPrefix + '{' + this.bucket + ':' + value + '}:' + limit.name
      : this.redisKeyPrefix + '{' + this.bucket + '}:' + limit.name + ':' + value;
  }

  private async decideShared(ctx: RequestContext, set: LimitSet, n: number): Promise<PolicyResult> {
    // Copies: the scratch arrays belong to the synchronous path and are reused by the next request.
    const keys = new Array<string>(n);
    const active = this.active.slice(0, n);
    for (let i = 0; i < n; i++) keys[i] = this.redisKey(active[i]!, this.keys[i]!);
    const values = this.keys.slice(0, n);
    const tables = this.activeTables.slice(0, n);
    const verdict = new Verdict();
    try {
      await this.redis!.decide(keys, active, n, this.config.penalise_rejected, verdict);
      this.breaker.success();
      return this.answer(ctx, set, active, verdict, 'redis');
    } catch {
      this.breaker.failure(Date.now());
      if (this.config.on_redis_failure === 'fail_closed') return this.unavailable(ctx);
      this.local.decide(tables, values, active, n, Date.now(), this.config.penalise_rejected, verdict);
      return this.answer(ctx, set, active, verdict, 'local');
    }
  }

  private answer(
    ctx: RequestContext,
    set: LimitSet,
    active: readonly CompiledLimit[],
    d: Verdict,
    store: string,
  ): PolicyResult {
    const limit = active[d.limitIndex]!;
    const resetS = Math.ceil(d.resetMs / 1000);
    if (d.allowed) {
      const headers = this.config.headers;
      if (headers !== 'none') {
        ctx.setResponseHeader('ratelimit-policy', set.policyHeader);
        ctx.setResponseHeader('ratelimit', '"' + limit.name + '";r=' + d.remaining + ';t=' + resetS);
        if (headers === 'all') {
          ctx.setResponseHeader('x-ratelimit-limit', limit.burstText);
          ctx.setResponseHeader('x-ratelimit-remaining', String(d.remaining));
          ctx.setResponseHeader('x-ratelimit-reset', String(resetS));
        }
      }
      return undefined;
    }
    const retryAfter = Math.max(1, Math.ceil(d.retryAfterMs / 1000));
    ctx.decision = {
      outcome: 'rate-limited',
      policy: 'rate-limit',
      rule: limit.name,
      reason: `limit ${limit.name} exceeded`,
    };
    this.events.emit({
      type: 'ratelimit.rejected',
      requestId: ctx.id,
      route: ctx.route.name,
      outcome: limit.name,
      data: { limit: limit.name, key: limit.keySpec, store, retry_after_s: retryAfter },
    });
    return problem('rate-limited', {
      detail: `The limit "${limit.name}" (${limit.rate} per ${limit.periodMs / 1000} s) is exhausted; retry after ${retryAfter} s.`,
      extensions: { limit: limit.name, retry_after: retryAfter },
      headers: {
        'retry-after': String(retryAfter),
        'ratelimit-policy': set.policyHeader,
        ratelimit: '"' + limit.name + '";r=0;t=' + retryAfter,
        'x-ratelimit-limit': limit.burstText,
        'x-ratelimit-remaining': '0',
        'x-ratelimit-reset': String(Math.max(retryAfter, Math.ceil(d.resetMs / 1000))),
      },
    });
  }

  private unavailable(ctx: RequestContext): Problem {
    ctx.decision = {
      outcome: 'rate-limit-unavailable',
      policy: 'rate-limit',
      reason: 'shared rate-limit store unavailable',
    };
    this.events.emit({
      type: 'ratelimit.unavailable',
      requestId: ctx.id,
      route: ctx.route.name,
      outcome: 'fail_closed',
    });
    return problem('service-unavailable', {
      detail: 'Rate limiting is temporarily unavailable.',
      headers: { 'retry-after': '1' },
    });
  }
}
