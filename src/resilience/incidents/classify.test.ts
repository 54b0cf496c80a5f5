/**
 * Detection and classification from numbers: which causes hold for given readings, and how each criterion of
 * Delegated Regulation (EU) 2024/1772 is met (or not) by given figures, with the regulation's thresholds.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigValidator } from '../../config/load.js';
import { POLICIES, SUBSYSTEMS } from '../../bundled.js';
import { classify } from './classify.js';
import { evaluate, webhooksLate, type RouteInfo } from './conditions.js';
import { mergeMeasures, emptyMeasures, type Measures } from './measures.js';
import type { IncidentsConfig } from './schema.js';
import type { Reading, RouteCounts } from './signals.js';
import type { Incident } from './store.js';

const H = 3_600_000;

function defaults(incidents: Record<string, unknown> = {}): IncidentsConfig {
  const config = new ConfigValidator(SUBSYSTEMS, POLICIES).validate({
    listeners: [{ name: 'main', port: 0 }],
    incidents,
  });
  return config.incidents as IncidentsConfig;
}

function reading(at: number, routes: Record<string, Partial<RouteCounts>>, extra: Partial<Reading> = {}): Reading {
  return {
    at,
    routes: new Map(
      Object.entries(routes).map(([k, v]) => [
        k,
        { total: 0, failed: 0, upstreamFailed: 0, providerFailed: 0, over: new Map(), count: 0, ...v },
      ]),
    ),
    targets: new Map(),
    breakers: new Map(),
    providerCalls: new Map(),
    providerLatency: new Map(),
    storeUp: true,
    redisUp: undefined,
    certificates: new Map(),
    auditWriteErrors: 0,
    auditDropped: 0,
    auditBacklog: 0,
    sinksDown: [],
    authFailures: 0,
    webhookRefusals: 0,
    webhookStoreFailures: 0,
    sessionsStarted: 0,
    webhooksAccepted: 0,
    ...extra,
  };
}

const ROUTES: RouteInfo[] = [
  { name: 'payments', upstream: 'core', critical: true, function: 'payments' },
  { name: 'reports', upstream: 'core', critical: false, function: 'reporting' },
  { name: 'static', upstream: undefined, critical: false, function: undefined },
];

test('conditions: error budget burn by the upstream is one upstream incident; slow routes and the rest are their own', () => {
  const config = defaults();
  const base = reading(0, {});
  const cur = reading(60_000, {
    payments: { total: 100, failed: 30, upstreamFailed: 30 },
    reports: { total: 100, failed: 12, upstreamFailed: 12 },
    static: { total: 100, failed: 0, over: new Map([[1, 60]]) },
  });
  const found = evaluate(config, ROUTES, base, cur);
  assert.deepEqual(
    found.map((c) => c.cause),
    ['upstream:core', 'route:static'],
  );
  assert.equal(found[0]!.signals.length, 2, 'both routes burning their budget are signals of the one incident');
  assert.deepEqual(found[1]!.signals[0]!.signal, 'latency_budget_burn');
  // 5 % failing against 99 % is a burn rate of 5: under the default 10.
  assert.deepEqual(
    evaluate(config, ROUTES, base, reading(60_000, { payments: { total: 100, failed: 5, upstreamFailed: 5 } })),
    [],
  );
  // Too few requests never raise one.
  assert.deepEqual(
    evaluate(config, ROUTES, base, reading(60_000, { payments: { total: 10, failed: 10, upstreamFailed: 10 } })),
    [],
  );
});

test('conditions: provider, store, certificates, audit and attacks', () => {
  const config = defaults();
  const base = reading(0, {}, { authFailures: 1000 });
  const cur = reading(
    60_000,
    { payments: { total: 100, failed: 50, providerFailed: 50 } },
    {
      breakers: new Map([['didit', 2]]),
      storeUp: false,
      certificates: new Map([
        ['main', 60_000 + 3 * 86_400_000],
        ['other', 60_000 + 30 * 86_400_000],
      ]),
      auditWriteErrors: 1,
      authFailures: 1300,
    },
  );
  const found = evaluate(config, ROUTES, base, cur);
  assert.deepEqual(found.map((c) => c.cause).sort(), [
    'attack:authentication',
    'audit:journal',
    'certificate:main',
    'provider:didit',
    'store',
  ]);
  const provider = found.find((c) => c.cause === 'provider:didit')!;
  assert.deepEqual(provider.routes, ['payments'], "the route's provider failures are the provider's incident");
});

test('conditions: webhooks late when sessions start and no webhook arrives for webhooks_late_ms', () => {
  const config = defaults({ providers: { webhooks_late_ms: 600_000, webhooks_min_sessions: 3 } });
  const base = reading(0, {}, { sessionsStarted: 10, webhooksAccepted: 7 });
  const late = webhooksLate(config, base, reading(600_000, {}, { sessionsStarted: 14, webhooksAccepted: 7 }));
  assert.equal(late?.cause, 'provider:webhooks');
  assert.ok(late);
  assert.equal(late.signals[0]!.sessions_started, 4);
  assert.equal(
    webhooksLate(config, base, reading(600_000, {}, { sessionsStarted: 14, webhooksAccepted: 8 })),
    undefined,
  );
  assert.equal(
    webhooksLate(config, base, reading(600_000, {}, { sessionsStarted: 12, webhooksAccepted: 7 })),
    undefined,
  );
  assert.equal(
    webhooksLate(config, base, reading(500_000, {}, { sessionsStarted: 20, webhooksAccepted: 7 })),
    undefined,
    'not before the gateway has watched that long',
  );
});

function incident(over: Partial<Incident> = {}): Incident {
  return {
    id: 'inc_0000000000000001',
    cause: 'upstream:core',
    kind: 'upstream',
    title: 'Upstream core unavailable',
    status: 'closed',
    detectedAt: 0,
    detectedBy: 'a',
    lastSeenAt: 0,
    closedAt: 3 * H,
    classification: undefined,
    classifiedAt: undefined,
    override: undefined,
    operator: {},
    submissions: {},
    ...over,
  };
}

function figures(m: Partial<Measures>, instance = 'a') {
  return { instance, figures: { ...emptyMeasures(0), last_seen: 3 * H, ...m } };
}

test('classification: critical service plus two criteria is major; the reasons say which', () => {
  const config = defaults({
    classification: { functions: { payments: { clients: 1000, daily_transactions: 10_000 } } },
  });
  const merged = mergeMeasures([
    figures({
      routes: { payments: { requests: 5000, failed: 1500, downtime_ms: 2.5 * H } },
      consumers: ['shop'],
      subjects: ['sub_1'],
    }),
    figures(
      {
        routes: { payments: { requests: 4000, failed: 1000, downtime_ms: 2 * H } },
        consumers: ['shop', 'bank'],
        subjects: [],
      },
      'b',
    ),
  ]);
  assert.equal(merged.consumers, 2, 'distinct across instances');
  assert.equal(merged.routes.payments!.failed, 2500);
  const c = classify(incident(), merged, ROUTES, config.classification, [], 3 * H);
  assert.equal(c.criteria.critical_services.met, true);
  assert.equal(c.criteria.clients_transactions.met, true, c.criteria.clients_transactions.reason);
  assert.equal(c.criteria.clients_transactions.transactions_percent, 25);
  assert.equal(c.criteria.duration_downtime.met, true, 'critical service down 2.5 h > 2 h');
  assert.equal(c.criteria.reputational_impact.source, 'not_assessed');
  assert.equal(c.major, true);
  assert.match(
    c.reasons[0]!,
    /major: critical services affected and 2 criteria met: clients_transactions, duration_downtime/,
  );
});

test('classification: no critical service is never major; one criterion is not enough; operator facts and override count', () => {
  const config = defaults({ classification: { clients_total: 100 } });
  const onReports = mergeMeasures([
    figures({ routes: { reports: { requests: 10, failed: 10, downtime_ms: 30 * H } }, consumers: ['a', 'b', 'c'] }),
  ]);
  const notCritical = classify(incident({ closedAt: 30 * H }), onReports, ROUTES, config.classification, [], 30 * H);
  assert.equal(notCritical.major, false);
  assert.match(notCritical.reasons[0]!, /no critical service affected/);

  const short = mergeMeasures([figures({ routes: { payments: { requests: 100, failed: 100, downtime_ms: 3 * H } } })]);
  const one = classify(incident(), short, ROUTES, config.classification, [], 3 * H);
  assert.deepEqual(one.criteria_met, ['critical_services', 'duration_downtime']);
  assert.equal(one.major, false);

  const assessed = classify(
    incident({ operator: { member_states: ['LU', 'BE'] } }),
    short,
    ROUTES,
    config.classification,
    [incident({ id: 'inc_0000000000000000', detectedAt: -30 * 24 * H })],
    3 * H,
  );
  assert.equal(assessed.major, true, 'downtime and geographical spread');
  assert.deepEqual(assessed.recurring.linked, ['inc_0000000000000000']);

  const overridden = classify(
    incident({ override: { major: false, justification: 'planned failover', by: 'alice', at: 3 * H } }),
    short,
    ROUTES,
    config.classification,
    [],
    3 * H,
  );
  assert.equal(overridden.major, false);
  assert.equal(overridden.computed_major, false);
  assert.match(overridden.reasons.at(-1)!, /overridden by alice: not major \(planned failover\)/);
  const malicious = classify(
    incident({ operator: { malicious_access: true } }),
    short,
    ROUTES,
    config.classification,
    [],
    3 * H,
  );
  assert.equal(malicious.major, true, 'Art. 8(1)(a)');
});
