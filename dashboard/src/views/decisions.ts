/** Decisions over time by outcome (stacked bars), filtered by route and consumer, with totals by route and consumer. */
import { call } from '../api.js';
import { draw, OUTCOME_COLOURS, OUTCOME_LABELS, OUTCOMES } from '../charts.js';
import { h, replace, table } from '../dom.js';
import { stepOf, type View } from './types.js';

type Counts = Record<(typeof OUTCOMES)[number], number>;
interface Series {
  from: string;
  to: string;
  step_seconds: number;
  since_start: string;
  buckets: Array<{ t: string } & Counts>;
  by_route: Record<string, Counts>;
  by_consumer: Record<string, Counts>;
}

const total = (c: Counts) => OUTCOMES.reduce((n, o) => n + c[o], 0);
const routes = new Set<string>();
const consumers = new Set<string>();

function select(label: string, id: string, values: Set<string>, current: string, onChange: (v: string) => void): Node {
  const el = h(
    'select',
    { id, onchange: (e: Event) => onChange((e.target as HTMLSelectElement).value) },
    h('option', { value: '' }, 'All'),
    ...[...values].sort().map((v) => h('option', { value: v, selected: v === current }, v === '-' ? '(none)' : v)),
  );
  return h('div', { class: 'field' }, h('label', { for: id }, label), el);
}

function countsTable(caption: string, first: string, rows: Record<string, Counts>): Node {
  const entries = Object.entries(rows).sort((a, b) => total(b[1]) - total(a[1]));
  return table(
    caption,
    [first, ...OUTCOMES.map((o) => OUTCOME_LABELS[o]!), 'Total'],
    entries,
    ([name, c]) => [name === '-' ? '(none)' : name, ...OUTCOMES.map((o) => c[o]), total(c)],
    'No requests in this window.',
  );
}

export const decisionsView: View = {
  id: 'decisions',
  title: 'Decisions over time',
  nav: 'Decisions',
  async load(ctx, body) {
    const s = await call<Series>('/stats/decisions', {
      window: ctx.window,
      step: stepOf(ctx.window),
      route: ctx.filter.route || undefined,
      consumer: ctx.filter.consumer || undefined,
    });
    for (const r of Object.keys(s.by_route)) routes.add(r);
    for (const c of Object.keys(s.by_consumer)) consumers.add(c);
    const sum = zero();
    for (const b of s.buckets) for (const o of OUTCOMES) sum[o] += b[o];
    const summary = `${total(sum)} requests: ${OUTCOMES.map((o) => `${sum[o]} ${OUTCOME_LABELS[o]!.toLowerCase()}`).join(', ')}`;
    const canvas = h('canvas', {
      role: 'img',
      'aria-label': `Decisions per ${s.step_seconds / 60} min, stacked by outcome. ${summary}.`,
    });
    replace(
      body,
      h(
        'form',
        { class: 'filters', onsubmit: (e: Event) => e.preventDefault() },
        select('Route', 'decisions-route', routes, ctx.filter.route, (v) => {
          ctx.filter.route = v;
          ctx.filterChanged();
        }),
        select('Consumer', 'decisions-consumer', consumers, ctx.filter.consumer, (v) => {
          ctx.filter.consumer = v;
          ctx.filterChanged();
        }),
      ),
      h('p', { class: 'summary', 'data-testid': 'decisions-summary' }, summary),
      h('figure', { class: 'chart tall' }, canvas),
      h(
        'div',
        { class: 'two' },
        h('div', {}, h('h3', {}, 'By route'), countsTable('Decisions by route', 'Route', s.by_route)),
        h('div', {}, h('h3', {}, 'By consumer'), countsTable('Decisions by consumer', 'Consumer', s.by_consumer)),
      ),
      h('p', { class: 'note' }, `This instance, counting since ${new Date(s.since_start).toLocaleString()}.`),
    );
    const labels = s.buckets.map((b) =>
      new Date(b.t).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' }),
    );
    draw(canvas, {
      type: 'bar',
      data: {
        labels,
        datasets: OUTCOMES.map((o) => ({
          label: OUTCOME_LABELS[o]!,
          data: s.buckets.map((b) => b[o]),
          backgroundColor: OUTCOME_COLOURS[o]!,
        })),
      },
      options: {
        maintainAspectRatio: false,
        scales: {
          x: { stacked: true, ticks: { maxTicksLimit: 12 } },
          y: { stacked: true, beginAtZero: true, ticks: { precision: 0 }, title: { display: true, text: 'requests' } },
        },
        plugins: { legend: { position: 'bottom' } },
      },
    });
  },
};

function zero(): Counts {
  return { allowed: 0, denied: 0, challenged: 0, rate_limited: 0, error: 0 };
}
