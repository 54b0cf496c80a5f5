import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CircuitBreaker, type BreakerState } from './breaker.js';
import { ProviderUnavailable } from './provider.js';

class Outage extends Error {}
const isOutage = (err: unknown) => err instanceof Outage;
const fail = () => Promise.reject(new Outage('connect ECONNREFUSED'));
const succeed = () => Promise.resolve('ok');

function clockedBreaker(threshold = 3, cooldownMs = 1000) {
  const clock = { t: 0 };
  const changes: BreakerState[] = [];
  const breaker = new CircuitBreaker({
    failureThreshold: threshold,
    cooldownMs,
    now: () => clock.t,
    onStateChange: (s) => changes.push(s),
  });
  return { clock, breaker, changes };
}

test('opens after the threshold of consecutive failures and then fails fast without calling', async () => {
  const { breaker, changes } = clockedBreaker();
  for (let i = 0; i < 3; i++) await assert.rejects(breaker.run(fail, isOutage), Outage);
  assert.equal(breaker.state, 'open');
  assert.equal(breaker.lastError, 'connect ECONNREFUSED');
  let called = false;
  await assert.rejects(
    breaker.run(() => {
      called = true;
      return succeed();
    }, isOutage),
    (err: unknown) =>
      err instanceof ProviderUnavailable && err.reason === 'breaker_open' && err.retryAfterSeconds === 1,
  );
  assert.equal(called, false);
  assert.deepEqual(changes, ['open']);
});

test('a success in between resets the count; answers that are not outages do not count', async () => {
  const { breaker } = clockedBreaker();
  await assert.rejects(breaker.run(fail, isOutage));
  await assert.rejects(breaker.run(fail, isOutage));
  await breaker.run(succeed, isOutage);
  await assert.rejects(breaker.run(fail, isOutage));
  await assert.rejects(breaker.run(() => Promise.reject(new Error('400')), isOutage));
  await assert.rejects(breaker.run(fail, isOutage));
  assert.equal(breaker.state, 'closed');
  assert.equal(breaker.consecutiveFailures, 1);
});

test('after the cool-down one probe goes through: success closes, failure re-opens', async () => {
  const { breaker, clock, changes } = clockedBreaker(1, 1000);
  await assert.rejects(breaker.run(fail, isOutage));
  assert.equal(breaker.state, 'open');
  clock.t = 999;
  await assert.rejects(breaker.run(succeed, isOutage), ProviderUnavailable);
  clock.t = 1000;
  assert.equal(breaker.state, 'half_open');
  // the probe fails: open again for a full cool-down
  await assert.rejects(breaker.run(fail, isOutage), Outage);
  assert.equal(breaker.state, 'open');
  clock.t = 2000;
  // a probe in flight holds back every other call
  let release!: () => void;
  const probe = breaker.run(() => new Promise<string>((r) => (release = () => r('ok'))), isOutage);
  await assert.rejects(
    breaker.run(succeed, isOutage),
    (err: unknown) => err instanceof ProviderUnavailable && err.reason === 'breaker_open',
  );
  release();
  assert.equal(await probe, 'ok');
  assert.equal(breaker.state, 'closed');
  assert.deepEqual(changes, ['open', 'half_open', 'open', 'half_open', 'closed']);
});
