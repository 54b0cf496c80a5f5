/**
 * Metrics of a gateway worker (`server.workers` > 1). The supervisor serves one /metrics for all workers: it asks
 * each for its registry (`metrics.collect`) and sums what they send back (`metrics.part`). Counters and histograms
 * add up across workers; a gauge is a state of one process (a certificate's expiry, a breaker, the journal's last
 * seq), so each worker's gauges are sent with a `worker` label and shown side by side rather than summed. The
 * requests each worker took in are counted with its slot, so the sum still shows how traffic spread.
 */
import { Counter, type MetricObjectWithValues, type MetricValue } from 'prom-client';
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
  cluster.on('metrics.collect', (id) => {
    void services.metrics.registry.getMetricsAsJSON().then(
      (metrics) => cluster.send('metrics.part', { id, metrics: metrics.map((m) => labelGauges(m, worker)) }),
      () => cluster.send('metrics.part', { id, metrics: [] }),
    );
  });
}

function labelGauges(m: MetricObjectWithValues<MetricValue<string>>, worker: string) {
  // The type is the text 'gauge' at run time (prom-client's declarations say an enum).
  if ((m.type as unknown as string) !== 'gauge') return m;
  return { ...m, values: m.values.map((v) => ({ ...v, labels: { ...v.labels, worker } })) };
}
