/**
 * How late this process's event loop ran at worst while a test measured a wait. On a loaded machine a timer fires
 * late by however long the process was not scheduled; a bound on a wait ("within the deadline plus 100 ms") adds
 * that lateness, so it holds the gateway to its deadline, not the machine to its speed.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';

export interface LoopLag {
  /** The longest delay seen so far, in milliseconds. */
  maxMs(): number;
  stop(): void;
}

export function watchLoopLag(resolutionMs = 10): LoopLag {
  const histogram = monitorEventLoopDelay({ resolution: resolutionMs });
  histogram.enable();
  return {
    maxMs: () => histogram.max / 1e6,
    stop: () => histogram.disable(),
  };
}
