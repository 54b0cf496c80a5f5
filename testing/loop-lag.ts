/**
 * How late this process's event loop ran while a test measured a wait. On a loaded machine a timer fires late by
 * however long the process was not scheduled; a bound on a wait ("within the deadline plus 100 ms") adds that
 * lateness, so it holds the gateway to its deadline, not the machine to its speed. `maxMs` is the longest single
 * delay; `totalMs` adds every delay up, for a wait long enough to meet several (a 2 s answer on a machine that
 * takes the process away for 100 ms at a time, again and again).
 */
import { performance } from 'node:perf_hooks';

export interface LoopLag {
  /** The longest delay seen so far, in milliseconds. */
  maxMs(): number;
  /** Every delay so far added up, in milliseconds (the one under way included): subtract a reading taken before. */
  totalMs(): number;
  stop(): void;
}

export function watchLoopLag(resolutionMs = 10): LoopLag {
  let total = 0;
  let max = 0;
  let last = performance.now();
  /** How late the tick under way is now. */
  const pending = () => Math.max(0, performance.now() - last - resolutionMs);
  const timer = setInterval(() => {
    const late = pending();
    total += late;
    if (late > max) max = late;
    last = performance.now();
  }, resolutionMs);
  timer.unref();
  return {
    maxMs: () => Math.max(max, pending()),
    totalMs: () => total + pending(),
    stop: () => clearInterval(timer),
  };
}
