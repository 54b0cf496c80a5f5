/**
 * `kycgate incidents list|show|classify|report`: the ICT-related incidents the gateways detected (in the store the
 * configuration names), their classification per Delegated Regulation (EU) 2024/1772, the operator's assessment and
 * override, and the reports of Implementing Regulation (EU) 2025/302 with the deadlines of Delegated Regulation (EU)
 * 2025/301 (docs/DORA.md).
 */
import type { Command } from 'commander';
import os from 'node:os';
import path from 'node:path';
import { writeFileSync } from 'node:fs';
import { ConfigError } from '../config/load.js';
import { parseDuration } from '../auth/api-keys/format.js';
import { auditDirectory } from '../audit/subsystem.js';
import { IncidentStore } from '../resilience/incidents/store.js';
import type { IncidentsConfig } from '../resilience/incidents/schema.js';
import { routeInfos } from '../resilience/incidents/service.js';
import { REPORT_KINDS, type ReportKind } from '../resilience/incidents/deadlines.js';
import { incidentReportHtml } from '../resilience/incidents/report-html.js';
import { thirdPartyFigures } from '../resilience/incidents/third-parties.js';
import {
  classifyIncident,
  drillIncidents,
  incidentReport,
  incidentSummary,
  showIncident,
  type ClassifyInput,
  type IncidentContext,
} from '../resilience/incidents/operations.js';
import { withConfiguredStore, type ConfiguredStore } from './configured-store.js';

const configOption = ['-c, --config <file>', 'the configuration the gateways run (names the shared store)'] as const;

function operator(by: string | undefined): string {
  if (by !== undefined && by.trim() !== '') return by.trim();
  try {
    return os.userInfo().username;
  } catch {
    return 'cli';
  }
}

function withIncidents(
  configFile: string | undefined,
  fn: (ctx: IncidentContext, configured: ConfiguredStore) => Promise<void>,
): Promise<void> {
  return withConfiguredStore(configFile, async (configured) => {
    const store = new IncidentStore(configured.store);
    await store.migrate();
    const config = configured.config.incidents as IncidentsConfig;
    await fn({ store, config, routes: routeInfos(configured.config), now: Date.now() }, configured);
  });
}

function yesNo(v: string | undefined, flag: string): boolean | undefined {
  if (v === undefined) return undefined;
  if (v === 'yes' || v === 'true') return true;
  if (v === 'no' || v === 'false') return false;
  throw new ConfigError([`${flag}: yes or no`]);
}

function timeBack(text: string, now: number): number {
  const t = /^\d+(ms|s|m|h|d)$/.test(text) ? now - parseDuration(text) : Date.parse(text);
  if (Number.isNaN(t)) throw new ConfigError(['--since: an RFC 3339 date-time or a duration such as 30d']);
  return t;
}

/** The incidents source `kycgate drill run` lists in its report. */
export function drillIncidentSource(
  ctx: ConfiguredStore,
): (from: number, to: number) => Promise<import('../resilience/drills/run.js').DrillIncident[]> {
  const store = new IncidentStore(ctx.store);
  let migrated: Promise<void> | undefined;
  return async (from, to) => {
    migrated ??= store.migrate();
    await migrated;
    return drillIncidents(store, from, to);
  };
}

function printDetail(d: Awaited<ReturnType<typeof showIncident>>): void {
  const i = d.incident;
  const out: string[] = [
    `${String(i.id)}  ${String(i.status)}  ${String(i.title)}  (${String(i.cause)})`,
    `detected ${String(i.detected_at)} by ${String(i.detected_by)}; closed ${String(i.closed_at ?? '-')}`,
    `${d.classification.major ? 'MAJOR' : 'not major'}: ${d.classification.reasons.join('; ')}`,
  ];
  for (const [name, c] of Object.entries(d.classification.criteria))
    out.push(`  ${c.met ? '[x]' : '[ ]'} ${name.padEnd(20)} ${c.source.padEnd(12)} ${c.reason}`);
  for (const dl of d.deadlines)
    out.push(
      `  ${dl.report.padEnd(12)} due ${dl.due}${dl.submitted_at ? `, submitted ${dl.submitted_at}` : ''}${dl.overdue ? '  OVERDUE' : ''}`,
    );
  out.push('timeline:');
  for (const e of d.timeline)
    out.push(
      `  ${String(e.at)}  ${String(e.instance).padEnd(16)} ${String(e.type).padEnd(9)} ${JSON.stringify(e.detail)}`,
    );
  process.stdout.write(out.join('\n') + '\n');
}

