import type { Services } from '../pipeline/services.js';

export function registerAuthMetrics(services: Services): () => void {
  const failures = services.metrics.counter(
    'kycgate_auth_failures_total',
    'Authentication failures by reason (auth.failure events).',
    ['reason'],
  );
  return services.events.on('auth.failure', (event) => failures.labels(event.outcome ?? 'unknown').inc());
}
