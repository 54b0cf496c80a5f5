/**
 * The incident detector: on a timer, reads the signals (signals.ts), evaluates which causes hold over the window
 * (conditions.ts), and keeps the store's incidents in step: a cause that starts holding here opens its incident or
 * joins the one another instance opened; while it holds, the incident stays open and this instance's figures
 * (requests, failures, downtime, distinct clients affected) are written beside it; an incident no instance has
 * seen for `close_after_ms` is closed. On the request path it only looks at requests that failed (status 5xx) to
 * note which consumer and subject were affected: a comparison for every other request.
 */
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { RequestContext } from '../../pipeline/context.js';
import type { EventBus, EventListener } from '../../pipeline/events.js';
import { evaluate, webhooksLate, type Condition, type RouteInfo } from './conditions.js';
import { emptyMeasures, MAX_CLIENTS, type Measures } from './measures.js';
import type { IncidentsConfig } from './schema.js';
import { classifyAndRecord } from './service.js';
import { readSignals, type Reading } from './signals.js';
import type { IncidentStore } from './store.js';
import { thirdPartyDeltas, type ThirdPartyStore } from './third-parties.js';

interface Tracked {
  id: string;
  cause: string;
  condition: Condition;
  measures: Measures;
  consumers: Set<string>;
  subjects: Set<string>;
  routes: Set<string>;
  /** Whether the cause holds on this instance now. */
  holding: boolean;
}

interface Failed {
  consumers: Set<string>;
  subjects: Set<string>;
}

export interface DetectorOptions {
  store: IncidentStore;
  thirdParties: ThirdPartyStore;
  registry: Registry;
  events: EventBus;
  logger: Logger;
  instance: string;
  redisUp: () => boolean | undefined;
}

export class IncidentDetector implements EventListener {
  private config: IncidentsConfig;
  private routes: RouteInfo[];
  private readings: Reading[] = [];
  /** Readings kept over `providers.webhooks_late_ms` (a tenth of it apart, a minute at most): the base of the webhooks-late check. */
  private lateReadings: Reading[] = [];
  private readonly tracked = new Map<string, Tracked>();
  /** Causes seen here that the store has not recorded yet (it was unreachable): when they were first seen. */
  private readonly pending = new Map<string, number>();
  /**
   * Causes that held and ended while the store could not record them (the store's own outage, typically): recorded
   * once it answers, opened at the time they were first seen and cleared at the time they were last seen.
   */
  private readonly lastConditions = new Map<string, Condition>();
  private readonly unrecorded: Array<{ condition: Condition; firstSeen: number; lastSeen: number }> = [];
  /** Causes holding on every evaluation since (epoch ms), not yet confirmed (`confirm_ms`). */
  private readonly since = new Map<string, number>();
  private failed = new Map<string, Failed>();
  /** The failures of the evaluations within the window: an incident opened late still counts who it affected. */
  private failedHistory: Array<{ at: number; failed: Map<string, Failed> }> = [];
  private timer: NodeJS.Timeout | undefined;
  /** Operator actions already put on this instance's audit trail, and since when they are read. */
  private operatorSince = Date.now();
  private readonly operatorSeen = new Set<string>();
  private running: Promise<void> | undefined;

  constructor(
    private readonly o: DetectorOptions,
    config: IncidentsConfig,
    routes: RouteInfo[],
  ) {
    this.config = config;
    this.routes = routes;
  }

  configure(config: IncidentsConfig, routes: RouteInfo[]): void {
    const interval = this.config.interval_ms;
    this.config = config;
    this.routes = routes;
    if (this.timer !== undefined && interval !== config.interval_ms) {
      this.stop();
      this.start();
    }
  }

  /** Every finished request: only failures are looked at. */
  onRequestComplete(ctx: RequestContext): void {
    if (ctx.status < 500) return;
    this.noteFailure(ctx.route.name, ctx.identity?.consumer, ctx.subject);
  }

  private noteFailure(route: string, consumer: string | undefined, subject: string | undefined): void {
    let f = this.failed.get(route);
    if (f === undefined) this.failed.set(route, (f = { consumers: new Set(), subjects: new Set() }));
    if (consumer !== undefined && f.consumers.size < MAX_CLIENTS) f.consumers.add(consumer);
    if (subject !== undefined && f.subjects.size < MAX_CLIENTS) f.subjects.add(subject);
  }