interface ClassifyOptions {
  major?: string;
  justification?: string;
  clearOverride?: boolean;
  reputational?: string;
  memberStates?: string;
  economicEur?: string;
  malicious?: string;
  by?: string;
  json?: boolean;
  config?: string;
}

interface ReportOptions {
  kind: string;
  out?: string;
  html?: string;
  journal?: string;
  extract?: string;
  description?: string;
  rootCause?: string;
  actions?: string;
  bcp?: string;
  resolvedAt?: string;
  lessons?: string;
  communication?: string;
  submitted?: boolean;
  by?: string;
  config?: string;
}

export function registerIncidentsCommand(program: Command): void {
  const incidents = program
    .command('incidents')
    .description(
      'ICT-related incidents: list, show, classify (DORA Art. 18), report (Art. 19); third parties (Art. 28-30).',
    );

  incidents
    .command('list')
    .description('Incidents open now or detected since --since (default 30d), newest first.')
    .option('--since <time>', 'RFC 3339 date-time or a duration back such as 7d', '30d')
    .option('--json', 'print JSON lines')
    .option(...configOption)
    .action((opts: { since: string; json?: boolean; config?: string }) =>
      withIncidents(opts.config, async (ctx) => {
        const list = await ctx.store.list(timeBack(opts.since, ctx.now), ctx.now + 1);
        for (const i of list) {
          const s = incidentSummary(i);
          if (opts.json) process.stdout.write(JSON.stringify(s) + '\n');
          else {
            const major = s.major === true ? 'MAJOR' : s.major === false ? 'minor' : '?    ';
            process.stdout.write(
              `${i.id}  ${i.status.padEnd(6)} ${String(s.detected_at)}  ${major}  ${i.title} (${i.cause})\n`,
            );
          }
        }
        if (list.length === 0 && !opts.json) process.stdout.write('no incident\n');
      }),
    );

  incidents
    .command('third-parties')
    .description('ICT third parties (DORA Art. 28-30) over a period: availability, errors, p95 against the contract.')
    .option('--since <time>', 'start: RFC 3339 date-time or a duration back such as 30d', '30d')
    .option('--until <time>', 'end: RFC 3339 date-time (default: now)')
    .option('--json', 'print JSON')
    .option(...configOption)
    .action((opts: { since: string; until?: string; json?: boolean; config?: string }) =>
      withIncidents(opts.config, async (ctx, configured) => {
        const to = opts.until === undefined ? ctx.now : Date.parse(opts.until);
        if (Number.isNaN(to)) throw new ConfigError(['--until: an RFC 3339 date-time']);
        const list = await thirdPartyFigures(configured.store, ctx.config, timeBack(opts.since, ctx.now), to);
        if (opts.json) {
          process.stdout.write(JSON.stringify({ third_parties: list }, null, 2) + '\n');
          return;
        }
        if (list.length === 0) process.stdout.write('no third party configured (incidents.third_parties)\n');
        for (const p of list) {
          const mark = (ok: boolean | null) => (ok === null ? '?' : ok ? 'ok' : 'MISSED');
          process.stdout.write(
            `${p.name} (${p.kind} ${p.target}): ${p.requests} calls, availability ${p.availability_percent ?? '-'} % ` +
              `[${mark(p.met.availability)}], errors ${p.error_percent ?? '-'} % [${mark(p.met.errors)}], ` +
              `p95 ${p.p95_ms ?? '-'} ms [${mark(p.met.p95)}]\n`,
          );
        }
      }),
    );

  incidents
    .command('show')
    .description('An incident: its classification from the figures measured now, deadlines and timeline.')
    .argument('<id>')
    .option('--json', 'print JSON')
    .option(...configOption)
    .action((id: string, opts: { json?: boolean; config?: string }) =>
      withIncidents(opts.config, async (ctx) => {
        const d = await showIncident(ctx, id);
        if (opts.json) process.stdout.write(JSON.stringify(d, null, 2) + '\n');
        else printDetail(d);
      }),
    );

  incidents
    .command('classify')
    .description('Classify again, entering what the gateway cannot measure, or override the result (justified).')
    .argument('<id>')
    .option('--major <yes|no>', 'override: major or not (needs --justification)')
    .option('--justification <text>', 'why the override')
    .option('--clear-override', 'return to the computed classification')
    .option('--reputational <yes|no>', 'Art. 9(2): reputational impact')
    .option('--member-states <list>', 'Art. 9(4): Member States affected, e.g. AT,DE')
    .option('--economic-eur <amount>', 'Art. 9(6): costs and losses in EUR')
    .option('--malicious <yes|no>', 'Art. 8(1)(a): malicious unauthorised access that may result in data losses')
    .option('--by <name>', 'who classifies (default: the OS user)')
    .option('--json', 'print JSON')
    .option(...configOption)
    .action((id: string, opts: ClassifyOptions) =>
      withIncidents(opts.config, async (ctx) => {
        const input: ClassifyInput = {};
        if (opts.clearOverride) input.major = null;
        const major = yesNo(opts.major, '--major');
        if (major !== undefined) input.major = major;
        if (opts.justification !== undefined) input.justification = opts.justification;
        const rep = yesNo(opts.reputational, '--reputational');
        if (rep !== undefined) input.reputational_impact = rep;
        const mal = yesNo(opts.malicious, '--malicious');
        if (mal !== undefined) input.malicious_access = mal;
        if (opts.memberStates !== undefined) {
          const states = opts.memberStates
            .split(',')
            .map((s) => s.trim().toUpperCase())
            .filter((s) => s !== '');
          if (!states.every((s) => /^[A-Z]{2}$/.test(s)))
            throw new ConfigError(['--member-states: ISO 3166 codes, e.g. AT,DE']);
          input.member_states = states;
        }
        if (opts.economicEur !== undefined) {
          const n = Number(opts.economicEur);
          if (!Number.isFinite(n) || n < 0) throw new ConfigError(['--economic-eur: an amount in EUR']);
          input.economic_impact_eur = n;
        }
        const d = await classifyIncident(ctx, id, input, operator(opts.by));
        if (opts.json) process.stdout.write(JSON.stringify(d, null, 2) + '\n');
        else printDetail(d);
      }),
    );

  incidents
    .command('report')
    .description('Write the initial notification, intermediate or final report (JSON, and HTML with --html).')
    .argument('<id>')
    .option('--kind <kind>', 'initial, intermediate or final', 'initial')
    .option('--out <file>', 'write the JSON report here (default: stdout)')
    .option('--html <file>', 'also write it as an HTML page')
    .option('--journal <dir>', 'audit directory for the extract (default: <KYCGATE_DATA_DIR or .kycgate>/audit)')
    .option('--extract <file>', "write the audit extract of the incident's window (JSON lines) here")
    .option('--description <text>', 'what happened, as the operator describes it')
    .option('--root-cause <text>', 'the root cause (final report)')
    .option('--actions <text>', 'actions taken (temporary, then remediation)')
    .option('--bcp <yes|no>', 'whether the business continuity plan was activated')
    .option('--resolved-at <time>', 'when the incident was resolved (RFC 3339)')
    .option('--lessons <text>', 'lessons learned (final report)')
    .option('--communication <text>', 'how clients were informed')
    .option('--submitted', 'record that this report was submitted to the authority now')
    .option('--by <name>', 'who reports (default: the OS user)')
    .option(...configOption)
    .action((id: string, opts: ReportOptions) =>
      withIncidents(opts.config, async (ctx, configured) => {
        if (!REPORT_KINDS.includes(opts.kind as ReportKind))
          throw new ConfigError(['--kind: initial, intermediate or final']);
        const bcp = yesNo(opts.bcp, '--bcp');
        if (opts.resolvedAt !== undefined && Number.isNaN(Date.parse(opts.resolvedAt)))
          throw new ConfigError(['--resolved-at: an RFC 3339 date-time']);
        const incident = await ctx.store.get(id);
        const period =
          incident === undefined ? undefined : { from: incident.detectedAt, to: incident.closedAt ?? ctx.now };
        const report = await incidentReport(ctx, id, {
          kind: opts.kind as ReportKind,
          fields: {
            description: opts.description,
            root_cause: opts.rootCause,
            actions: opts.actions,
            bcp_activated: bcp,
            resolved_at: opts.resolvedAt,
            lessons: opts.lessons,
            communication: opts.communication,
          },
          submitted: opts.submitted === true,
          by: operator(opts.by),
          auditDir: path.resolve(opts.journal ?? auditDirectory(configured.dataDir)),
          ...(opts.extract !== undefined ? { extractFile: opts.extract } : {}),
          ...(period
            ? { thirdParties: await thirdPartyFigures(configured.store, ctx.config, period.from, period.to) }
            : {}),
        });
        const json = JSON.stringify(report, null, 2) + '\n';
        if (opts.out !== undefined) writeFileSync(opts.out, json);
        else process.stdout.write(json);
        if (opts.html !== undefined) writeFileSync(opts.html, incidentReportHtml(report));
      }),
    );
}
