/** The KYC funnel: challenged → session started → approved / declined / expired, conversion and time to verify. */
import { call } from '../api.js';
import { draw } from '../charts.js';
import { duration, h, percent, replace } from '../dom.js';
import type { View } from './types.js';

interface Funnel {
  from: string;
  to: string;
  challenged: number;
  sessions_started: number;
  approved: number;
  declined: number;
  expired: number;
  in_review: number;
  pending: number;
  conversion: number;
  time_to_verify_seconds: { count: number; p50: number | null; p90: number | null };
}

function tile(label: string, value: string, id: string): Node {
  return h(
    'div',
    { class: 'tile' },
    h('span', { class: 'tile-label', id }, label),
    h('span', { class: 'tile-value', 'aria-labelledby': id }, value),
  );
}

export const funnelView: View = {
  id: 'funnel',
  title: 'KYC funnel',
  nav: 'KYC funnel',
  async load(ctx, body) {
    const f = await call<Funnel>('/stats/kyc-funnel', { window: ctx.window });
    const steps: Array<[string, number, string]> = [
      ['Challenged', f.challenged, '#a35c00'],
      ['Session started', f.sessions_started, '#1f5fa8'],
      ['Approved', f.approved, '#1b7f3b'],
      ['Declined', f.declined, '#c62828'],
      ['Expired', f.expired, '#455a64'],
    ];
    const summary = steps.map(([l, n]) => `${l}: ${n}`).join(', ');
    const canvas = h('canvas', { role: 'img', 'aria-label': `KYC funnel. ${summary}.` });
    const t = f.time_to_verify_seconds;
    replace(
      body,
      h(
        'div',
        { class: 'tiles' },
        tile('Conversion (approved / started)', percent(f.conversion), 'funnel-conversion'),
        tile('Time to verify, median', duration(t.p50), 'funnel-p50'),
        tile('Time to verify, 90th percentile', duration(t.p90), 'funnel-p90'),
        tile('In review / pending', `${f.in_review} / ${f.pending}`, 'funnel-open'),
      ),
      h('figure', { class: 'chart' }, canvas),
      h('dl', { class: 'visually-hidden' }, ...steps.flatMap(([l, n]) => [h('dt', {}, l), h('dd', {}, n)])),
      h(
        'p',
        { class: 'note' },
        'Sessions started in the window, from the store (every instance); challenges counted by this instance.',
      ),
    );
    draw(canvas, {
      type: 'bar',
      data: {
        labels: steps.map(([l]) => l),
        datasets: [{ label: 'Subjects', data: steps.map(([, n]) => n), backgroundColor: steps.map(([, , c]) => c) }],
      },
      options: {
        indexAxis: 'y',
        maintainAspectRatio: false,
        scales: { x: { beginAtZero: true, ticks: { precision: 0 } } },
        plugins: { legend: { display: false } },
      },
    });
  },
};
