/**
 * Metrics of the admin API, fed by its audit events: failed sign-ins and credentials (`admin.auth.failure`, by
 * reason) and every other call answered with a problem (`admin.refused`, by problem type).
 */
import { Counter } from 'prom-client';
import type { Services } from '../pipeline/services.js';

export function registerAdminMetrics(services: Services): () => void {
  const authFailures = services.metrics.get(
    'kycgate_admin_auth_failures_total',
    (registry) =>
      new Counter({
        name: 'kycgate_admin_auth_failures_total',
        help: 'Admin API and dashboard authentication failures by reason (admin.auth.failure events).',
        labelNames: ['reason'],
        registers: [registry],
      }),
  );
  const refusals = services.metrics.get(
    'kycgate_admin_refusals_total',
    (registry) =>
      new Counter({
        name: 'kycgate_admin_refusals_total',
        help: 'Admin API calls answered with a problem, by problem type (admin.refused events).',
        labelNames: ['problem'],
        registers: [registry],
      }),
  );
  const stops = [
    services.events.on('admin.auth.failure', (e) => authFailures.labels(e.outcome ?? 'unknown').inc()),
    services.events.on('admin.refused', (e) => refusals.labels(e.outcome ?? 'unknown').inc()),
  ];
  return () => {
    for (const stop of stops) stop();
  };
}
