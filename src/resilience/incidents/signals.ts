/**
 * What the detector reads on each evaluation: the counters and gauges the gateway keeps anyway (request counts and
 * latency per route, upstream target health, provider calls and breakers, store and Redis state, certificate expiry,
 * audit journal and sinks, authentication and webhook refusals). Reading happens on the detector's timer, from the
 * metrics registry: the request path does nothing more than it did.
 */
import type { Registry } from 'prom-client';

interface Sample {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

export interface RouteCounts {
  total: number;
  /** 5xx answers. */
  failed: number;
  /** 5xx answers of the upstream itself or of forwarding to it (bad-gateway, gateway-timeout). */
  upstreamFailed: number;
  /** 5xx answers because a verification provider could not be reached. */
  providerFailed: number;
  /** Requests over each histogram bound, by bound (seconds). */
  over: Map<number, number>;
  /** Requests in the latency histogram. */
  count: number;
}

/** A latency histogram's count and cumulative bucket counts, by bound (seconds). */
export interface Latency {
  count: number;
  within: Map<number, number>;
}

/** One reading of the signals: cumulative counters (compared between readings) and current gauges. */
export interface Reading {
  at: number;
  routes: Map<string, RouteCounts>;
  /** Upstream groups: targets in rotation and in all. */
  targets: Map<string, { up: number; total: number }>;
  /** Provider breakers: 0 closed, 1 half open, 2 open. */
  breakers: Map<string, number>;
  providerCalls: Map<string, { total: number; failed: number }>;
  providerLatency: Map<string, Latency>;
  storeUp: boolean | undefined;
  redisUp: boolean | undefined;
  /** Listener certificates: expiry, epoch ms. */
  certificates: Map<string, number>;
  auditWriteErrors: number;
  auditDropped: number;
  auditBacklog: number;
  sinksDown: string[];
  authFailures: number;
  webhookRefusals: number;
  webhookStoreFailures: number;
  /** Verification sessions started (kyc.session.created events) and webhooks accepted, since start. */
  sessionsStarted: number;
  webhooksAccepted: number;
}

const UPSTREAM_PROBLEMS = new Set(['bad-gateway', 'gateway-timeout']);
const PROVIDER_PROBLEMS = new Set(['kyc-provider-unavailable']);
/** The KYC subsystem's built-in webhook route (kyc/subsystem.ts). */
const WEBHOOK_ROUTE = 'kyc-webhooks';

async function samples(registry: Registry, name: string): Promise<Sample[]> {
  const metric = registry.getSingleMetric(name);
  if (metric === undefined) return [];
  try {
    return ((await metric.get()) as { values: Sample[] }).values;
  } catch {
    return [];
  }
}

function sum(list: Sample[], where: (s: Sample) => boolean = () => true): number {
  let n = 0;
  for (const s of list) if (where(s)) n += s.value;
  return n;
}

export async function readSignals(registry: Registry, redisUp: boolean | undefined, at: number): Promise<Reading> {
  const routes = new Map<string, RouteCounts>();
  const route = (name: string): RouteCounts => {
    let r = routes.get(name);
    if (r === undefined)
      routes.set(name, (r = { total: 0, failed: 0, upstreamFailed: 0, providerFailed: 0, over: new Map(), count: 0 }));
    return r;
  };
  for (const s of await samples(registry, 'kycgate_requests_total')) {
    const name = s.labels.route;
    if (name === undefined) continue;
    const r = route(String(name));
    r.total += s.value;
    if (s.labels.status_class === '5xx') {
      r.failed += s.value;
      const problem = s.labels.problem;
      if (problem === undefined || UPSTREAM_PROBLEMS.has(String(problem))) r.upstreamFailed += s.value;
      else if (PROVIDER_PROBLEMS.has(String(problem))) r.providerFailed += s.value;
    }
  }
  // Cumulative buckets: requests over a bound = count − bucket(le = bound), summed over status classes.
  const counts = new Map<string, number>();
  const within = new Map<string, Map<number, number>>();
  for (const s of await samples(registry, 'kycgate_request_duration_seconds')) {
    const name = s.labels.route;
    if (name === undefined) continue;
    const key = String(name);
    if (s.metricName?.endsWith('_count')) counts.set(key, (counts.get(key) ?? 0) + s.value);
    else if (s.metricName?.endsWith('_bucket') && s.labels.le !== '+Inf') {
      let m = within.get(key);
      if (m === undefined) within.set(key, (m = new Map()));
      const le = Number(s.labels.le);
      m.set(le, (m.get(le) ?? 0) + s.value);
    }
  }
  for (const [name, total] of counts) {
    const r = route(name);
    r.count = total;
    for (const [le, n] of within.get(name) ?? []) r.over.set(le, total - n);
  }
  const targets = new Map<string, { up: number; total: number }>();
  for (const s of await samples(registry, 'kycgate_upstream_target_up')) {
    const group = String(s.labels.upstream);
    const t = targets.get(group) ?? { up: 0, total: 0 };
    t.total++;
    if (s.value > 0) t.up++;
    targets.set(group, t);
  }
  const breakers = new Map<string, number>();
  for (const s of await samples(registry, 'kycgate_provider_breaker_state'))
    breakers.set(String(s.labels.provider), s.value);
  const providerCalls = new Map<string, { total: number; failed: number }>();
  for (const s of await samples(registry, 'kycgate_provider_requests_total')) {
    const p = String(s.labels.provider);
    const c = providerCalls.get(p) ?? { total: 0, failed: 0 };
    c.total += s.value;
    if (s.labels.outcome !== 'ok') c.failed += s.value;
    providerCalls.set(p, c);
  }
  const providerLatency = new Map<string, Latency>();
  for (const s of await samples(registry, 'kycgate_provider_duration_seconds')) {
    const p = String(s.labels.provider);
    let l = providerLatency.get(p);
    if (l === undefined) providerLatency.set(p, (l = { count: 0, within: new Map() }));
    if (s.metricName?.endsWith('_count')) l.count += s.value;
    else if (s.metricName?.endsWith('_bucket') && s.labels.le !== '+Inf') {
      const le = Number(s.labels.le);
      l.within.set(le, (l.within.get(le) ?? 0) + s.value);
    }
  }
  const store = await samples(registry, 'kycgate_store_up');
  const certificates = new Map<string, number>();
  for (const s of await samples(registry, 'kycgate_tls_certificate_not_after_seconds'))
    certificates.set(String(s.labels.listener), s.value * 1000);
  const webhooks = await samples(registry, 'kycgate_webhooks_total');
  return {
    at,
    routes,
    targets,
    breakers,
    providerCalls,
    providerLatency,
    storeUp: store.length === 0 ? undefined : sum(store) > 0,
    redisUp,
    certificates,
    auditWriteErrors: sum(await samples(registry, 'kycgate_audit_journal_write_errors_total')),
    auditDropped: sum(await samples(registry, 'kycgate_audit_records_dropped_total')),
    auditBacklog: sum(await samples(registry, 'kycgate_audit_backlog_records')),
    sinksDown: (await samples(registry, 'kycgate_audit_sink_up'))
      .filter((s) => s.value === 0)
      .map((s) => String(s.labels.sink ?? 'sink')),
    authFailures: sum(await samples(registry, 'kycgate_auth_failures_total')),
    webhookRefusals: sum(webhooks, (s) => s.labels.result === 'refused'),
    // A webhook the store could not take is answered 5xx on the built-in webhook route (the provider must deliver
    // it again: lost if it gives up).
    webhookStoreFailures: routes.get(WEBHOOK_ROUTE)?.failed ?? 0,
    sessionsStarted: sum(
      await samples(registry, 'kycgate_events_total'),
      (s) => s.labels.type === 'kyc.session.created',
    ),
    webhooksAccepted: sum(webhooks, (s) => s.labels.result === 'accepted'),
  };
}
