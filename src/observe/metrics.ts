/**
 * Prometheus metrics, served at /metrics on the admin listener from a registry of our own (never prom-client's
 * global one). On the request path a finished request costs one Map lookup (per-route series are created once and
 * cached), an increment and a histogram observation on plain cells (fast-metrics.ts), with no label hashing.
 *
 * Events consumed (emitters: keep these shapes; see docs/AUDIT.md):
 *   auth.failure        outcome = reason                     → kycgate_auth_failures_total{reason}
 *   kyc.decision        outcome = approved|declined|...      → kycgate_decisions_total{source="kyc",outcome}
 *   ratelimit.rejected  route                                → kycgate_ratelimit_rejections_total{route}
 *   webhook.accepted / webhook.refused  outcome              → kycgate_webhooks_total{result,outcome}
 *   provider.call       data {provider, latency_ms}, outcome = ok|error|timeout
 *                                                            → kycgate_provider_requests_total, _duration_seconds
 *   provider.breaker    data {provider, state: closed|half_open|open} → kycgate_provider_breaker_state
 *   any event           type                                 → kycgate_events_total{type}
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { performance } from 'node:perf_hooks';
import type { RequestContext } from '../pipeline/context.js';
import type { EventListener, GatewayEvent, RefusedRequest } from '../pipeline/events.js';
import type { Journal } from '../audit/journal.js';
import type { SinkRunner } from '../audit/sinks.js';
import type { ListenerCertificateInfo, UpstreamTargetInfo } from '../modules.js';
import { FastCounter, FastHistogram, type CounterCell, type HistogramCell } from './fast-metrics.js';

const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Index in STATUS_CLASSES of a status (0, for a request that ended before any status, counts as 1xx). */
function statusClass(status: number): number {
  return Math.min(Math.max(Math.floor(status / 100), 1), 5) - 1;
}

const BREAKER_STATE: Record<string, number> = { closed: 0, half_open: 1, 'half-open': 1, open: 2 };

interface RouteChildren {
  count: CounterCell[];
  latency: HistogramCell[];
}

export interface MetricsSources {
  journal: () => Journal | undefined;
  sinks: () => readonly SinkRunner[];
  certificates: () => readonly ListenerCertificateInfo[];
  upstreams: () => readonly UpstreamTargetInfo[];
  /** Whether the store answers (undefined without a store). */
  storeUp?: () => boolean | undefined;
}

export class GatewayMetrics implements EventListener {
  readonly registry = new Registry();
  private readonly requests: FastCounter;
  private readonly latency: FastHistogram;
  private readonly refused: Counter<'problem'>;
  private readonly decisions: FastCounter;
  private readonly authFailures: Counter<'reason'>;
  private readonly rateLimited: Counter<'route'>;
  private readonly webhooks: Counter<'result' | 'outcome'>;
  private readonly providerCalls: Counter<'provider' | 'outcome'>;
  private readonly providerLatency: Histogram<'provider'>;
  private readonly breaker: Gauge<'provider'>;
  private readonly events: FastCounter;
  private readonly eventChildren = new Map<string, CounterCell>();
  private readonly kycDecisionChildren = new Map<string, CounterCell>();
  private readonly byRoute = new Map<string, RouteChildren>();
  private readonly routeDecisions = new Map<string, CounterCell>();
  private readonly problemCells = new Map<string, CounterCell>();
  private readonly staleDecisions: FastCounter;
  private readonly staleChildren = new Map<string, CounterCell>();

