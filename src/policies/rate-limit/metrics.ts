import type { Services } from '../../pipeline/services.js';

export function registerRateLimitMetrics(services: Services): void {
  const rejected = services.metrics.counter(
    'kycgate_ratelimit_rejections_total',
    'Requests rejected by rate limits (ratelimit.rejected events).',
    ['route'],
  );
  services.events.on('ratelimit.rejected', (event) => rejected.labels(event.route ?? 'unknown').inc());
}
