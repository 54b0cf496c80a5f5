/** The resilience test report as a page a compliance officer can read and file (no script, no external assets). */
import type { DrillReport } from './run.js';

const esc = (v: unknown): string =>
  String(v ?? '—').replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  );

function table(head: string[], rows: unknown[][]): string {
  return (
    `<table><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>` +
    rows.map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`).join('') +
    '</tbody></table>'
  );
}

export function drillReportHtml(r: DrillReport): string {
  const verdict = r.result === 'passed' ? 'Passed' : 'Failed';
  const faults = table(
    ['Fault', 'Target', 'Effect', 'Armed', 'Until'],
    r.faults.map((f) => [
      f.id,
      `${String(f.kind)} ${String(f.target)}`,
      JSON.stringify({
        ...f,
        id: undefined,
        kind: undefined,
        target: undefined,
        armed_at: undefined,
        until: undefined,
      }),
      f.armed_at,
      f.until,
    ]),
  );
  const injected =
    r.injected === null
      ? '<p>Not counted (the scenario names no admin URL).</p>'
      : table(['Target and effect', 'Injected'], Object.entries(r.injected));
  const traffic = r.traffic
    .map(
      (t) =>
        `<h3>${esc(t.name)}${t.verified_users ? ' (verified users)' : ''}</h3>` +
        table(
          ['Phase', 'Requests', 'Served %', 'Statuses', 'Errors', 'p50 ms', 'p95 ms', 'max ms'],
          (['before', 'fault', 'after'] as const).map((p) => {
            const s = t.phases[p];
            return [
              p,
              s.requests,
              s.served_percent,
              JSON.stringify(s.statuses),
              JSON.stringify(s.errors),
              s.p50_ms,
              s.p95_ms,
              s.max_ms,
            ];
          }),
        ) +
        table(
          ['Phase', 'Objective', 'Target', 'Measured', 'Kept'],
          t.objectives.map((o) => [o.phase, o.objective, o.target, o.measured, o.kept ? 'yes' : 'NO']),
        ) +
        `<p>Recovery after the fault ended: ${t.recovery_ms === null ? 'not recovered within the drill' : `${t.recovery_ms} ms`}</p>`,
    )
    .join('');
  const incidents =
    r.incidents === null
      ? '<p>Not available (incident detection is not enabled on the store this drill used).</p>'
      : r.incidents.length === 0
        ? '<p>None detected.</p>'
        : table(
            ['Incident', 'Cause', 'Opened', 'Detected after', 'Closed', 'Major'],
            r.incidents.map((i) => [
              i.id,
              i.cause,
              i.opened_at,
              `${i.detected_after_ms} ms`,
              i.closed_at,
              i.major === undefined ? '—' : i.major ? 'yes' : 'no',
            ]),
          );
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Resilience test: ${esc(r.drill)}</title>
<style>body{font:14px/1.45 system-ui,sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem;color:#1b1b1b}
table{border-collapse:collapse;margin:.5rem 0 1rem;width:100%}th,td{border:1px solid #ccc;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f3f3}.passed{color:#14662a}.failed{color:#a11}</style></head><body>
<h1>Resilience test report: ${esc(r.drill)}</h1>
<p>${esc(r.description)}</p>
<p class="${r.result}"><strong>${verdict}</strong>: objectives ${r.objectives_kept ? 'kept' : 'missed'}; verified users ${
    r.verified_users_unaffected === null ? 'not measured' : r.verified_users_unaffected ? 'unaffected' : 'AFFECTED'
  }.</p>
${table(
  ['Gateway', 'Run by', 'Started', 'Ended', 'Before', 'Fault', 'After'],
  [
    [
      r.gateway,
      r.operator,
      r.started_at,
      r.ended_at,
      `${r.phases.before.from} – ${r.phases.before.to}`,
      `${r.phases.fault.from} – ${r.phases.fault.to}`,
      `${r.phases.after.from} – ${r.phases.after.to}`,
    ],
  ],
)}
<h2>Injected</h2>${faults}${injected}
<h2>Traffic and objectives</h2>${traffic}
<h2>Incidents detected</h2>${incidents}
</body></html>
`;
}
