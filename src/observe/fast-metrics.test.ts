import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Counter, Histogram, Registry } from 'prom-client';
import { FastCounter, FastHistogram } from './fast-metrics.js';

test('fast cells are exposed exactly as prom-client exposes the same counter and histogram', async () => {
  const bounds = [0.001, 0.01, 0.1];
  const fast = new Registry();
  const reference = new Registry();
  const fc = new FastCounter('x_requests_total', 'Requests.', ['route', 'status_class']).register(fast);
  const fh = new FastHistogram('x_duration_seconds', 'Time.', ['route', 'status_class'], bounds).register(fast);
  const rc = new Counter({
    name: 'x_requests_total',
    help: 'Requests.',
    labelNames: ['route', 'status_class'],
    registers: [reference],
  });
  const rh = new Histogram({
    name: 'x_duration_seconds',
    help: 'Time.',
    labelNames: ['route', 'status_class'],
    buckets: bounds,
    registers: [reference],
  });
  const ok = fc.cell('api', '2xx');
  const okTime = fh.cell('api', '2xx');
  fc.cell('api', '5xx'); // created, never used: absent, as in prom-client
  for (const v of [0.0005, 0.001, 0.004, 0.2, 0.05]) {
    ok.value++;
    fh.observe(okTime, v);
    rc.labels('api', '2xx').inc();
    rh.labels('api', '2xx').observe(v);
  }
  assert.equal(await fast.metrics(), await reference.metrics());

  fast.resetMetrics();
  reference.resetMetrics();
  ok.value++;
  fh.observe(okTime, 0.002);
  rc.labels('api', '2xx').inc();
  rh.labels('api', '2xx').observe(0.002);
  assert.equal(await fast.metrics(), await reference.metrics(), 'a reset zeroes cells the caller keeps');
});
