/**
 * Which incident causes hold now, from two readings of the signals: the start of the window (`base`) and now
 * (`cur`). Pure: the detector feeds it readings, tests feed it numbers.
 */
import { LATENCY_BUCKETS } from '../../observe/metrics.js';
import type { IncidentsConfig, SloConfig } from './schema.js';
import type { Reading, RouteCounts } from './signals.js';
import type { IncidentKind } from './store.js';

export interface RouteInfo {
  name: string;
  upstream: string | undefined;
  critical: boolean;
  function: string | undefined;
}

export interface Condition {
  cause: string;
  kind: IncidentKind;
  title: string;
  /** What was seen: one entry per signal that holds. */
  signals: Array<Record<string, unknown>>;
  /** Routes whose requests the cause affects (others are added when their requests fail meanwhile). */
  routes: string[];
}

const EMPTY: RouteCounts = { total: 0, failed: 0, upstreamFailed: 0, providerFailed: 0, over: new Map(), count: 0 };
const round = (n: number) => Math.round(n * 10000) / 10000;

/** The histogram bound (seconds) a latency objective is compared at: the first at or above it. */
export function latencyBound(ms: number): number {
  const s = ms / 1000;
  return LATENCY_BUCKETS.find((b) => b >= s) ?? LATENCY_BUCKETS[LATENCY_BUCKETS.length - 1]!;
}

export function sloOf(config: IncidentsConfig, route: string): SloConfig {
  return { ...config.slo.default, ...(config.slo.routes[route] ?? {}) };
}

