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
 * A fixed-rate round in which more than 1% of the requests went out over 5 ms after their slot (`lateSends`, from
 * bench/open-loop.ts) did not offer its rate, because its load core was starved: its latency is not a valid figure.
 * A few late sends, from a stall of the machine much shorter than the round, are tolerated (and kept in the JSON).
 */
export function offSchedule(res: { sent: number; lateSends: number }): boolean {
  return res.lateSends > res.sent * 0.01;
}
