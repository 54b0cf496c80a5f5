/** Metrics of resilience testing: faults armed now, and faults injected. */
import { Gauge } from 'prom-client';
import type { Services } from '../pipeline/services.js';
import type { FaultRegistry } from './faults/registry.js';

export function registerResilienceMetrics(services: Services, registry: FaultRegistry): () => void {
  const m = services.metrics;
  m.get(
    'kycgate_faults_armed',
    (r) =>
      new Gauge({
        name: 'kycgate_faults_armed',
        help: 'Faults armed now on this instance, by kind of target (route, upstream, provider).',
        labelNames: ['kind'],
        registers: [r],
        collect() {
          this.reset();
          for (const kind of ['route', 'upstream', 'provider'] as const) this.set({ kind }, 0);
          for (const f of registry.all()) this.inc({ kind: f.kind });
        },
      }),
  );
  const injected = m.counter(
    'kycgate_faults_injected_total',
    'Faults injected (fault.injected events), by kind of target, target and effect (abort, reset, delay).',
    ['kind', 'target', 'effect'],
  );
  const refused = m.counter(
    'kycgate_faults_refused_total',
    'Faults not injected because the route is marked critical and the fault does not allow it, by route.',
    ['route'],
  );
  const offInjected = services.events.on('fault.injected', (event) => {
    const d = event.data ?? {};
    injected.labels(String(d.kind ?? 'unknown'), String(d.target ?? 'unknown'), event.outcome ?? 'unknown').inc();
  });
  const offRefused = services.events.on('fault.refused', (event) => refused.labels(event.route ?? 'unknown').inc());
  return () => {
    offInjected();
    offRefused();
  };
}
