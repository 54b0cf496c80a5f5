/**
 * Recent requests from this instance's audit journal, and the drill-down: every record of one request (the request
 * record and the events it caused: authentication failures, KYC decisions, rate-limit rejections ...).
 */
import { ApiError, call, RANK } from '../api.js';
import { h, replace, table, time } from '../dom.js';
import type { View, ViewContext } from './types.js';

interface AuditRecord {
  seq: number;
  id: string;
  time: string;
  kind: string;
  type: string;
  request_id?: string;
  method?: string;
  path?: string;
  route?: string;
  consumer?: string;
  subject?: string;
  status?: number;
  latency_ms?: number;
  problem?: string;
  outcome?: string;
  decision?: { outcome?: string; policy?: string; rule?: string; reason?: string };
  [key: string]: unknown;
}
interface Page {
  items: AuditRecord[];
}

const SHOWN = [
  'request_id',
  'method',
  'path',
  'route',
  'listener',
  'client_ip',
  'consumer',
  'auth_method',
  'subject',
  'status',
  'latency_ms',
  'problem',
  'upstream',
  'outcome',
] as const;

function requestButton(ctx: ViewContext, id: string | undefined): Node | string {
  if (!id) return '—';
  return h(
    'button',
    { type: 'button', class: 'link', 'aria-label': `Audit records of request ${id}`, onclick: () => ctx.drill(id) },
    id,
  );
}

function decision(r: AuditRecord): string {
  const d = r.decision;
  if (!d?.outcome) return r.problem ?? '—';
  return [d.outcome, d.policy, d.reason].filter(Boolean).join(' · ');
}

export const requestsView: View = {
  id: 'requests',
  title: 'Requests and their audit records',
  nav: 'Requests',
  async load(ctx, body) {
    if (RANK[ctx.principal.role] < RANK.operator) {
      replace(
        body,
        h('p', { class: 'empty' }, 'Reading the audit journal needs the operator role; this key is a viewer.'),
      );
      return;
    }
    const since = new Date(Date.now() - windowMs(ctx.window)).toISOString();
    // The route and consumer chosen above; `-` (no consumer) cannot be asked of the journal: all are listed then.
    const { route, consumer } = ctx.filter;
    let page: Page;
    try {
      page = await call<Page>('/audit/records', {
        type: 'http.request',
        since,
        limit: '25',
        route: route && route !== '-' ? route : undefined,
        consumer: consumer && consumer !== '-' ? consumer : undefined,
      });
    } catch (err) {
      if (!(err instanceof ApiError && err.type.endsWith('/admin-not-configured'))) throw err;
      replace(body, h('p', { class: 'empty' }, 'This gateway keeps no audit journal (audit.enabled is off).'));
      return;
    }
    const scope = [
      route && route !== '-' ? `route ${route}` : '',
      consumer && consumer !== '-' ? `consumer ${consumer}` : '',
    ]
      .filter(Boolean)
      .join(', ');
    const input = h('input', {
      id: 'drill-id',
      name: 'request_id',
      type: 'text',
      autocomplete: 'off',
      spellcheck: 'false',
      required: true,
    });
    replace(
      body,
      h(
        'form',
        {
          class: 'filters',
          onsubmit: (e: Event) => {
            e.preventDefault();
            if (input.value.trim()) ctx.drill(input.value.trim());
          },
        },
        h('div', { class: 'field grow' }, h('label', { for: 'drill-id' }, 'Request id'), input),
        h('button', { type: 'submit' }, 'Show audit records'),
      ),
      h('h3', {}, scope ? `Latest requests of ${scope}` : 'Latest requests'),
      table(
        'Latest requests (newest first)',
        ['Time', 'Request id', 'Request', 'Route', 'Consumer', 'Status', 'Decision'],
        page.items,
        (r) => [
          time(r.time),
          requestButton(ctx, r.request_id),
          `${r.method ?? ''} ${r.path ?? ''}`,
          r.route ?? '—',
          r.consumer ?? '—',
          r.status ?? '—',
          decision(r),
        ],
        'No requests recorded in this window.',
      ),
    );
  },
};

function windowMs(w: string): number {
  const n = Number.parseInt(w, 10);
  return n * (w.endsWith('h') ? 3_600_000 : w.endsWith('d') ? 86_400_000 : 60_000);
}

/** Fills `panel` with every record of `requestId` (oldest first) and moves the focus to its heading. */
export async function drill(panel: HTMLElement, requestId: string, close: () => void): Promise<void> {
  const heading = h('h2', { id: 'drill-title', tabindex: -1 }, `Audit records of request ${requestId}`);
  replace(panel, heading, h('p', { role: 'status' }, 'Loading…'));
  panel.hidden = false;
  heading.focus();
  let page: Page;
  try {
    page = await call<Page>('/audit/records', { request_id: requestId, order: 'asc', limit: '100' });
  } catch (err) {
    replace(panel, heading, h('p', { role: 'alert', class: 'error' }, (err as Error).message));
    return;
  }
  replace(
    panel,
    h('div', { class: 'drill-head' }, heading, h('button', { type: 'button', onclick: close }, 'Close')),
    page.items.length === 0
      ? h('p', { class: 'empty' }, 'No audit records of this request on this instance.')
      : h('p', { class: 'summary' }, `${page.items.length} record${page.items.length === 1 ? '' : 's'}, oldest first.`),
    ...page.items.map((r) =>
      h(
        'article',
        { class: 'record', 'aria-label': `${r.type} record ${r.seq}` },
        h('h3', {}, `${r.type} `, h('span', { class: 'muted' }, `#${r.seq} · ${time(r.time)}`)),
        h(
          'dl',
          {},
          ...SHOWN.filter((k) => r[k] !== undefined).flatMap((k) => [
            h('dt', {}, k.replace('_', ' ')),
            h('dd', {}, String(r[k])),
          ]),
          ...(r.decision ? [h('dt', {}, 'decision'), h('dd', {}, decision(r))] : []),
          ...(r.data ? [h('dt', {}, 'data'), h('dd', {}, h('code', {}, JSON.stringify(r.data)))] : []),
        ),
        h('details', {}, h('summary', {}, 'Record as stored'), h('pre', {}, JSON.stringify(r, null, 2))),
      ),
    ),
  );
}
