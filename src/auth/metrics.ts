/**
 * Metrics of client authentication, fed by `auth.failure` events (the authenticate and client-certificate policies,
 * and TLS listeners refusing client certificates at the handshake).
 */
import { Counter } from 'prom-client';
import type { Services } from '../pipeline/services.js';

export function registerAuthMetrics(services: Services): () => void {
  const failures = services.metrics.get(
    'kycgate_auth_failures_total',
    (registry) =>
      new Counter({
        name: 'kycgate_auth_failures_total',
        help: 'Authentication failures by reason (auth.failure events).',
        labelNames: ['reason'],
        registers: [registry],
      }),
  );
  return services.events.on('auth.failure', (event) => failures.labels(event.outcome ?? 'unknown').inc());
}
