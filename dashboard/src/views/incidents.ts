/**
 * Incidents with their classification and reporting deadlines. Shown only when incident detection is on
 * (`/runtime/state` says `incidents.enabled`). The list (`/incidents`, `IncidentSummary`) gives each incident's
 * classification (`major`: true, false, or null before it is classified); a major incident's DORA deadlines
 * (initial notification, intermediate and final report, each `{report, due, basis, submitted_at, overdue, late}`)
 * come from its detail (`/incidents/{id}`), for the latest major incidents, open or closed: a closed incident
 * still has its reports due.
 */
import { call } from '../api.js';
import { badge, duration, h, replace, table, time } from '../dom.js';
import type { View } from './types.js';

interface Incident {
  id: string;
  cause: string;
  title: string;
  status: 'open' | 'closed';
  detected_at: string;
  closed_at: string | null;
  major: boolean | null;
}
interface Deadline {
  report: string;
  due: string;
  basis: string;
  submitted_at: string | null;
  overdue: boolean;
  late: boolean;
}
interface Detail {
  deadlines: Deadline[];
  classification: { reasons?: string[] };
}

/** Details fetched per refresh: the newest major incidents. */
const DETAILED = 10;

function classification(i: Incident, detail: Detail | undefined): Node {
  const reasons = detail?.classification.reasons?.join('\n');
  const b =
    i.major === true
      ? badge('major', 'bad')
      : i.major === false
        ? badge('not major', 'info')
        : badge('not classified', 'warn');
  if (reasons) b.title = reasons;
  return b;
}

function deadlineList(list: readonly Deadline[]): Node {
  if (list.length === 0) return document.createTextNode('—');
  const now = Date.now();
  return h(
    'ul',
    { class: 'plain' },
    ...list.map((d) => {
      const left = (new Date(d.due).getTime() - now) / 1000;
      const state = d.submitted_at
        ? badge(`submitted ${time(d.submitted_at)}${d.late ? ' (late)' : ''}`, d.late ? 'warn' : 'ok')
        : d.overdue || left < 0
          ? badge(`${duration(-left)} overdue`, 'bad')
          : badge(`in ${duration(left)}`, left < 86400 ? 'warn' : 'info');
      return h('li', { title: `Due ${d.basis}` }, `${d.report}: ${time(d.due)} `, state);
    }),
  );
}

export const incidentsView: View = {
  id: 'incidents',
  title: 'Incidents',
  nav: 'Incidents',
  async available() {
    const state = await call<{ incidents?: { enabled?: boolean } }>('/runtime/state').catch(() => undefined);
    return state?.incidents?.enabled === true;
  },
  async load(_ctx, body) {
    const page = await call<{ items: Incident[] }>('/incidents');
    const major = page.items.filter((i) => i.major === true).slice(0, DETAILED);
    const details = new Map<string, Detail>();
    await Promise.all(
      major.map(async (i) => details.set(i.id, await call<Detail>(`/incidents/${encodeURIComponent(i.id)}`))),
    );
    replace(
      body,
      table(
        'Incidents',
        ['Incident', 'Title', 'Classification', 'Status', 'Detected', 'Reporting deadlines'],
        page.items,
        (i) => [
          i.id,
          i.title,
          classification(i, details.get(i.id)),
          i.status === 'closed' ? `closed ${time(i.closed_at)}` : 'open',
          time(i.detected_at),
          deadlineList(details.get(i.id)?.deadlines ?? []),
        ],
        'No incidents.',
      ),
    );
  },
};
