/** The median's confidence interval: exact order statistics for known sizes, NaN when too few rounds. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lineVerdict, median, medianInterval } from './stats.js';

test('stats: the 95% interval of the median uses the binomial order statistics', () => {
  const values = Array.from({ length: 40 }, (_, i) => 40 - i); // 1..40, unsorted
  // n = 40: P(X <= 13) = 0.0192 <= 0.025 < P(X <= 14) = 0.0403, so k = 14: the 14th and 27th smallest.
  assert.deepEqual(medianInterval(values), { low: 14, high: 27, n: 40 });
  // n = 6: P(X = 0) = 0.0156 <= 0.025 < P(X <= 1) = 0.109, so the interval is the whole range.
  assert.deepEqual(medianInterval([6, 1, 5, 2, 4, 3]), { low: 1, high: 6, n: 6 });
});

test('stats: too few rounds for the confidence give no interval; invalid rounds are left out', () => {
  const five = medianInterval([1, 2, 3, 4, 5]);
  assert.ok(Number.isNaN(five.low) && Number.isNaN(five.high), 'five values cannot hold 95%: 1 - 2/32 = 93.75%');
  const withInvalid = medianInterval([NaN, 6, 1, 5, NaN, 2, 4, 3]);
  assert.deepEqual(withInvalid, { low: 1, high: 6, n: 6 });
  assert.equal(median([NaN, 3, 1, 2]), 2);
});

test('stats: a line is met, not met or unresolved by where the whole interval lies, never by the median alone', () => {
  const ci = (low: number, high: number) => ({ low, high, n: 40 });
  // A throughput target (at least 1.25x), judged on two measures at once.
  assert.equal(lineVerdict([ci(1.26, 1.49), ci(1.25, 1.52)], 1.25, 'at-least'), 'met');
  assert.equal(lineVerdict([ci(1.26, 1.49), ci(1.19, 1.44)], 1.25, 'at-least'), 'unresolved');
  assert.equal(lineVerdict([ci(1.26, 1.49), ci(1.0, 1.2)], 1.25, 'at-least'), 'not met');
  // A cost budget (at most 5%).
  assert.equal(lineVerdict([ci(-0.06, 0.05)], 0.05, 'at-most'), 'met');
  assert.equal(lineVerdict([ci(0.051, 0.119)], 0.05, 'at-most'), 'not met');
  assert.equal(lineVerdict([ci(-0.03, 0.053)], 0.05, 'at-most'), 'unresolved');
  assert.equal(lineVerdict([ci(0.01, 0.02), { low: NaN, high: NaN, n: 5 }], 0.05, 'at-most'), 'no interval');
});
