/**
 * Shared GCRA counters in Redis. One decision is ONE script call (EVALSHA, loaded on first use) covering every
 * limit of the request: read, decide and write happen atomically inside Redis, so instances never race between a
 * read and an increment, and the clock is Redis's own (TIME), so instances with skewed clocks agree.
 *
 * Keys carry a hash tag so a multi-key call lands in one Redis Cluster slot: `{<bucket>:<client>}` when every
 * limit of the policy is keyed the same way (counters spread over the cluster by client), `{<bucket>}` otherwise.
 *
 * Why not rate-limiter-flexible: its Redis limiters consume one limit per call (a route with "10/s and
 * 10000/day" would need two round trips and could charge one limit while the other rejects), and its fixed-window
 * counters admit up to twice the limit across a window boundary. GCRA keeps one number per key, needs no window
 * and never charges a rejected request unless configured to.
 */
import type { Redis } from 'ioredis';
import type { CompiledLimit } from './limits.js';
import type { Verdict } from './verdict.js';

/**
 * KEYS: one per limit. ARGV[1]: 1 to charge rejected requests; then per limit: interval_us, tolerance_us.
 * Returns {allowed, retry_ms, index (1-based) of the most restrictive limit, remaining, reset_ms}.
 */
const GCRA_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local n = #KEYS
local penalise = ARGV[1] == '1'
local nexts = {}
local allowed = true
local retry = 0
local best, bestRemaining, bestReset = 1, -1, 0
for i = 1, n do
  local interval = tonumber(ARGV[2 * i])
  local tolerance = tonumber(ARGV[2 * i + 1])
  local tat = tonumber(redis.call('GET', KEYS[i]))
  if tat == nil or tat < now then tat = now end
  local nxt = tat + interval
  nexts[i] = nxt
  local wait = nxt - tolerance - now
  if wait > 0 then
    if allowed or wait > retry then retry = wait end
    if allowed then best = i; bestRemaining = 0; bestReset = tat - now end
    allowed = false
  elseif allowed then
    local remaining = math.floor((tolerance - (nxt - now)) / interval)
    if bestRemaining < 0 or remaining < bestRemaining then best = i; bestRemaining = remaining; bestReset = nxt - now end
  end
end
if allowed or penalise then
  for i = 1, n do
    redis.call('SET', KEYS[i], string.format('%.0f', nexts[i]), 'PX', math.max(1, math.ceil((nexts[i] - now) / 1000)))
  end
end
if not allowed then bestRemaining = 0 end
return {allowed and 1 or 0, math.ceil(retry / 1000), best, bestRemaining, math.ceil(bestReset / 1000)}
`;

type GcraClient = Redis & {
  kycgateGcra(numKeys: number, ...args: string[]): Promise<[number, number, number, number, number]>;
};

export class RedisCounters {
  private readonly client: GcraClient;

  constructor(client: Redis) {
    const c = client as GcraClient;
    if (typeof c.kycgateGcra !== 'function') c.defineCommand('kycgateGcra', { lua: GCRA_SCRIPT });
    this.client = c;
  }

  /** True when the connection is up; commands to a down connection fail at once (no offline queue). */
  get available(): boolean {
    return this.client.status === 'ready';
  }

  async decide(
    keys: readonly string[],
    limits: readonly CompiledLimit[],
    n: number,
    penalise: boolean,
    out: Verdict,
  ): Promise<void> {
    const args: string[] = new Array(n + 1 + 2 * n);
    for (let i = 0; i < n; i++) args[i] = keys[i]!;
    args[n] = penalise ? '1' : '0';
    for (let i = 0; i < n; i++) {
      args[n + 1 + 2 * i] = limits[i]!.intervalUs;
      args[n + 2 + 2 * i] = limits[i]!.toleranceUs;
    }
    const [allowed, retryMs, index, remaining, resetMs] = await this.client.kycgateGcra(n, ...args);
    out.allowed = allowed === 1;
    out.retryAfterMs = retryMs;
    out.limitIndex = index - 1;
    out.remaining = remaining;
    out.resetMs = resetMs;
  }
}

/**
 * Circuit breaker around Redis: after `failures` consecutive failures Redis is bypassed for `openMs`, then a
 * single request probes it while the others keep using the fallback; a success closes the breaker.
 */
export class RedisBreaker {
  private failures = 0;
  private openUntil = 0;
  private probing = false;

  constructor(
    private readonly threshold: number,
    private readonly openMs: number,
  ) {}

  /** Whether this request may use Redis now. */
  allow(now: number): boolean {
    if (this.openUntil === 0) return true;
    if (now < this.openUntil || this.probing) return false;
    this.probing = true;
    return true;
  }

  success(): void {
    this.failures = 0;
    this.openUntil = 0;
    this.probing = false;
  }

  failure(now: number): void {
    this.probing = false;
    this.failures++;
    if (this.failures >= this.threshold || this.openUntil !== 0) this.openUntil = now + this.openMs;
  }
}
