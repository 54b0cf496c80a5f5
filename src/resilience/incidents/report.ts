/**
 * Incident reports with the content of Commission Implementing Regulation (EU) 2025/302: the initial notification,
 * the intermediate report and the final report, each carrying the sections of the ones before. What the gateway
 * measured fills the figures (detection and classification times, criteria met, affected services and clients,
 * duration, downtime, data losses); what only the operator knows (description, root cause, actions, impact
 * outside the gateway) comes from `kycgate incidents report` options and is listed under `to_complete` while
 * missing. The report carries the deadlines (deadlines.ts), the timeline and the audit extract of the incident
 * window with its verification result. Valid against docs/incident-report.schema.json.
 */
import type { Classification } from './classify.js';
import { reportDeadlines, type ReportKind } from './deadlines.js';
import type { IncidentsConfig } from './schema.js';
import type { Incident, IncidentEvent } from './store.js';

export interface AuditExtract {
  from: string;
  to: string;
  records: number;
  sha256: string;
  file: string | null;
  verification: { ok: boolean; records: number; signed_through: number; problem: string | null } | null;
  note: string | null;
}

export interface ThirdPartyFigures {
  name: string;
  kind: 'provider' | 'upstream';
  target: string;
  period: { from: string; to: string };
  requests: number;
  failed: number;
  availability_percent: number | null;
  error_percent: number | null;
  p95_ms: number | null;
  contract: { availability_percent: number; p95_ms: number; error_percent: number };
  met: { availability: boolean | null; p95: boolean | null; errors: boolean | null };
}

export interface ReportInput {
  kind: ReportKind;
  incident: Incident;
  classification: Classification;
  timeline: IncidentEvent[];
  config: IncidentsConfig;
  audit: AuditExtract | null;
  thirdParties?: ThirdPartyFigures[];
  now: number;
}

const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());
const text = (v: unknown): string | null => (typeof v === 'string' && v.trim() !== '' ? v : null);

const ORIGIN: Record<string, string> = {
  upstream: 'internal ICT service (upstream group); third party when the group is run by one',
  provider: 'ICT third-party service provider (verification provider)',
  store: 'internal ICT infrastructure (database)',
  redis: 'internal ICT infrastructure (cache)',
  audit: 'internal ICT infrastructure (audit trail)',
  certificate: 'internal ICT infrastructure (certificates)',
  route: 'internal ICT service',
  attack: 'external (suspected attack)',
};

export function buildReport(r: ReportInput): Record<string, unknown> {
  const { incident: inc, classification: c, config } = r;
  const op = inc.operator;
  const figures = c.figures;
  const to_complete: string[] = [];
  const need = (field: string, value: unknown) => {
    if (value === null || value === undefined) to_complete.push(field);
    return value ?? null;
  };
  const opened = r.timeline.find((e) => e.type === 'opened');
  const report: Record<string, unknown> = {
    report: r.kind,
    generated_at: iso(r.now),
    regulations: {
      classification: 'Commission Delegated Regulation (EU) 2024/1772',
      content: 'Commission Implementing Regulation (EU) 2025/302',
      deadlines: 'Commission Delegated Regulation (EU) 2025/301',
    },
    entity: {
      name: need('entity.name', config.reporting.entity ?? null),
      lei: need('entity.lei', config.reporting.lei ?? null),
      competent_authority: need('entity.competent_authority', config.reporting.competent_authority ?? null),
    },
    incident: {
      reference: inc.id,
      cause: inc.cause,
      kind: inc.kind,
      title: inc.title,
      status: inc.status,
      detected_at: iso(inc.detectedAt),
      detected_by: inc.detectedBy,
      classified_at: iso(inc.classifiedAt),
      closed_at: iso(inc.closedAt),
      instances: figures.instances,
    },
    classification: {
      major: c.major,
      computed_major: c.computed_major,
      reasons: c.reasons,
      criteria_met: c.criteria_met,
      criteria: c.criteria,
      override: c.override === null ? null : { ...c.override, at: iso(c.override.at) },
      recurring: c.recurring,
    },
    initial_notification: {
      date_time_detection: iso(inc.detectedAt),
      date_time_classification: iso(inc.classifiedAt),
      description: need('initial_notification.description', text(op.description)),
      detection: `Detected by the gateway's monitoring: ${JSON.stringify(opened?.detail.signals ?? [])}`,
      origin: ORIGIN[inc.kind] ?? 'internal',
      classification_criteria: c.criteria_met,
      member_states_affected: op.member_states ?? null,
      business_continuity_plan_activated: need(
        'initial_notification.business_continuity_plan_activated',
        op.bcp_activated ?? null,
      ),
      other_information: text(op.other_information),
    },
  };
  if (r.kind !== 'initial') {
    const tx = c.criteria.clients_transactions;
    report.intermediate_report = {
      date_time_occurrence: iso(Math.min(inc.detectedAt, figures.first_seen || inc.detectedAt)),
      date_time_recovery: iso(inc.closedAt),
      clients_affected: tx.clients_affected,
      clients_affected_percent: tx.clients_percent,
      consumers_affected: figures.consumers,
      subjects_affected: figures.subjects,
      transactions_affected: tx.transactions_affected,
      transactions_affected_percent: tx.transactions_percent,
      duration_ms: c.duration_ms,
      service_downtime_ms: c.criteria.duration_downtime.downtime_ms,
      affected_services: c.affected.routes.map((name) => ({
        route: name,
        function: c.affected.route_functions[name] ?? null,
        requests: figures.routes[name]?.requests ?? 0,
        failed: figures.routes[name]?.failed ?? 0,
        downtime_ms: figures.routes[name]?.downtime_ms ?? 0,
      })),
      affected_functions: c.affected.functions,
      critical_functions_affected: c.affected.critical_routes,
      data_losses: c.criteria.data_losses,
      temporary_actions: need('intermediate_report.temporary_actions', text(op.actions)),
      communication_to_clients: text(op.communication),
    };
  }
  if (r.kind === 'final') {
    report.final_report = {
      root_cause: need('final_report.root_cause', text(op.root_cause)),
      date_time_resolved: need('final_report.date_time_resolved', text(op.resolved_at) ?? iso(inc.closedAt)),
      remediation_actions: need('final_report.remediation_actions', text(op.actions)),
      lessons_learned: text(op.lessons),
      economic_impact_eur: op.economic_impact_eur ?? null,
      recurring_incidents: c.recurring.linked,
    };
  }
  report.deadlines = c.major ? reportDeadlines(inc, r.now) : [];
  report.timeline = r.timeline.map((e) => ({ at: iso(e.at), instance: e.instance, type: e.type, detail: e.detail }));
  report.audit_extract = r.audit;
  report.third_parties = r.thirdParties ?? [];
  report.to_complete = to_complete;
  return report;
}
