/**
 * Metrics of the KYC subsystem, fed by its events:
 *   kyc.decision        outcome = approved|declined|...      → kycgate_decisions_total{source="kyc",outcome}
 *   webhook.accepted / webhook.refused  outcome              → kycgate_webhooks_total{result,outcome}
 *   provider.call       data {provider, latency_ms}, outcome → kycgate_provider_requests_total, _duration_seconds
 *   provider.breaker    data {provider, state}               → kycgate_provider_breaker_state
 */
import { Gauge, Histogram } from 'prom-client';
import type { Services } from '../pipeline/services.js';
import type { GatewayEvent } from '../pipeline/events.js';
import { LATENCY_BUCKETS, decisionsCounter } from '../observe/metrics.js';
import type { CounterCell } from '../observe/fast-metrics.js';

const BREAKER_STATE: Record<string, number> = { closed: 0, half_open: 1, 'half-open': 1, open: 2 };

function providerOf(event: GatewayEvent): string {
  const provider = event.data?.provider;
  return typeof provider === 'string' ? provider : 'unknown';
}

/** Registers the metrics and their event listeners; returns the function that unsubscribes them. */
export function registerKycMetrics(services: Services): () => void {
  const m = services.metrics;
  const decisions = decisionsCounter(m);
  const webhooks = m.counter('kycgate_webhooks_total', 'Webhooks accepted or refused, by outcome.', [
    'result',
    'outcome',
  ]);
  const calls = m.counter(
    'kycgate_provider_requests_total',
    'Calls to verification providers by outcome (provider.call events).',
    ['provider', 'outcome'],
  );
  const latency = m.get(
    'kycgate_provider_duration_seconds',
    (r) =>
      new Histogram({
        name: 'kycgate_provider_duration_seconds',
        help: 'Verification provider call latency.',
        labelNames: ['provider'],
        buckets: LATENCY_BUCKETS,
        registers: [r],
      }),
  );
  const breaker = m.get(
    'kycgate_provider_breaker_state',
    (r) =>
      new Gauge({
        name: 'kycgate_provider_breaker_state',
        help: 'Circuit breaker per provider: 0 closed, 1 half open, 2 open.',
        labelNames: ['provider'],
        registers: [r],
      }),
  );
  // Series are looked up once per outcome and kept: a kyc.decision comes with every gated request.
  const decisionCells = new Map<string, CounterCell>();
  const off = [
    services.events.on('kyc.decision', (event) => {
      const outcome = event.outcome ?? 'unknown';
      let cell = decisionCells.get(outcome);
      if (cell === undefined) decisionCells.set(outcome, (cell = decisions.cell('kyc', outcome)));
      cell.value++;
    }),
    services.events.on('webhook.accepted', (event) => webhooks.labels('accepted', event.outcome ?? 'unknown').inc()),
    services.events.on('webhook.refused', (event) => webhooks.labels('refused', event.outcome ?? 'unknown').inc()),
    services.events.on('provider.call', (event) => {
      const provider = providerOf(event);
      calls.labels(provider, event.outcome ?? 'unknown').inc();
      const ms = event.data?.latency_ms;
      if (typeof ms === 'number') latency.labels(provider).observe(ms / 1000);
    }),
    services.events.on('provider.breaker', (event) => {
      const state = BREAKER_STATE[String(event.data?.state)];
      if (state !== undefined) breaker.labels(providerOf(event)).set(state);
    }),
  ];
  return () => {
    for (const f of off) f();
  };
}