export function evaluate(
  config: IncidentsConfig,
  routes: readonly RouteInfo[],
  base: Reading,
  cur: Reading,
): Condition[] {
  const found = new Map<string, Condition>();
  const add = (cause: string, kind: IncidentKind, title: string, signal: Record<string, unknown>, on: string[]) => {
    let c = found.get(cause);
    if (c === undefined) found.set(cause, (c = { cause, kind, title, signals: [], routes: [] }));
    c.signals.push(signal);
    for (const r of on) if (!c.routes.includes(r)) c.routes.push(r);
  };
  const routesOf = (group: string) => routes.filter((r) => r.upstream === group).map((r) => r.name);

  for (const [group, t] of cur.targets)
    if (t.total > 0 && t.up === 0)
      add(
        `upstream:${group}`,
        'upstream',
        `Upstream ${group} unavailable`,
        { signal: 'no_healthy_target', group, targets: t.total },
        routesOf(group),
      );

  for (const [provider, state] of cur.breakers)
    if (state >= 2)
      add(
        `provider:${provider}`,
        'provider',
        `Verification provider ${provider} unavailable`,
        { signal: 'breaker_open', provider },
        [],
      );
  for (const [provider, calls] of cur.providerCalls) {
    const was = base.providerCalls.get(provider) ?? { total: 0, failed: 0 };
    const total = calls.total - was.total;
    const failed = calls.failed - was.failed;
    if (total > 0 && total >= config.providers.min_calls && (failed / total) * 100 >= config.providers.error_percent)
      add(
        `provider:${provider}`,
        'provider',
        `Verification provider ${provider} unavailable`,
        { signal: 'provider_errors', provider, calls: total, failed },
        [],
      );
  }

  for (const route of routes) {
    const now = cur.routes.get(route.name) ?? EMPTY;
    const then = base.routes.get(route.name) ?? EMPTY;
    const total = now.total - then.total;
    const slo = sloOf(config, route.name);
    if (total <= 0 || total < slo.min_requests) continue;
    const failed = now.failed - then.failed;
    const budget = 1 - slo.availability_percent / 100;
    const errorRatio = failed / total;
    if (failed > 0 && (budget <= 0 || errorRatio / budget >= slo.burn_rate)) {
      const upstreamFailed = now.upstreamFailed - then.upstreamFailed;
      const signal = {
        signal: 'error_budget_burn',
        route: route.name,
        requests: total,
        failed,
        error_ratio: round(errorRatio),
        burn_rate: budget <= 0 ? null : round(errorRatio / budget),
      };
      const providerFailed = now.providerFailed - then.providerFailed;
      const providers = [...found.values()].filter((c) => c.kind === 'provider');
      // Failures that came from forwarding are the upstream group's: one incident with its ejection, not two; those
      // of an unreachable verification provider belong to the provider's incident when it holds.
      // (The provider's own signals, breaker and call errors, open its incident: never the route's.)
      if (providerFailed * 2 >= failed) {
        for (const p of providers) add(p.cause, 'provider', p.title, signal, [route.name]);
      } else if (route.upstream !== undefined && upstreamFailed * 2 >= failed)
        add(
          `upstream:${route.upstream}`,
          'upstream',
          `Upstream ${route.upstream} unavailable`,
          signal,
          routesOf(route.upstream),
        );
      else add(`route:${route.name}`, 'route', `Route ${route.name} failing`, signal, [route.name]);
    }
    const bound = latencyBound(slo.latency_ms);
    const slow = (now.over.get(bound) ?? 0) - (then.over.get(bound) ?? 0);
    const slowBudget = 1 - slo.latency_percent / 100;
    if (slow > 0 && (slowBudget <= 0 || slow / total / slowBudget >= slo.burn_rate))
      add(
        `route:${route.name}`,
        'route',
        `Route ${route.name} failing`,
        { signal: 'latency_budget_burn', route: route.name, requests: total, slow, over_ms: bound * 1000 },
        [route.name],
      );
  }

  if (cur.storeUp === false) add('store', 'store', 'Store (database) unreachable', { signal: 'store_down' }, []);
  if (cur.redisUp === false) add('redis', 'redis', 'Redis unreachable', { signal: 'redis_down' }, []);

  const horizon = cur.at + config.certificates.expiry_days * 86_400_000;
  for (const [listener, notAfter] of cur.certificates)
    if (notAfter <= horizon)
      add(
        `certificate:${listener}`,
        'certificate',
        `Certificate of listener ${listener} expiring`,
        {
          signal: notAfter <= cur.at ? 'certificate_expired' : 'certificate_expiring',
          listener,
          not_after: new Date(notAfter).toISOString(),
        },
        [],
      );

  const writeErrors = cur.auditWriteErrors - base.auditWriteErrors;
  const dropped = cur.auditDropped - base.auditDropped;
  if (writeErrors > 0 || dropped > 0)
    add(
      'audit:journal',
      'audit',
      'Audit journal not written',
      { signal: 'audit_write_errors', write_errors: writeErrors, dropped },
      [],
    );
  if (cur.auditBacklog > config.audit.backlog_records || cur.sinksDown.length > 0)
    add(
      'audit:sinks',
      'audit',
      'Audit sinks behind',
      { signal: 'audit_sink_backlog', backlog: cur.auditBacklog, sinks_down: cur.sinksDown },
      [],
    );

  const authFailures = cur.authFailures - base.authFailures;
  if (config.attacks.auth_failures > 0 && authFailures >= config.attacks.auth_failures)
    add(
      'attack:authentication',
      'attack',
      'Spike of authentication failures',
      { signal: 'auth_failure_spike', failures: authFailures },
      [],
    );
  const refusals = cur.webhookRefusals - base.webhookRefusals;
  if (config.attacks.webhook_signature_failures > 0 && refusals >= config.attacks.webhook_signature_failures)
    add(
      'attack:webhook-signature',
      'attack',
      'Spike of webhook signature failures',
      { signal: 'webhook_signature_spike', refusals },
      [],
    );
  return [...found.values()];
}

/**
 * Webhooks late: sessions were started over `webhooks_late_ms` (from `lateBase` to `cur`) and no webhook was
 * accepted meanwhile. Only meaningful once the gateway has run that long (`lateBase` at least that old).
 */
export function webhooksLate(config: IncidentsConfig, lateBase: Reading, cur: Reading): Condition | undefined {
  const p = config.providers;
  if (p.webhooks_late_ms <= 0 || cur.at - lateBase.at < p.webhooks_late_ms) return undefined;
  const sessions = cur.sessionsStarted - lateBase.sessionsStarted;
  const accepted = cur.webhooksAccepted - lateBase.webhooksAccepted;
  if (sessions < Math.max(1, p.webhooks_min_sessions) || accepted > 0) return undefined;
  return {
    cause: 'provider:webhooks',
    kind: 'provider',
    title: 'Verification webhooks late',
    signals: [
      { signal: 'webhooks_late', sessions_started: sessions, webhooks_accepted: 0, over_ms: cur.at - lateBase.at },
    ],
    routes: [],
  };
}
