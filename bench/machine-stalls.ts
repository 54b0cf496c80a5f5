/**
 * Machine stalls around the fixed-rate runs: the stall probe (stall-probe.ts) spun on the proxy core and on the load
 * core at the same time, and the sum of what it saw. The report prints it next to the latency figures: a tail the
 * machine puts on every core is not the proxy's.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from './closed-loop.js';

/** What stall-probe.ts prints: stretches of at least 0.5 ms in which the probe did not run. */
export interface StallProbeResult {
  seconds: number;
  /** Stalls of at least 0.5, 1, 2 and 5 ms. */
  over05: number;
  over1: number;
  over2: number;
  over5: number;
  /** Time lost in stalls of at least 0.5 ms. */
  lostMs: number;
  maxGapMs: number;
}

const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'stall-probe.js');

/** Runs the probe for `durationS` on one core (the `pin` prefix). */
export async function probeStalls(pin: readonly string[], durationS: number): Promise<StallProbeResult> {
  const all = [...pin, process.execPath, script, JSON.stringify({ durationS })];
  const r = await run(all[0]!, all.slice(1));
  if (r.code !== 0) throw new Error(`stall probe failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as StallProbeResult;
}

/** Probes several cores at once (one probe process each), so they see the same stretch of time. */
export function probeCores(pins: ReadonlyArray<readonly string[]>, durationS: number): Promise<StallProbeResult[]> {
  return Promise.all(pins.map((pin) => probeStalls(pin, durationS)));
}

/** Sums probes of the same core (taken at different times). */
export function sumStalls(results: readonly StallProbeResult[]): StallProbeResult {
  const sum: StallProbeResult = { seconds: 0, over05: 0, over1: 0, over2: 0, over5: 0, lostMs: 0, maxGapMs: 0 };
  for (const r of results) {
    sum.seconds += r.seconds;
    sum.over05 += r.over05;
    sum.over1 += r.over1;
    sum.over2 += r.over2;
    sum.over5 += r.over5;
    sum.lostMs += r.lostMs;
    sum.maxGapMs = Math.max(sum.maxGapMs, r.maxGapMs);
  }
  return sum;
}

/** One line for the report: rates per second of probing. */
export function describeStalls(s: StallProbeResult): string {
  const per = (n: number) => (s.seconds > 0 ? n / s.seconds : NaN).toFixed(1);
  return (
    `${per(s.over1)} stalls >= 1 ms per s (${per(s.over2)} >= 2 ms, ${per(s.over5)} >= 5 ms), ` +
    `${per(s.lostMs)} ms/s lost in stalls >= 0.5 ms, longest ${s.maxGapMs.toFixed(1)} ms`
  );
}
