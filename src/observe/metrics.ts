/**
 * The core's request metrics, in the process's registry (pipeline/metrics.ts, served at /metrics on the admin
 * listener): every request by route, status class and problem type, its duration, refusals before routing, the
 * decision recorded on each request, and every event by type. On the request path a finished request costs one Map
 * lookup (per-route series are created once and cached), an increment and a histogram observation on plain cells
 * (fast-metrics.ts), with no label hashing. Features register their own metrics in their folders (auth, kyc,
 * rate-limit, store, audit, gateway).
 */
import type { Counter, Registry } from 'prom-client';
import { performance } from 'node:perf_hooks';
import type { RequestContext } from '../pipeline/context.js';
import type { EventListener, GatewayEvent, RefusedRequest } from '../pipeline/events.js';
import type { Metrics } from '../pipeline/metrics.js';
import { FastCounter, FastHistogram, type CounterCell, type HistogramCell } from './fast-metrics.js';

const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;
export const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Index in STATUS_CLASSES of a status (0, for a request that ended before any status, counts as 1xx). */
function statusClass(status: number): number {
  return Math.min(Math.max(Math.floor(status / 100), 1), 5) - 1;
}

interface RouteChildren {
  count: CounterCell[];
  latency: HistogramCell[];
}

/** Access decisions by source and outcome: the core counts those recorded on requests, the KYC subsystem its own. */
export function decisionsCounter(metrics: Metrics): FastCounter {
  return metrics.get('kycgate_decisions_total', (r: Registry) =>
    new FastCounter(
      'kycgate_decisions_total',
      'Access decisions by outcome (source "route": the decision recorded on the request; "kyc": kyc.decision events).',
      ['source', 'outcome'],
    ).register(r),
  );
}

export class RequestMetrics implements EventListener {
  private readonly requests: FastCounter;
  private readonly latency: FastHistogram;
  private readonly refused: Counter<'problem'>;
  private readonly decisions: FastCounter;
  private readonly events: FastCounter;
  private readonly eventChildren = new Map<string, CounterCell>();
  private readonly byRoute = new Map<string, RouteChildren>();
  private readonly routeDecisions = new Map<string, CounterCell>();
  private readonly problemCells = new Map<string, CounterCell>();

  constructor(metrics: Metrics) {
    this.requests = metrics.get('kycgate_requests_total', (r) =>
      new FastCounter(
        'kycgate_requests_total',
        'Every request, by route and status class; answers the gateway made itself (refusals, upstream ' +
          'failures, client disconnects as 499) also carry their problem type, and requests refused before ' +
          'routing carry no route.',
        ['route', 'status_class', 'problem'],
      ).register(r),
    );
    this.latency = metrics.get('kycgate_request_duration_seconds', (r) =>
      new FastHistogram(
        'kycgate_request_duration_seconds',
        'Time from arrival to the end of the exchange.',
        ['route', 'status_class'],
        LATENCY_BUCKETS,
      ).register(r),
    );
    this.refused = metrics.counter(
      'kycgate_requests_refused_total',
      'Requests refused before routing (framing, path, no route), by problem kind.',
      ['problem'],
    );
    this.decisions = decisionsCounter(metrics);
    this.events = metrics.get('kycgate_events_total', (r) =>
      new FastCounter('kycgate_events_total', 'Gateway events by type.', ['type']).register(r),
    );
  }

  private children(route: string): RouteChildren {
    let c = this.byRoute.get(route);
    if (c === undefined) {
      c = {
        count: STATUS_CLASSES.map((s) => this.requests.cell(route, s)),
        latency: STATUS_CLASSES.map((s) => this.latency.cell(route, s)),
      };
      this.byRoute.set(route, c);
    }
    return c;
  }

  /** The series of gateway-made answers (route undefined: refused before routing), created on first use. */
  private problemCell(route: string | undefined, status: number, kind: string): CounterCell {
    const key = (route ?? '') + '\u0000' + status + '\u0000' + kind;
    let cell = this.problemCells.get(key);
    if (cell === undefined)
      this.problemCells.set(key, (cell = this.requests.cell(route, STATUS_CLASSES[statusClass(status)], kind)));
    return cell;
  }

  onRequestComplete(ctx: RequestContext): void {
    const c = this.children(ctx.route.name);
    const cls = statusClass(ctx.status);
    const kind = ctx.errorKind;
    if (kind === undefined) c.count[cls]!.value++;
    else this.problemCell(ctx.route.name, ctx.status, kind).value++;
    this.latency.observe(c.latency[cls]!, (performance.now() - ctx.startedAt) / 1000);
    if (ctx.decision !== undefined) {
      const outcome = ctx.decision.outcome;
      let child = this.routeDecisions.get(outcome);
      if (child === undefined) this.routeDecisions.set(outcome, (child = this.decisions.cell('route', outcome)));
      child.value++;
    }
  }

  onRequestRefused(info: RefusedRequest): void {
    this.refused.labels(info.problem).inc();
    this.problemCell(undefined, info.status, info.problem).value++;
  }

  onEvent(event: GatewayEvent): void {
    // Series are looked up once per event type and kept.
    let byType = this.eventChildren.get(event.type);
    if (byType === undefined) this.eventChildren.set(event.type, (byType = this.events.cell(event.type)));
    byType.value++;
  }
}
