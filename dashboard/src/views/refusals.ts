/** Top refusal reasons: problem types answered and authentication failure reasons, most frequent first. */
import { call } from '../api.js';
import { draw } from '../charts.js';
import { h, replace, table } from '../dom.js';
import type { View } from './types.js';

interface Refusals {
  problems: Array<{ problem: string; count: number }>;
  auth_failures: Array<{ reason: string; count: number }>;
}

export const refusalsView: View = {
  id: 'refusals',
  title: 'Top refusal reasons',
  nav: 'Refusals',
  async load(ctx, body) {
    const r = await call<Refusals>('/stats/refusals', { window: ctx.window });
    const top = r.problems.slice(0, 10);
    const canvas = h('canvas', {
      role: 'img',
      'aria-label': `Problem types answered: ${top.map((p) => `${p.problem} ${p.count}`).join(', ') || 'none'}.`,
    });
    replace(
      body,
      top.length > 0 ? h('figure', { class: 'chart' }, canvas) : null,
      h(
        'div',
        { class: 'two' },
        h(
          'div',
          {},
          h('h3', {}, 'Problem types answered'),
          table(
            'Problem types answered',
            ['Problem type', 'Count'],
            r.problems,
            (p) => [p.problem, p.count],
            'No refusals in this window.',
          ),
        ),
        h(
          'div',
          {},
          h('h3', {}, 'Authentication failures'),
          table(
            'Authentication failure reasons',
            ['Reason', 'Count'],
            r.auth_failures,
            (p) => [p.reason, p.count],
            'No authentication failures in this window.',
          ),
        ),
      ),
    );
    if (top.length === 0) return;
    draw(canvas, {
      type: 'bar',
      data: {
        labels: top.map((p) => p.problem),
        datasets: [{ label: 'Answers', data: top.map((p) => p.count), backgroundColor: '#c62828' }],
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
