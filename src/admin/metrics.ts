import type { Services } from '../pipeline/services.js';

export function registerAdminMetrics(services: Services): () => void {
  const authFailures = services.metrics.counter(
    'kycgate_admin_auth_failures_total',
    'Admin API and dashboard authentication failures by reason (admin.auth.failure events).',
    ['reason'],
  );
  const refusals = services.metrics.counter(
    'kycgate_admin_refusals_total',
    'Admin API calls answered with a problem, by problem type (admin.refused events).',
    ['problem'],
  );
  const stops = [
    services.events.on('admin.auth.failure', (e) => authFailures.labels(e.outcome ?? 'unknown').inc()),
    services.events.on('admin.refused', (e) => refusals.labels(e.outcome ?? 'unknown').inc()),
  ];
  return () => {
    for (const stop of stops) stop();
  };
}