  start(): void {
    if (this.timer !== undefined) return;
    this.timer = setInterval(() => void this.tick(), this.config.interval_ms);
    this.timer.unref();
    void this.tick();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  async close(): Promise<void> {
    this.stop();
    await this.running;
  }

  /** Open incidents this instance sees now, by cause. */
  get holding(): string[] {
    return [...this.tracked.values()].filter((t) => t.holding).map((t) => t.cause);
  }

  /** One evaluation; overlapping calls wait for the running one instead of starting another. */
  tick(now = Date.now()): Promise<void> {
    if (this.running !== undefined) return this.running;
    this.running = this.evaluate(now)
      .catch((err: unknown) => this.o.logger.warn({ err }, 'incident detection: evaluation failed'))
      .finally(() => {
        this.running = undefined;
      });
    return this.running;
  }

  private async evaluate(now: number): Promise<void> {
    const reading = await readSignals(this.o.registry, this.o.redisUp(), now);
    const prev = this.readings[this.readings.length - 1];
    this.readings.push(reading);
    // Keep the newest reading at or before the window's start as the base.
    const start = now - this.config.window_ms;
    while (this.readings.length > 2 && this.readings[1]!.at <= start) this.readings.shift();
    const base = this.readings[0]!;
    const conditions = prev === undefined ? [] : evaluate(this.config, this.routes, base, reading);
    const lateFrom = now - this.config.providers.webhooks_late_ms;
    const step = Math.min(60_000, this.config.providers.webhooks_late_ms / 10);
    if (this.lateReadings.length === 0 || now - this.lateReadings[this.lateReadings.length - 1]!.at >= step)
      this.lateReadings.push(reading);
    while (this.lateReadings.length > 2 && this.lateReadings[1]!.at <= lateFrom) this.lateReadings.shift();
    const late = webhooksLate(this.config, this.lateReadings[0]!, reading);
    if (late !== undefined) conditions.push(late);
    const failed = this.failed;
    this.failed = new Map();
    this.failedHistory.push({ at: now, failed });
    while (this.failedHistory.length > 0 && this.failedHistory[0]!.at < start) this.failedHistory.shift();
    const { store, instance } = this.o;
    if (prev !== undefined)
      for (const [party, sample] of thirdPartyDeltas(this.config, this.routes, prev, reading))
        await this.o.thirdParties
          .add(party, instance, now, sample)
          .catch((err: unknown) => this.o.logger.warn({ err, party }, 'third-party figures not recorded'));

    const now_holding = new Set<string>();
    for (const cause of [...this.since.keys()])
      if (!conditions.some((c) => c.cause === cause)) this.since.delete(cause);
    for (const c of conditions) {
      if (!this.since.has(c.cause)) this.since.set(c.cause, now);
      if (now - this.since.get(c.cause)! < this.config.confirm_ms) continue;
      now_holding.add(c.cause);
      const t = [...this.tracked.values()].find((x) => x.cause === c.cause);
      if (t?.holding) {
        t.condition = c;
        continue;
      }
      const firstSeen = this.pending.get(c.cause) ?? this.since.get(c.cause) ?? now;
      try {
        const { id, opened } = await store.sighted(
          { cause: c.cause, kind: c.kind, title: c.title, detail: { signals: c.signals } },
          instance,
          firstSeen,
        );
        this.pending.delete(c.cause);
        const existing = this.tracked.get(id);
        if (existing !== undefined) {
          existing.holding = true;
          existing.condition = c;
        } else {
          const t: Tracked = {
            id,
            cause: c.cause,
            condition: c,
            measures: emptyMeasures(firstSeen),
            consumers: new Set(),
            subjects: new Set(),
            routes: new Set(c.routes),
            holding: true,
          };
          this.tracked.set(id, t);
          this.backfill(t, start);
        }
        if (opened) {
          this.o.logger.warn({ incident: id, cause: c.cause, signals: c.signals }, 'incident opened');
          this.o.events.emit({
            type: 'incident.opened',
            outcome: c.kind,
            data: { incident: id, cause: c.cause, title: c.title },
          });
        }
      } catch (err) {
        if (!this.pending.has(c.cause)) this.pending.set(c.cause, firstSeen);
        this.o.logger.warn({ err, cause: c.cause }, 'incident detection: could not record an incident (retrying)');
      }
    }
    for (const [cause, firstSeen] of this.pending) {
      if (now_holding.has(cause)) continue;
      this.pending.delete(cause);
      const condition = this.lastConditions.get(cause);
      if (condition !== undefined && this.unrecorded.length < 100)
        this.unrecorded.push({ condition, firstSeen, lastSeen: prev?.at ?? now });
    }
    for (const c of conditions) this.lastConditions.set(c.cause, c);
    for (const cause of [...this.lastConditions.keys()])
      if (!this.pending.has(cause)) this.lastConditions.delete(cause);
    await this.recordLate(now_holding);

    for (const t of this.tracked.values()) {
      if (t.holding && !now_holding.has(t.cause)) {
        t.holding = false;
        await store.addEvent(t.id, instance, 'cleared', { cause: t.cause }, now).catch(() => undefined);
      }
      if (prev !== undefined) this.measure(t, prev, reading, failed);
    }
    const seen = [...this.tracked.values()].filter((t) => t.holding);
    try {
      await store.stillSeen(
        seen.map((t) => t.id),
        now,
      );
      for (const t of this.tracked.values()) await store.saveMeasures(t.id, instance, t.measures, now);
      for (const t of seen)
        if (t.measures.first_seen !== undefined) await classifyAndRecord(store, t.id, this.config, this.routes, now);
      const closed = await store.closeQuiet(now - this.config.close_after_ms, instance, now);
      for (const inc of closed) {
        await classifyAndRecord(store, inc.id, this.config, this.routes, now);
        this.o.logger.info({ incident: inc.id, cause: inc.cause }, 'incident closed');
        this.o.events.emit({
          type: 'incident.closed',
          outcome: inc.kind,
          data: { incident: inc.id, cause: inc.cause },
        });
      }
      await this.recordOperatorActions(now);
      // Forget incidents closed elsewhere once they are no longer seen here.
      for (const t of [...this.tracked.values()])
        if (!t.holding && (closed.some((c) => c.id === t.id) || (await store.get(t.id))?.status === 'closed'))
          this.tracked.delete(t.id);
    } catch (err) {
      this.o.logger.warn({ err }, 'incident detection: could not update incidents (retrying)');
    }
  }

  /** Records the causes that came and went while the store could not record them. */
  private async recordLate(holding: ReadonlySet<string>): Promise<void> {
    while (this.unrecorded.length > 0) {
      const u = this.unrecorded[0]!;
      if (holding.has(u.condition.cause)) {
        this.unrecorded.shift();
        continue;
      }
      const c = u.condition;
      try {
        const { id, opened } = await this.o.store.sighted(
          { cause: c.cause, kind: c.kind, title: c.title, detail: { signals: c.signals, recorded_late: true } },
          this.o.instance,
          u.firstSeen,
        );
        await this.o.store.addEvent(id, this.o.instance, 'cleared', { cause: c.cause }, u.lastSeen);
        await this.o.store.stillSeen([id], u.lastSeen);
        this.unrecorded.shift();
        if (opened) {
          this.o.logger.warn({ incident: id, cause: c.cause }, 'incident recorded after the store came back');
          this.o.events.emit({
            type: 'incident.opened',
            outcome: c.kind,
            data: { incident: id, cause: c.cause, title: c.title },
          });
        }
      } catch {
        return; // the store still does not answer: next evaluation
      }
    }
  }

  /**
   * Puts what operators did with incidents (`kycgate incidents classify|report`, the admin API) on this instance's
   * audit trail as `incident.<action>` events: who, which incident, and the justification of an override.
   */
  private async recordOperatorActions(now: number): Promise<void> {
    const events = await this.o.store.operatorEvents(this.operatorSince);
    for (const e of events) {
      if (this.operatorSeen.has(e.id)) continue;
      this.operatorSeen.add(e.id);
      this.o.events.emit({
        type: `incident.${e.type}`,
        outcome: e.instance,
        data: { incident: e.incident, by: e.instance, ...e.detail },
      });
    }
    // Keep a minute of ids: an action recorded with a clock slightly behind is still seen once.
    const keepFrom = now - 60_000;
    this.operatorSeen.clear();
    for (const e of events) if (e.at >= keepFrom) this.operatorSeen.add(e.id);
    this.operatorSince = keepFrom;
  }

  /** Clients whose requests failed within the window before the incident was tracked here. */
  private backfill(t: Tracked, since: number): void {
    const global = t.condition.kind !== 'upstream' && t.condition.kind !== 'route';
    for (const h of this.failedHistory) {
      if (h.at < since) continue;
      for (const [route, f] of h.failed) {
        if (!t.routes.has(route)) {
          if (!global) continue;
          t.routes.add(route);
        }
        for (const c of f.consumers) addBounded(t.consumers, c, t.measures);
        for (const s of f.subjects) addBounded(t.subjects, s, t.measures);
      }
    }
  }

  /** Adds the interval prev → cur to an incident's figures on this instance. */
  private measure(t: Tracked, prev: Reading, cur: Reading, failed: Map<string, Failed>): void {
    const m = t.measures;
    m.last_seen = cur.at;
    const interval = cur.at - prev.at;
    const global = t.condition.kind !== 'upstream' && t.condition.kind !== 'route';
    for (const [name, now] of cur.routes) {
      const then = prev.routes.get(name);
      const requests = now.total - (then?.total ?? 0);
      const fails = now.failed - (then?.failed ?? 0);
      if (!t.routes.has(name)) {
        if (!(t.holding && global && fails > 0)) continue;
        t.routes.add(name);
      }
      if (!t.holding && requests === 0) continue;
      const r = (m.routes[name] ??= { requests: 0, failed: 0, downtime_ms: 0 });
      r.requests += requests;
      r.failed += fails;
      if (t.holding && requests > 0 && (fails / requests) * 100 >= this.config.classification.downtime_error_percent)
        r.downtime_ms += interval;
    }
    if (t.holding && t.condition.kind === 'upstream') {
      // No healthy target: the routes on the group are down even without traffic.
      const group = t.cause.slice('upstream:'.length);
      const targets = cur.targets.get(group);
      if (targets !== undefined && targets.total > 0 && targets.up === 0)
        for (const name of t.routes) {
          const r = (m.routes[name] ??= { requests: 0, failed: 0, downtime_ms: 0 });
          const now = cur.routes.get(name);
          const then = prev.routes.get(name);
          const requests = (now?.total ?? 0) - (then?.total ?? 0);
          const fails = (now?.failed ?? 0) - (then?.failed ?? 0);
          if (!(requests > 0 && (fails / requests) * 100 >= this.config.classification.downtime_error_percent))
            r.downtime_ms += interval;
        }
    }
    for (const name of t.routes) {
      const f = failed.get(name);
      if (f === undefined) continue;
      for (const c of f.consumers) addBounded(t.consumers, c, m);
      for (const s of f.subjects) addBounded(t.subjects, s, m);
    }
    m.consumers = [...t.consumers];
    m.subjects = [...t.subjects];
    if (!t.holding) return;
    const kind = t.condition.kind;
    if (kind === 'audit' || kind === 'store') {
      m.audit_write_errors += cur.auditWriteErrors - prev.auditWriteErrors;
      m.audit_dropped += cur.auditDropped - prev.auditDropped;
      m.webhook_store_failures += cur.webhookStoreFailures - prev.webhookStoreFailures;
    }
    if (kind === 'attack') {
      m.auth_failures += cur.authFailures - prev.authFailures;
      m.webhook_refusals += cur.webhookRefusals - prev.webhookRefusals;
    }
    if (kind === 'provider') {
      const p = t.cause.slice('provider:'.length);
      const now = cur.providerCalls.get(p);
      const then = prev.providerCalls.get(p);
      m.provider_calls += (now?.total ?? 0) - (then?.total ?? 0);
      m.provider_failed += (now?.failed ?? 0) - (then?.failed ?? 0);
    }
  }
}

function addBounded(set: Set<string>, value: string, m: Measures): void {
  if (set.has(value)) return;
  if (set.size >= MAX_CLIENTS) m.clients_overflow++;
  else set.add(value);
}
