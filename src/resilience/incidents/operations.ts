/**
 * What an operator does with incidents, shared by `kycgate incidents` and the admin API: list, show (with a fresh
 * classification and the deadlines), classify (enter what the gateway cannot measure, override the result with a
 * justification: recorded on the timeline with who and why), and report (initial, intermediate, final).
 */
import { ConfigError } from '../../config/load.js';
import type { DrillIncident } from '../drills/run.js';
import { auditExtract } from './audit-extract.js';
import type { Classification } from './classify.js';
import type { RouteInfo } from './conditions.js';
import { type Deadline, type ReportKind, reportDeadlines } from './deadlines.js';
import { buildReport, type ThirdPartyFigures } from './report.js';
import type { IncidentsConfig } from './schema.js';
import { classifyAndRecord, computeClassification } from './service.js';
import type { Incident, IncidentEvent, IncidentStore, OperatorInput } from './store.js';

export interface IncidentContext {
  store: IncidentStore;
  config: IncidentsConfig;
  routes: readonly RouteInfo[];
  now: number;
}

const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());

export function incidentSummary(i: Incident): Record<string, unknown> {
  const c = i.classification as { major?: boolean } | undefined;
  return {
    id: i.id,
    cause: i.cause,
    kind: i.kind,
    title: i.title,
    status: i.status,
    detected_at: iso(i.detectedAt),
    detected_by: i.detectedBy,
    last_seen_at: iso(i.lastSeenAt),
    closed_at: iso(i.closedAt),
    classified_at: iso(i.classifiedAt),
    major: c?.major ?? null,
  };
}

export interface IncidentDetail {
  incident: Record<string, unknown>;
  classification: Classification;
  deadlines: Deadline[];
  operator: OperatorInput;
  timeline: Array<Record<string, unknown>>;
}

async function found(store: IncidentStore, id: string): Promise<Incident> {
  const i = await store.get(id);
  if (i === undefined) throw new NotFound(`no incident ${id}`);
  return i;
}

export class NotFound extends Error {}

const timelineView = (t: IncidentEvent[]) =>
  t.map((e) => ({ at: iso(e.at), instance: e.instance, type: e.type, detail: e.detail }));

export async function showIncident(ctx: IncidentContext, id: string): Promise<IncidentDetail> {
  const incident = await found(ctx.store, id);
  const classification = await computeClassification(ctx.store, incident, ctx.config, ctx.routes, ctx.now);
  return {
    incident: incidentSummary(incident),
    classification,
    deadlines: classification.major ? reportDeadlines(incident, ctx.now) : [],
    operator: incident.operator,
    timeline: timelineView(await ctx.store.timeline(id)),
  };
}

export interface ClassifyInput {
  /** Override: major or not, with a justification; null clears an override. */
  major?: boolean | null;
  justification?: string;
  reputational_impact?: boolean;
  member_states?: string[];
  economic_impact_eur?: number;
  malicious_access?: boolean;
}

export async function classifyIncident(ctx: IncidentContext, id: string, input: ClassifyInput, by: string) {
  const incident = await found(ctx.store, id);
  const facts: OperatorInput = { ...incident.operator };
  for (const k of ['reputational_impact', 'member_states', 'economic_impact_eur', 'malicious_access'] as const)
    if (input[k] !== undefined) (facts as Record<string, unknown>)[k] = input[k];
  const changed = Object.keys(facts).filter((k) => JSON.stringify(facts[k]) !== JSON.stringify(incident.operator[k]));
  if (changed.length > 0) {
    await ctx.store.setOperator(id, facts);
    await ctx.store.addEvent(id, by, 'assessed', Object.fromEntries(changed.map((k) => [k, facts[k]])), ctx.now);
  }
  if (input.major !== undefined) {
    if (input.major === null) {
      await ctx.store.setOverride(id, undefined);
      await ctx.store.addEvent(
        id,
        by,
        'override',
        { major: null, justification: input.justification ?? null },
        ctx.now,
      );
    } else {
      const justification = input.justification?.trim() ?? '';
      if (justification === '') throw new ConfigError(['an override needs a justification (--justification)']);
      await ctx.store.setOverride(id, { major: input.major, justification, by, at: ctx.now });
      await ctx.store.addEvent(id, by, 'override', { major: input.major, justification }, ctx.now);
    }
  }
  await classifyAndRecord(ctx.store, id, ctx.config, ctx.routes, ctx.now);
  return showIncident(ctx, id);
}

export interface ReportRequest {
  kind: ReportKind;
  /** Operator fields to record before the report is made (description, root_cause, actions ...). */
  fields?: Partial<OperatorInput>;
  /** Marks this report as submitted now. */
  submitted?: boolean;
  by?: string;
  /** Where the audit journal is (the extract is attached when it is there). */
  auditDir?: string;
  extractFile?: string;
  thirdParties?: ThirdPartyFigures[];
}

export async function incidentReport(
  ctx: IncidentContext,
  id: string,
  req: ReportRequest,
): Promise<Record<string, unknown>> {
  let incident = await found(ctx.store, id);
  const fields = Object.fromEntries(Object.entries(req.fields ?? {}).filter(([, v]) => v !== undefined));
  if (Object.keys(fields).length > 0) {
    await ctx.store.setOperator(id, { ...incident.operator, ...fields });
    await ctx.store.addEvent(id, req.by ?? 'operator', 'annotated', fields, ctx.now);
  }
  if (req.submitted) {
    await ctx.store.setSubmissions(id, { ...incident.submissions, [req.kind]: ctx.now });
    await ctx.store.addEvent(id, req.by ?? 'operator', 'submitted', { report: req.kind }, ctx.now);
  }
  const recorded = await classifyAndRecord(ctx.store, id, ctx.config, ctx.routes, ctx.now);
  incident = recorded?.incident ?? incident;
  const from = Math.min(incident.detectedAt, recorded?.classification.figures.first_seen || incident.detectedAt);
  const to = incident.closedAt ?? ctx.now;
  return buildReport({
    kind: req.kind,
    incident,
    classification: recorded!.classification,
    timeline: await ctx.store.timeline(id),
    config: ctx.config,
    audit: req.auditDir === undefined ? null : auditExtract(req.auditDir, from, to + 1, req.extractFile),
    ...(req.thirdParties ? { thirdParties: req.thirdParties } : {}),
    now: ctx.now,
  });
}

/** The incidents a drill report lists: those open at some time in [from, to). */
export async function drillIncidents(store: IncidentStore, from: number, to: number): Promise<DrillIncident[]> {
  const list = await store.list(from, to);
  return list
    .filter((i) => i.detectedAt >= from)
    .map((i) => ({
      id: i.id,
      cause: i.cause,
      title: i.title,
      opened_at: new Date(i.detectedAt).toISOString(),
      ...(i.closedAt !== undefined ? { closed_at: new Date(i.closedAt).toISOString() } : {}),
      ...(i.classification !== undefined ? { major: (i.classification as { major?: boolean }).major === true } : {}),
    }));
}
