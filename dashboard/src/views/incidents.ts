/**
 * Incidents with their reporting deadlines. Shown only when the gateway's admin API has an incidents endpoint (its
 * OpenAPI document lists `/incidents`). Items as `kycgate incidents list` gives them (id, title, status, major,
 * detected_at ...); the deadlines (DORA: initial notification, intermediate and final report, each `{report, due,
 * submitted_at, overdue}`) from the item, or from `/incidents/{id}` for open major incidents when the API offers it.
 */
import { call } from '../api.js';
import { badge, duration, h, replace, table, time } from '../dom.js';
import type { View } from './types.js';

type Incident = Record<string, unknown>;
interface Deadline {
  name: string;
  due: string;
  submitted: string | null;
}

const DETAILED = 10;
let paths: Promise<string[]> | undefined;

function offeredPaths(): Promise<string[]> {
  paths ??= call<{ paths?: Record<string, unknown> }>('/admin/api/openapi.json')
    .then((doc) => Object.keys(doc.paths ?? {}))
    .catch(() => []);
  return paths;
}

function text(v: unknown): string {
  return v === undefined || v === null ? '—' : typeof v === 'object' ? JSON.stringify(v) : String(v);
}

function classification(i: Incident): string {
  const c = i.classification;
  if (typeof c === 'string') return c;
  const major = (c as { major?: unknown } | undefined)?.major ?? i.major;
  return major === true ? 'major' : major === false ? 'not major' : 'not classified';
}

/** Deadlines from a list (`{report | name, due | at, submitted_at}`), a name → time map, or `*_deadline` fields. */
function deadlinesOf(i: Incident): Deadline[] {
  const out: Deadline[] = [];
  const d = i.deadlines;
  const entries: Array<[string, unknown]> = Array.isArray(d)
    ? d.map((e: Record<string, unknown> | null, n) => [String(e?.report ?? e?.name ?? `deadline ${n + 1}`), e])
    : d && typeof d === 'object'
      ? Object.entries(d as Record<string, unknown>)
      : [];
  for (const [name, v] of entries) {
    const o = typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : {};
    const due = typeof v === 'string' ? v : (o.due ?? o.at ?? o.deadline);
    if (typeof due === 'string')
      out.push({ name, due, submitted: typeof o.submitted_at === 'string' ? o.submitted_at : null });
  }
  for (const [k, v] of Object.entries(i))
    if (/_(deadline|due)$/.test(k) && typeof v === 'string')
      out.push({ name: k.replace(/_(deadline|due)$/, ''), due: v, submitted: null });
  return out;
}

function deadlineList(list: Deadline[]): Node {
  if (list.length === 0) return document.createTextNode('—');
  const now = Date.now();
  return h(
    'ul',
    { class: 'plain' },
    ...list.map((d) => {
      const left = (new Date(d.due).getTime() - now) / 1000;
      const state = d.submitted
        ? badge(`submitted ${time(d.submitted)}`, 'ok')
        : left < 0
          ? badge(`${duration(-left)} overdue`, 'bad')
          : badge(`in ${duration(left)}`, left < 86400 ? 'warn' : 'info');
      return h('li', {}, `${d.name.replaceAll('_', ' ')}: ${time(d.due)} `, state);
    }),
  );
}

export const incidentsView: View = {
  id: 'incidents',
  title: 'Incidents',
  nav: 'Incidents',
  async available() {
    return (await offeredPaths()).includes('/incidents');
  },
  async load(_ctx, body) {
    const page = await call<{ items: Incident[] }>('/incidents');
    const detail = (await offeredPaths()).includes('/incidents/{id}');
    // Open major incidents whose list entry carries no deadlines: their detail has them.
    const open = page.items
      .filter((i) => deadlinesOf(i).length === 0 && classification(i) === 'major' && i.status !== 'closed')
      .slice(0, DETAILED);
    const deadlines = new Map<Incident, Deadline[]>();
    if (detail)
      await Promise.all(
        open.map(async (i) => {
          const d = await call<Incident>(`/incidents/${encodeURIComponent(String(i.id))}`);
          deadlines.set(i, deadlinesOf(d));
        }),
      );
    replace(
      body,
      table(
        'Incidents',
        ['Incident', 'Title', 'Classification', 'Status', 'Detected', 'Reporting deadlines'],
        page.items,
        (i) => [
          text(i.id),
          text(i.title ?? i.summary),
          classification(i),
          text(i.status),
          time(typeof i.detected_at === 'string' ? i.detected_at : undefined),
          deadlineList(deadlines.get(i) ?? deadlinesOf(i)),
        ],
        'No incidents.',
      ),
    );
  },
};
