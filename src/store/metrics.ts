/** Metrics of the store: whether it answers, and decisions made on cached state while it did not. */
import { Gauge } from 'prom-client';
import type { Services } from '../pipeline/services.js';
import { FastCounter } from '../observe/fast-metrics.js';
import type { Store } from './store.js';
import type { StoreOutage } from './outage.js';

export function registerStoreMetrics(services: Services, store: Store, outage: StoreOutage): void {
  const m = services.metrics;
  const stale = m.get('kycgate_stale_decisions_total', (r) =>
    new FastCounter(
      'kycgate_stale_decisions_total',
      'Requests decided on cached state served past its refresh time because the store could not be reached, by kind of state (api_key, kyc_subject).',
      ['state'],
    ).register(r),
  );
  outage.onServedStale = (what) => stale.cell(what).value++;
  m.get(
    'kycgate_store_up',
    (r) =>
      new Gauge({
        name: 'kycgate_store_up',
        help: '1 while the store answers, 0 during an outage (requests that must read it answer 503; cached state may be served stale).',
        registers: [r],
        collect() {
          this.set(store.availability.down ? 0 : 1);
        },
      }),
  );
}
