/** Metrics of the `rate-limit` policy, fed by its `ratelimit.rejected` events. */
import { Counter } from 'prom-client';
import type { Services } from '../../pipeline/services.js';

export function registerRateLimitMetrics(services: Services): void {
  const rejected = services.metrics.get(
    'kycgate_ratelimit_rejections_total',
    (registry) =>
      new Counter({
        name: 'kycgate_ratelimit_rejections_total',
        help: 'Requests rejected by rate limits (ratelimit.rejected events).',
        labelNames: ['route'],
        registers: [registry],
      }),
  );
  services.events.on('ratelimit.rejected', (event) => rejected.labels(event.route ?? 'unknown').inc());
}
