/** Small statistics helpers for benchmark results. */

/** Median of the values that are numbers: NaN marks an invalid round (one with failed requests) and is left out. */
export function median(values: readonly number[]): number {
  const sorted = values.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Nearest-rank percentile (p in 0..100) of an ascending-sorted array. */
export function percentileSorted(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

/**
 * Distribution-free confidence interval of the median (order statistics and the binomial distribution, no
 * assumption about the shape of the noise): with n valid values sorted, the interval [x(k), x(n-k+1)] holds the
 * true median with probability at least `confidence`, for the largest such k. Rounds on a shared machine have
 * heavy-tailed noise (a stalled round can be off by half), which this tolerates where a mean and a standard
 * deviation would not. NaN values (invalid rounds) are left out; with too few values for the confidence asked,
 * both bounds are NaN.
 */
export interface MedianInterval {
  low: number;
  high: number;
  /** Valid values the interval was computed from. */
  n: number;
}

export function medianInterval(values: readonly number[], confidence = 0.95): MedianInterval {
  const sorted = values.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
  const n = sorted.length;
  const tail = (1 - confidence) / 2;
  // P(X <= j) for X ~ Binomial(n, 1/2), accumulated term by term; k is the largest rank with P(X < k) <= tail.
  let k = 0;
  let cumulative = 0;
  let term = 0.5 ** n;
  for (let j = 0; j < n; j++) {
    cumulative += term;
    if (cumulative > tail) break;
    k = j + 1;
    term = (term * (n - j)) / (j + 1);
  }
  if (k === 0) return { low: NaN, high: NaN, n };
  return { low: sorted[k - 1]!, high: sorted[n - k]!, n };
}

/**
 * Judges intervals of the median against a line: `met` when every interval lies wholly on the right side of it
 * (at or above for `at-least`, at or below for `at-most`), `not met` when any lies wholly on the wrong side,
 * `unresolved` when the line is inside one, `no interval` when one has none (too few rounds). Never the median alone:
 * on a noisy machine a median a little past the line proves nothing.
 */
export function lineVerdict(
  intervals: readonly MedianInterval[],
  line: number,
  side: 'at-least' | 'at-most',
): 'met' | 'not met' | 'unresolved' | 'no interval' {
  if (intervals.some((ci) => Number.isNaN(ci.low))) return 'no interval';
  const right = (ci: MedianInterval) => (side === 'at-least' ? ci.low >= line : ci.high <= line);
  const wrong = (ci: MedianInterval) => (side === 'at-least' ? ci.high < line : ci.low > line);
  if (intervals.every(right)) return 'met';
  if (intervals.some(wrong)) return 'not met';
  return 'unresolved';
}
