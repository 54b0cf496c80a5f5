/**
 * Classification of an ICT-related incident per Commission Delegated Regulation (EU) 2024/1772: an incident is
 * major when it affected critical services (Art. 6, here: a route marked `critical`) and either there was malicious
 * unauthorised access that may result in data losses (Art. 8(1)(a)), or the materiality thresholds of two or more
 * of the criteria of Art. 9 are met (Art. 8(1)(b)). The gateway computes what it measured (clients and
 * transactions, duration and downtime, data losses); the operator adds what it cannot (reputational impact,
 * geographical spread, economic impact, confirmed malicious access) and may override the result with a
 * justification. Pure: the figures come in, the classification goes out.
 */
import type { MergedMeasures } from './measures.js';
import type { RouteInfo } from './conditions.js';
import type { IncidentsConfig } from './schema.js';
import type { Incident, OperatorInput, Override } from './store.js';

export interface Criterion {
  met: boolean;
  /** measured: from the gateway's figures; operator: from what the operator entered; not_assessed: neither. */
  source: 'measured' | 'operator' | 'not_assessed';
  reason: string;
  [figure: string]: unknown;
}

export interface Classification {
  major: boolean;
  computed_major: boolean;
  reasons: string[];
  criteria_met: string[];
  criteria: {
    critical_services: Criterion;
    malicious_access: Criterion;
    clients_transactions: Criterion;
    reputational_impact: Criterion;
    duration_downtime: Criterion;
    geographical_spread: Criterion;
    data_losses: Criterion;
    economic_impact: Criterion;
  };
  affected: {
    routes: string[];
    functions: string[];
    critical_routes: string[];
    route_functions: Record<string, string | null>;
  };
  recurring: { linked: string[]; recurring: boolean };
  override: Override | null;
  figures: MergedMeasures;
  duration_ms: number;
}

const HOUR = 3_600_000;
const pct = (n: number) => Math.round(n * 100) / 100;

