/**
 * Incidents with their reporting deadlines. Shown only when the gateway's admin API has an incidents endpoint (its
 * OpenAPI document lists `/incidents`); items are read generically: id, title, classification, status, deadlines.
 */
import { call } from '../api.js';
import { badge, duration, h, replace, table, time } from '../dom.js';
import type { View } from './types.js';

type Incident = Record<string, unknown>;

let offered: Promise<boolean> | undefined;

function text(v: unknown): string {
  return v === undefined || v === null ? '—' : typeof v === 'object' ? JSON.stringify(v) : String(v);
}

/** When a deadline entry is due: a string, or an object with `due`, `at` or `deadline`. */
function dueOf(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (v === null || typeof v !== 'object') return undefined;
  const o = v as Record<string, unknown>;
  const at = o.due ?? o.at ?? o.deadline;
  return typeof at === 'string' ? at : undefined;
}

/**
 * Deadlines (DORA: initial notification, intermediate and final report) from a `deadlines` object (name → time or
 * `{due}`), a `deadlines` array (`{report | name | kind, due | at | deadline}`), or fields named `*_deadline` / `*_due`.
 */
function deadlines(i: Incident): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const d = i.deadlines;
  const entries: Array<[string, unknown]> = Array.isArray(d)
    ? d.map((e: Record<string, unknown> | null, n) => [
        String(e?.report ?? e?.name ?? e?.kind ?? `deadline ${n + 1}`),
        e,
      ])
    : d && typeof d === 'object'
      ? Object.entries(d as Record<string, unknown>)
      : [];
  for (const [name, v] of entries) {
    const at = dueOf(v);
    if (at !== undefined) out.push([name, at]);
  }
  for (const [k, v] of Object.entries(i))
    if (/_(deadline|due)$/.test(k) && typeof v === 'string') out.push([k.replace(/_(deadline|due)$/, ''), v]);
  return out;
}

function deadlineList(i: Incident): Node {
  const list = deadlines(i);
  if (list.length === 0) return document.createTextNode('—');
  const now = Date.now();
  return h(
    'ul',
    { class: 'plain' },
    ...list.map(([name, at]) => {
      const left = (new Date(at).getTime() - now) / 1000;
      return h(
        'li',
        {},
        `${name.replaceAll('_', ' ')}: ${time(at)} `,
        left < 0
          ? badge(`${duration(-left)} overdue`, 'bad')
          : badge(`in ${duration(left)}`, left < 86400 ? 'warn' : 'ok'),
      );
    }),
  );
}

export const incidentsView: View = {
  id: 'incidents',
  title: 'Incidents',
  nav: 'Incidents',
  available() {
    offered ??= call<{ paths?: Record<string, unknown> }>('/admin/api/openapi.json')
      .then((doc) => Object.keys(doc.paths ?? {}).some((p) => p === '/incidents'))
      .catch(() => false);
    return offered;
  },
  async load(_ctx, body) {
    const page = await call<{ items: Incident[] }>('/incidents');
    replace(
      body,
      table(
        'Incidents',
        ['Incident', 'Title', 'Classification', 'Status', 'Deadlines'],
        page.items,
        (i) => [
          text(i.id),
          text(i.title ?? i.summary),
          text(i.classification ?? i.severity),
          text(i.status),
          deadlineList(i),
        ],
        'No incidents.',
      ),
    );
  },
};
