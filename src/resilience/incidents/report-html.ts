/** An incident report as a page a compliance officer can read and file (no script, no external assets). */

const esc = (v: unknown): string =>
  String(v ?? '—').replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  );

const cell = (v: unknown): string => esc(typeof v === 'object' && v !== null ? JSON.stringify(v) : v);

function table(head: string[], rows: unknown[][]): string {
  return (
    `<table><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>` +
    rows.map((r) => `<tr>${r.map((c) => `<td>${cell(c)}</td>`).join('')}</tr>`).join('') +
    '</tbody></table>'
  );
}

function fields(section: unknown): string {
  if (section === undefined || section === null) return '';
  const rows = Object.entries(section as Record<string, unknown>).map(([k, v]) => [k.replace(/_/g, ' '), v]);
  return table(['Field', 'Value'], rows);
}

const TITLES: Record<string, string> = {
  initial: 'Initial notification',
  intermediate: 'Intermediate report',
  final: 'Final report',
};

// biome-ignore lint/suspicious/noExplicitAny: the report is the JSON report.ts builds (docs/incident-report.schema.json)
export function incidentReportHtml(r: Record<string, any>): string {
  const inc = r.incident;
  const c = r.classification;
  const criteria = Object.entries(c.criteria as Record<string, { met: boolean; source: string; reason: string }>).map(
    ([name, v]) => [name.replace(/_/g, ' '), v.met ? 'met' : 'not met', v.source, v.reason],
  );
  const deadlines = (r.deadlines as Array<Record<string, unknown>>).map((d) => [
    d.report,
    d.due,
    d.basis,
    d.submitted_at,
    d.overdue ? 'OVERDUE' : d.late ? 'submitted late' : d.submitted_at ? 'submitted' : 'open',
  ]);
  const audit = r.audit_extract;
  const v = audit?.verification;
  const verified =
    v === null || v === undefined
      ? null
      : v.ok
        ? `verified (${v.records} records, signed through ${v.signed_through})`
        : `FAILED: ${v.problem}`;
  const deadlineTable =
    deadlines.length === 0
      ? '<p>None: not a major incident.</p>'
      : table(['Report', 'Due', 'Basis', 'Submitted', 'State'], deadlines).replace(
          /<td>OVERDUE<\/td>/g,
          '<td class="overdue">OVERDUE</td>',
        );
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(TITLES[r.report])} ${esc(inc.reference)}</title>
<style>body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:70em;color:#111}table{border-collapse:collapse;margin:.5em 0 1.5em}
th,td{border:1px solid #bbb;padding:.3em .6em;text-align:left;vertical-align:top}th{background:#eee}.overdue{color:#b00;font-weight:bold}
.major{font-size:1.2em;font-weight:bold}</style></head><body>
<h1>${esc(TITLES[r.report])}: ${esc(inc.title)}</h1>
<p>Incident <b>${esc(inc.reference)}</b> (${esc(inc.cause)}), ${esc(inc.status)}. Detected ${esc(inc.detected_at)} by ${esc(inc.detected_by)};
classified ${esc(inc.classified_at)}; closed ${esc(inc.closed_at)}. Generated ${esc(r.generated_at)}.</p>
<p>Entity: ${esc(r.entity.name)} (LEI ${esc(r.entity.lei)}), to ${esc(r.entity.competent_authority)}.</p>
<p class="major">${c.major ? 'Major incident' : 'Not a major incident'}</p>
<ul>${(c.reasons as string[]).map((x) => `<li>${esc(x)}</li>`).join('')}</ul>
<h2>Classification criteria (Delegated Regulation (EU) 2024/1772)</h2>
${table(['Criterion', 'Result', 'Source', 'Reason'], criteria)}
<h2>Deadlines (Delegated Regulation (EU) 2025/301)</h2>
${deadlineTable}
<h2>Initial notification</h2>${fields(r.initial_notification)}
${
  r.intermediate_report
    ? `<h2>Intermediate report</h2>${fields({ ...r.intermediate_report, affected_services: undefined })}${table(
        ['Route', 'Function', 'Requests', 'Failed', 'Downtime (ms)'],
        (r.intermediate_report.affected_services as Array<Record<string, unknown>>).map((s) => [
          s.route,
          s.function,
          s.requests,
          s.failed,
          s.downtime_ms,
        ]),
      )}`
    : ''
}
${r.final_report ? `<h2>Final report</h2>${fields(r.final_report)}` : ''}
<h2>Still to complete by the operator</h2>
${(r.to_complete as string[]).length === 0 ? '<p>Nothing.</p>' : `<ul>${(r.to_complete as string[]).map((x) => `<li>${esc(x)}</li>`).join('')}</ul>`}
<h2>Timeline</h2>
${table(
  ['Time', 'Instance', 'Event', 'Detail'],
  (r.timeline as Array<Record<string, unknown>>).map((e) => [e.at, e.instance, e.type, e.detail]),
)}
<h2>Audit extract</h2>
${audit === null ? '<p>Not attached.</p>' : fields({ ...audit, verification: verified })}
${
  (r.third_parties as unknown[]).length === 0
    ? ''
    : `<h2>ICT third parties</h2>${table(
        ['Third party', 'Target', 'Requests', 'Availability %', 'Errors %', 'p95 ms', 'Contract', 'Met'],
        (r.third_parties as Array<Record<string, unknown>>).map((p) => [
          p.name,
          `${p.kind} ${p.target}`,
          p.requests,
          p.availability_percent,
          p.error_percent,
          p.p95_ms,
          p.contract,
          p.met,
        ]),
      )}`
}
</body></html>
`;
}