export function classify(
  incident: Incident,
  figures: MergedMeasures,
  routes: readonly RouteInfo[],
  config: IncidentsConfig['classification'],
  earlier: readonly Incident[],
  now: number,
): Classification {
  const op: OperatorInput = incident.operator;
  const byName = new Map(routes.map((r) => [r.name, r]));
  const affectedRoutes = Object.entries(figures.routes)
    .filter(([, r]) => r.failed > 0 || r.downtime_ms > 0)
    .map(([name]) => name)
    .sort();
  const critical = affectedRoutes.filter((r) => byName.get(r)?.critical === true);
  const functions = [
    ...new Set(affectedRoutes.map((r) => byName.get(r)?.function).filter((f) => f !== undefined)),
  ].sort();

  const criticalServices: Criterion = {
    met: critical.length > 0,
    source: 'measured',
    reason:
      critical.length > 0
        ? `requests failed on routes supporting critical or important functions: ${critical.join(', ')}`
        : 'no route marked critical failed',
    routes: critical,
  };

  const maliciousMet = op.malicious_access === true;
  const malicious: Criterion = {
    met: maliciousMet,
    source: op.malicious_access === undefined ? 'not_assessed' : 'operator',
    reason: maliciousMet
      ? 'the operator confirmed malicious unauthorised access that may result in data losses'
      : incident.kind === 'attack'
        ? 'refusals spiked (an attempt); the operator must confirm whether access was gained'
        : 'no malicious unauthorised access reported',
  };

  const clients = figures.consumers + figures.subjects;
  const fnClients = functions.reduce((n, f) => n + (config.functions[f]?.clients ?? 0), 0);
  const clientsTotal = fnClients > 0 ? fnClients : config.clients_total;
  const clientShare = clientsTotal > 0 ? (clients / clientsTotal) * 100 : null;
  const transactions = affectedRoutes.reduce((n, r) => n + (figures.routes[r]?.failed ?? 0), 0);
  const daily = functions.reduce((n, f) => n + (config.functions[f]?.daily_transactions ?? 0), 0);
  const txShare = daily > 0 ? (transactions / daily) * 100 : null;
  const clientsReasons: string[] = [];
  if (clientShare !== null && clientShare > config.clients_percent)
    clientsReasons.push(`${pct(clientShare)} % of clients affected (threshold ${config.clients_percent} %)`);
  if (clients > config.clients_absolute)
    clientsReasons.push(`${clients} clients affected (threshold ${config.clients_absolute})`);
  if (txShare !== null && txShare > config.transactions_percent)
    clientsReasons.push(
      `${pct(txShare)} % of daily transactions affected (threshold ${config.transactions_percent} %)`,
    );
  const clientsTx: Criterion = {
    met: clientsReasons.length > 0,
    source: 'measured',
    reason:
      clientsReasons.length > 0
        ? clientsReasons.join('; ')
        : `${clients} clients and ${transactions} transactions affected: below the thresholds` +
          (clientsTotal === 0 ? ' (total clients not configured: share not assessed)' : '') +
          (daily === 0 ? ' (daily transactions not configured: share not assessed)' : ''),
    consumers: figures.consumers,
    subjects: figures.subjects,
    clients_affected: clients,
    clients_total: clientsTotal,
    clients_percent: clientShare === null ? null : pct(clientShare),
    transactions_affected: transactions,
    daily_transactions: daily,
    transactions_percent: txShare === null ? null : pct(txShare),
  };

  const start = Math.min(incident.detectedAt, figures.first_seen || incident.detectedAt);
  const end = incident.closedAt ?? now;
  const duration = Math.max(0, end - start);
  const downtime = critical.reduce((n, r) => Math.max(n, figures.routes[r]?.downtime_ms ?? 0), 0);
  const durationMet = duration > config.duration_hours * HOUR;
  const downtimeMet = downtime > config.downtime_hours * HOUR;
  const durationDowntime: Criterion = {
    met: durationMet || downtimeMet,
    source: 'measured',
    reason:
      [
        durationMet ? `lasted ${pct(duration / HOUR)} h (threshold ${config.duration_hours} h)` : '',
        downtimeMet ? `critical service down ${pct(downtime / HOUR)} h (threshold ${config.downtime_hours} h)` : '',
      ]
        .filter((s) => s !== '')
        .join('; ') ||
      `lasted ${pct(duration / HOUR)} h, critical service down ${pct(downtime / HOUR)} h: below the thresholds`,
    duration_ms: duration,
    downtime_ms: downtime,
  };

  const lost = figures.audit_dropped + figures.audit_write_errors + figures.webhook_store_failures;
  const dataLosses: Criterion = {
    met: lost > 0,
    source: 'measured',
    reason:
      lost > 0
        ? `audit records dropped ${figures.audit_dropped}, journal write errors ${figures.audit_write_errors}, ` +
          `webhooks not stored ${figures.webhook_store_failures}`
        : 'no audit record or webhook lost',
    audit_dropped: figures.audit_dropped,
    audit_write_errors: figures.audit_write_errors,
    webhook_store_failures: figures.webhook_store_failures,
  };

  const operatorCriterion = (value: boolean | undefined, yes: string, no: string): Criterion => ({
    met: value === true,
    source: value === undefined ? 'not_assessed' : 'operator',
    reason: value === undefined ? 'to be assessed by the operator' : value ? yes : no,
  });
  const states = op.member_states ?? [];
  const geographical: Criterion = {
    ...operatorCriterion(
      op.member_states === undefined ? undefined : states.length >= 2,
      `impact in ${states.length} Member States`,
      'impact in fewer than two Member States',
    ),
    member_states: states,
  };
  const economic: Criterion = {
    ...operatorCriterion(
      op.economic_impact_eur === undefined ? undefined : op.economic_impact_eur > 100_000,
      `costs and losses of EUR ${op.economic_impact_eur} (threshold EUR 100 000)`,
      'costs and losses at most EUR 100 000',
    ),
    amount_eur: op.economic_impact_eur ?? null,
  };
  const reputational = operatorCriterion(
    op.reputational_impact,
    'reputational impact reported by the operator',
    'no reputational impact',
  );

  const criteria = {
    critical_services: criticalServices,
    malicious_access: malicious,
    clients_transactions: clientsTx,
    reputational_impact: reputational,
    duration_downtime: durationDowntime,
    geographical_spread: geographical,
    data_losses: dataLosses,
    economic_impact: economic,
  };
  const material = [
    'clients_transactions',
    'reputational_impact',
    'duration_downtime',
    'geographical_spread',
    'data_losses',
    'economic_impact',
  ] as const;
  const materialMet = material.filter((k) => criteria[k].met);
  const computedMajor = criticalServices.met && (malicious.met || materialMet.length >= 2);
  const reasons: string[] = [];
  if (!criticalServices.met) reasons.push('not major: no critical service affected (Art. 8(1))');
  else if (malicious.met)
    reasons.push('major: critical services affected and malicious unauthorised access (Art. 8(1)(a))');
  else if (materialMet.length >= 2)
    reasons.push(
      `major: critical services affected and ${materialMet.length} criteria met: ${materialMet.join(', ')} (Art. 8(1)(b))`,
    );
  else
    reasons.push(
      `not major: critical services affected but ${materialMet.length} of the Art. 9 criteria met (two needed)` +
        (materialMet.length > 0 ? `: ${materialMet.join(', ')}` : ''),
    );
  const override = incident.override ?? null;
  if (override !== null)
    reasons.push(`overridden by ${override.by}: ${override.major ? 'major' : 'not major'} (${override.justification})`);
  const linked = earlier.filter((e) => e.id !== incident.id).map((e) => e.id);
  if (linked.length > 0)
    reasons.push(`recurring: same cause as ${linked.join(', ')} within ${config.recurring_days} days`);
  return {
    major: override?.major ?? computedMajor,
    computed_major: computedMajor,
    reasons,
    criteria_met: (['critical_services', 'malicious_access', ...material] as const).filter((k) => criteria[k].met),
    criteria,
    affected: {
      routes: affectedRoutes,
      functions,
      critical_routes: critical,
      route_functions: Object.fromEntries(affectedRoutes.map((r) => [r, byName.get(r)?.function ?? null])),
    },
    recurring: { linked, recurring: linked.length > 0 },
    override,
    figures,
    duration_ms: duration,
  };
}
