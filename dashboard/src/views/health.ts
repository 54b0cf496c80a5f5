/** Upstream targets, verification providers (their breakers), the store, Redis and the instances sharing the store. */
import { call } from '../api.js';
import { badge, h, replace, table, time } from '../dom.js';
import type { View } from './types.js';

interface State {
  store: { driver: string; up: boolean; down_since: string | null };
  redis: { configured: boolean; connected: boolean };
  rate_limits: { counters: string };
  draining: boolean;
  ready: boolean;
}
interface Items<T> {
  items: T[];
}
interface Target {
  upstream: string;
  target: string;
  in_rotation: boolean;
}
interface Provider {
  name: string;
  breaker: string;
  last_error: string | null;
}
interface Instance {
  id: string;
  hostname: string;
  version: string;
  seen_at: string;
  alive: boolean;
  current: boolean;
}

const BREAKER = { closed: 'ok', half_open: 'warn', open: 'bad' } as const;

export const healthView: View = {
  id: 'health',
  title: 'Upstream and provider health',
  nav: 'Health',
  async load(_ctx, body) {
    const [state, upstreams, providers, instances] = await Promise.all([
      call<State>('/runtime/state'),
      call<Items<Target>>('/runtime/upstreams'),
      call<Items<Provider>>('/runtime/providers'),
      call<Items<Instance>>('/runtime/instances'),
    ]);
    replace(
      body,
      h(
        'ul',
        { class: 'status-list', 'aria-label': 'Gateway state' },
        h('li', {}, 'Ready ', state.ready ? badge('ready', 'ok') : badge('not ready', 'bad')),
        h(
          'li',
          {},
          `Store (${state.store.driver}) `,
          state.store.up ? badge('up', 'ok') : badge(`down since ${time(state.store.down_since)}`, 'bad'),
        ),
        h(
          'li',
          {},
          'Redis ',
          !state.redis.configured
            ? badge('not used', 'info')
            : state.redis.connected
              ? badge('connected', 'ok')
              : badge('disconnected', 'bad'),
        ),
        h('li', {}, `Rate-limit counters: ${state.rate_limits.counters}`),
        state.draining ? h('li', {}, badge('draining', 'warn')) : null,
      ),
      h('h3', {}, 'Upstream targets'),
      table(
        'Upstream targets',
        ['Upstream', 'Target', 'Takes traffic'],
        upstreams.items,
        (t) => [t.upstream, t.target, t.in_rotation ? badge('in rotation', 'ok') : badge('out of rotation', 'bad')],
        'No upstreams.',
      ),
      h('h3', {}, 'Verification providers'),
      table(
        'Verification providers',
        ['Provider', 'Circuit breaker', 'Last error'],
        providers.items,
        (p) => [
          p.name,
          badge(p.breaker.replace('_', ' '), BREAKER[p.breaker as keyof typeof BREAKER] ?? 'info'),
          p.last_error ?? '—',
        ],
        'No verification providers configured.',
      ),
      h('h3', {}, 'Instances'),
      table(
        'Instances sharing the store',
        ['Instance', 'Host', 'Version', 'Last seen', 'State'],
        instances.items,
        (i) => [
          i.current ? `${i.id} (this one)` : i.id,
          i.hostname,
          i.version,
          time(i.seen_at),
          i.alive ? badge('alive', 'ok') : badge('gone', 'warn'),
        ],
        'No instances seen.',
      ),
    );
  },
};
