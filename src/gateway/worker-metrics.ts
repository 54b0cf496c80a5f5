/**
 * Metrics of a gateway worker (`server.workers` > 1): the requests it took in, labelled with its slot, so that the
 * sum the supervisor serves at /metrics still shows how traffic spread over workers. The worker's registry is
 * what prom-client's cluster support reads when the supervisor aggregates.
 */
import { AggregatorRegistry, Counter } from 'prom-client';
import type { ClusterChannel } from '../pipeline/cluster.js';
import type { Services } from '../pipeline/services.js';

export function registerWorkerMetrics(services: Services, cluster: ClusterChannel, requests: () => number): void {
  const worker = String(cluster.slot);
  services.metrics.get(
    'kycgate_worker_requests_total',
    (registry) =>
      new Counter({
        name: 'kycgate_worker_requests_total',
        help: 'Requests taken in by each gateway worker since it started.',
        labelNames: ['worker'],
        registers: [registry],
        collect() {
          this.reset();
          this.inc({ worker }, requests());
        },
      }),
  );
  // Answers the supervisor's metric requests with this registry (prom-client listens once an aggregator exists).
  AggregatorRegistry.setRegistries([services.metrics.registry]);
  new AggregatorRegistry();
}