  constructor(sources: MetricsSources) {
    const registers = [this.registry];
    this.requests = new FastCounter(
      'kycgate_requests_total',
      'Every request, by route and status class; answers the gateway made itself (refusals, upstream failures, client disconnects as 499) also carry their problem type, and requests refused before routing carry no route.',
      ['route', 'status_class', 'problem'],
    ).register(this.registry);
    this.latency = new FastHistogram('kycgate_request_duration_seconds', 'Time from arrival to the end of the exchange.', ['route', 'status_class'], LATENCY_BUCKETS).register(this.registry);
    this.refused = new Counter({ name: 'kycgate_requests_refused_total', help: 'Requests refused before routing (framing, path, no route), by problem kind.', labelNames: ['problem'], registers });
    this.decisions = new FastCounter('kycgate_decisions_total', 'Access decisions by outcome (source "route": the decision recorded on the request; "kyc": kyc.decision events).', ['source', 'outcome']).register(this.registry);
    this.authFailures = new Counter({ name: 'kycgate_auth_failures_total', help: 'Authentication failures by reason (auth.failure events).', labelNames: ['reason'], registers });
    this.rateLimited = new Counter({ name: 'kycgate_ratelimit_rejections_total', help: 'Requests rejected by rate limits (ratelimit.rejected events).', labelNames: ['route'], registers });
    this.webhooks = new Counter({ name: 'kycgate_webhooks_total', help: 'Webhooks accepted or refused, by outcome.', labelNames: ['result', 'outcome'], registers });
    this.providerCalls = new Counter({ name: 'kycgate_provider_requests_total', help: 'Calls to identity providers by outcome (provider.call events).', labelNames: ['provider', 'outcome'], registers });
    this.providerLatency = new Histogram({ name: 'kycgate_provider_duration_seconds', help: 'Identity provider call latency.', labelNames: ['provider'], buckets: LATENCY_BUCKETS, registers });
    this.breaker = new Gauge({ name: 'kycgate_provider_breaker_state', help: 'Circuit breaker per provider: 0 closed, 1 half open, 2 open.', labelNames: ['provider'], registers });
    this.events = new FastCounter('kycgate_events_total', 'Gateway events by type.', ['type']).register(this.registry);
    this.staleDecisions = new FastCounter(
      'kycgate_stale_decisions_total',
      'Requests decided on cached state served past its refresh time because the store could not be reached, by kind of state (api_key, kyc_subject).',
      ['state'],
    ).register(this.registry);
    new Gauge({
      name: 'kycgate_store_up',
      help: '1 while the store answers, 0 during an outage (requests that must read it answer 503; cached state may be served stale).',
      registers,
      collect() {
        const up = sources.storeUp?.();
        if (up !== undefined) this.set(up ? 1 : 0);
      },
    });

    new Gauge({
      name: 'kycgate_audit_backlog_records',
      help: 'Journal records not yet delivered, per sink.',
      labelNames: ['sink'],
      registers,
      collect() {
        this.reset();
        for (const s of sources.sinks()) this.set({ sink: s.config.name }, s.backlog);
      },
    });
    new Gauge({
      name: 'kycgate_audit_sink_up',
      help: '1 when the sink\'s last delivery succeeded, 0 while it is failing.',
      labelNames: ['sink'],
      registers,
      collect() {
        this.reset();
        for (const s of sources.sinks()) this.set({ sink: s.config.name }, s.down ? 0 : 1);
      },
    });
    // Counts since start that other components keep are exported as counters (read at scrape time), so rate()
    // and increase() treat a restart as a reset. prom-client counters only go up: each scrape resets and re-adds.
    const countSinceStart = (name: string, help: string, labelNames: string[], read: () => Iterable<[Record<string, string>, number]> | undefined) =>
      new Counter({
        name,
        help,
        labelNames,
        registers,
        collect() {
          const values = read();
          if (values === undefined) return;
          this.reset();
          for (const [labels, value] of values) this.inc(labels, value);
        },
      });
    const perSink = (read: (s: SinkRunner) => number) => () =>
      Array.from(sources.sinks(), (s): [Record<string, string>, number] => [{ sink: s.config.name }, read(s)]);
    countSinceStart('kycgate_audit_sink_delivered_records_total', 'Records delivered by each sink since start.', ['sink'], perSink((s) => s.delivered));
    countSinceStart('kycgate_audit_sink_failures_total', 'Failed delivery attempts of each sink since start.', ['sink'], perSink((s) => s.failures));
    const journalGauge = (name: string, help: string, read: (j: Journal) => number) =>
      new Gauge({
        name,
        help,
        registers,
        collect() {
          const j = sources.journal();
          if (j) this.set(read(j));
        },
      });
    const journalCounter = (name: string, help: string, read: (j: Journal) => number) =>
      countSinceStart(name, help, [], () => {
        const j = sources.journal();
        return j ? [[{}, read(j)]] : undefined;
      });
    journalGauge('kycgate_audit_journal_bytes', 'Bytes in journal segments on disk.', (j) => j.stats.bytes);
    journalGauge('kycgate_audit_disk_alarm', '1 when the journal is over audit.disk_alarm_bytes.', (j) => (j.stats.alarm ? 1 : 0));
    journalCounter('kycgate_audit_records_written_total', 'Records written and fsynced since start.', (j) => j.stats.records);
    journalCounter('kycgate_audit_commits_total', 'Group commits (one journal write and fsync each) since start: about one per audit.group_commit_ms under load.', (j) => j.stats.batches);
    journalGauge('kycgate_audit_records_pending', 'Records waiting for the next group commit.', (j) => j.pendingCount);
    journalCounter('kycgate_audit_records_dropped_total', 'Records dropped because the journal could not be written and memory was full (should stay 0).', (j) => j.stats.dropped);
    journalCounter('kycgate_audit_journal_write_errors_total', 'Failed journal writes since start.', (j) => j.stats.writeErrors);
    journalGauge('kycgate_audit_last_seq', 'Seq of the last committed record.', (j) => j.committed.seq);
    new Gauge({
      name: 'kycgate_tls_certificate_not_after_seconds',
      help: 'Expiry (Unix seconds) of the certificate each TLS listener serves.',
      labelNames: ['listener'],
      registers,
      collect() {
        this.reset();
        for (const c of sources.certificates()) if (c.notAfter) this.set({ listener: c.listener }, Math.floor(c.notAfter.getTime() / 1000));
      },
    });
    new Gauge({
      name: 'kycgate_tls_certificate_info',
      help: 'Always 1: the certificate each TLS listener serves (serial, SPIFFE ID when it is an SVID, source file or workload_api).',
      labelNames: ['listener', 'serial', 'spiffe_id', 'source'],
      registers,
      collect() {
        this.reset();
        for (const c of sources.certificates()) {
          if (c.served) this.set({ listener: c.listener, serial: c.served.serial, spiffe_id: c.served.spiffeId ?? '', source: c.served.source }, 1);
        }
      },
    });
    new Gauge({
      name: 'kycgate_tls_certificate_last_rotation_seconds',
      help: 'When (Unix seconds) each TLS listener last put a different certificate in service; absent until the first rotation.',
      labelNames: ['listener'],
      registers,
      collect() {
        this.reset();
        for (const c of sources.certificates()) if (c.rotatedAt) this.set({ listener: c.listener }, Math.floor(c.rotatedAt.getTime() / 1000));
      },
    });
    new Gauge({
      name: 'kycgate_upstream_target_up',
      help: 'Whether each upstream target takes traffic: 1 in rotation, 0 out (passive ejection or failed health probes).',
      labelNames: ['upstream', 'target'],
      registers,
      collect() {
        this.reset();
        for (const t of sources.upstreams()) this.set({ upstream: t.upstream, target: t.target }, t.inRotation ? 1 : 0);
      },
    });
    countSinceStart('kycgate_tls_certificate_rotations_total', 'Certificates put in service by each TLS listener since start (file changes or Workload API updates).', ['listener'], () =>
      Array.from(sources.certificates(), (c): [Record<string, string>, number] => [{ listener: c.listener }, c.rotations ?? 0]),
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
    if (cell === undefined) this.problemCells.set(key, (cell = this.requests.cell(route, STATUS_CLASSES[statusClass(status)], kind)));
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
    const stale = ctx.staleState;
    if (stale !== undefined) {
      for (const what of stale) {
        let cell = this.staleChildren.get(what);
        if (cell === undefined) this.staleChildren.set(what, (cell = this.staleDecisions.cell(what)));
        cell.value++;
      }
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
    const data = event.data ?? {};
    switch (event.type) {
      case 'auth.failure':
        this.authFailures.labels(event.outcome ?? 'unknown').inc();
        break;
      case 'kyc.decision': {
        const outcome = event.outcome ?? 'unknown';
        let child = this.kycDecisionChildren.get(outcome);
        if (child === undefined) this.kycDecisionChildren.set(outcome, (child = this.decisions.cell('kyc', outcome)));
        child.value++;
        break;
      }
      case 'ratelimit.rejected':
        this.rateLimited.labels(event.route ?? 'unknown').inc();
        break;
      case 'webhook.accepted':
      case 'webhook.refused':
        this.webhooks.labels(event.type.slice(8), event.outcome ?? 'unknown').inc();
        break;
      case 'provider.call': {
        const provider = typeof data.provider === 'string' ? data.provider : 'unknown';
        this.providerCalls.labels(provider, event.outcome ?? 'unknown').inc();
        if (typeof data.latency_ms === 'number') this.providerLatency.labels(provider).observe(data.latency_ms / 1000);
        break;
      }
      case 'provider.breaker': {
        const provider = typeof data.provider === 'string' ? data.provider : 'unknown';
        const state = BREAKER_STATE[String(data.state)];
        if (state !== undefined) this.breaker.labels(provider).set(state);
        break;
      }
    }
  }
}
