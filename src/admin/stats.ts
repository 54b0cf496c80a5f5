/**
 * Decision statistics for the admin API and the dashboard: per-minute counts of this instance's answers for the last
 * 24 hours, by route, consumer and outcome (allowed, denied, challenged, rate limited, error), with the problem types
 * answered and authentication failure reasons. Fed by the event bus after each exchange ended (never before the
 * answer): a request costs two Map lookups and an increment, with no clock read (a timer moves the current minute on)
 * and nothing allocated once its route and consumer were seen in the current minute. Fleet-wide history belongs to Prometheus; this is what one instance saw.
 */
import type { EventBus, RefusedRequest } from '../pipeline/events.js';
import type { RequestContext } from '../pipeline/context.js';

export const OUTCOMES = ['allowed', 'denied', 'challenged', 'rate_limited', 'error'] as const;
export type Outcome = (typeof OUTCOMES)[number];
type Counts = Record<Outcome, number>;

const MINUTE = 60_000;
const SLOTS = 24 * 60;
/** Distinct routes, or consumers of a route, counted per minute; more are counted under `(other)`. */
const MAX_KEYS = 1000;
const NONE = '-';

interface Slot {
  minute: number;
  /** route → consumer → counts by outcome index. */
  routes: Map<string, Map<string, Uint32Array>>;
  problems: Map<string, number>;
  authFailures: Map<string, number>;
}

const CHALLENGES = new Set(['kyc-required', 'kyc-pending']);

function outcomeIndex(status: number, problem: string | undefined, decision: string | undefined): number {
  if (status === 429) return 3;
  if (decision === 'challenge' || (problem !== undefined && CHALLENGES.has(problem))) return 2;
  if (status >= 500) return 4;
  if (status >= 400) return 1;
  return 0;
}

function bump(map: Map<string, number>, key: string): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

function zero(): Counts {
  return { allowed: 0, denied: 0, challenged: 0, rate_limited: 0, error: 0 };
}

function add(into: Counts, counts: Uint32Array): void {
  for (let i = 0; i < OUTCOMES.length; i++) into[OUTCOMES[i]!] += counts[i]!;
}

export class DecisionStats {
  private readonly slots: Array<Slot | undefined> = new Array(SLOTS);
  readonly startedAt = Date.now();
  private readonly stops: Array<() => void> = [];
  /** The current minute's slot, moved on by a timer: a request reads no clock. */
  private current: Slot;
  private readonly ticker: NodeJS.Timeout;

  constructor(events: EventBus) {
    this.current = this.slot(Date.now());
    this.ticker = setInterval(() => {
      this.current = this.slot(Date.now());
    }, 1000);
    this.ticker.unref();
    this.stops.push(
      events.subscribe({
        onRequestComplete: (ctx) => this.complete(ctx),
        onRequestRefused: (info) => this.refused(info),
      }),
      events.on('auth.failure', (e) => {
        if (e.outcome) bump(this.current.authFailures, e.outcome);
      }),
    );
  }

  close(): void {
    clearInterval(this.ticker);
    for (const stop of this.stops) stop();
  }

  /** The slot of the minute of `now`, made anew when it still holds an older minute. */
  private slot(now: number): Slot {
    const minute = Math.floor(now / MINUTE);
    const i = minute % SLOTS;
    let slot = this.slots[i];
    if (slot === undefined || slot.minute !== minute) {
      slot = { minute, routes: new Map(), problems: new Map(), authFailures: new Map() };
      this.slots[i] = slot;
    }
    return slot;
  }

  private count(route: string, consumer: string, status: number, problem: string | undefined, decision?: string): void {
    const slot = this.current;
    let consumers = slot.routes.get(route);
    if (consumers === undefined) {
      if (slot.routes.size >= MAX_KEYS) route = '(other)';
      consumers = slot.routes.get(route);
      if (consumers === undefined) slot.routes.set(route, (consumers = new Map()));
    }
    let counts = consumers.get(consumer);
    if (counts === undefined) {
      if (consumers.size >= MAX_KEYS) consumer = '(other)';
      counts = consumers.get(consumer);
      if (counts === undefined) consumers.set(consumer, (counts = new Uint32Array(OUTCOMES.length)));
    }
    counts[outcomeIndex(status, problem, decision)]!++;
    if (problem !== undefined) bump(slot.problems, problem);
  }

  private complete(ctx: RequestContext): void {
    this.count(ctx.route.name, ctx.identity?.consumer ?? NONE, ctx.status, ctx.errorKind, ctx.decision?.outcome);
  }

  private refused(info: RefusedRequest): void {
    this.count(NONE, NONE, info.status, info.problem);
  }

  /** Slots of the window [from, to), oldest first. */
  private window(from: number, to: number): Slot[] {
    const out: Slot[] = [];
    const first = Math.floor(from / MINUTE);
    const last = Math.ceil(to / MINUTE) - 1;
    for (let m = Math.max(first, last - SLOTS + 1); m <= last; m++) {
      const slot = this.slots[m % SLOTS];
      if (slot !== undefined && slot.minute === m) out.push(slot);
    }
    return out;
  }

  decisions(o: { windowMs: number; stepMs: number; route?: string; consumer?: string; now?: number }) {
    const now = o.now ?? Date.now();
    const step = Math.max(MINUTE, Math.round(o.stepMs / MINUTE) * MINUTE);
    const to = (Math.floor(now / MINUTE) + 1) * MINUTE;
    const from = to - Math.ceil(Math.min(o.windowMs, SLOTS * MINUTE) / step) * step;
    const buckets: Array<{ t: string } & Counts> = [];
    for (let t = from; t < to; t += step) buckets.push({ t: new Date(t).toISOString(), ...zero() });
    const byRoute: Record<string, Counts> = {};
    const byConsumer: Record<string, Counts> = {};
    for (const slot of this.window(from, to)) {
      const bucket = buckets[Math.floor((slot.minute * MINUTE - from) / step)]!;
      for (const [route, consumers] of slot.routes) {
        if (o.route !== undefined && route !== o.route) continue;
        for (const [consumer, counts] of consumers) {
          if (o.consumer !== undefined && consumer !== o.consumer) continue;
          add(bucket, counts);
          add((byRoute[route] ??= zero()), counts);
          add((byConsumer[consumer] ??= zero()), counts);
        }
      }
    }
    return {
      from: new Date(from).toISOString(),
      to: new Date(to).toISOString(),
      step_seconds: step / 1000,
      since_start: new Date(this.startedAt).toISOString(),
      buckets,
      by_route: byRoute,
      by_consumer: byConsumer,
    };
  }

  refusals(windowMs: number, now = Date.now()) {
    const to = (Math.floor(now / MINUTE) + 1) * MINUTE;
    const from = to - Math.ceil(Math.min(windowMs, SLOTS * MINUTE) / MINUTE) * MINUTE;
    const problems = new Map<string, number>();
    const reasons = new Map<string, number>();
    let challenged = 0;
    for (const slot of this.window(from, to)) {
      for (const [k, n] of slot.problems) problems.set(k, (problems.get(k) ?? 0) + n);
      for (const [k, n] of slot.authFailures) reasons.set(k, (reasons.get(k) ?? 0) + n);
      for (const consumers of slot.routes.values()) for (const c of consumers.values()) challenged += c[2]!;
    }
    const sorted = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
    return {
      from: new Date(from).toISOString(),
      to: new Date(to).toISOString(),
      problems: sorted(problems).map(([problem, count]) => ({ problem, count })),
      auth_failures: sorted(reasons).map(([reason, count]) => ({ reason, count })),
      challenged,
    };
  }
}
