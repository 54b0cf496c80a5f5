/**
 * Machine stall probe: spins on its core for a while, reading the clock, and records every stretch in which it did
 * not run (the virtual CPU was descheduled by the hypervisor, an interrupt or another task took the core). It
 * allocates nothing in the loop, so no garbage collection can pause it. Runs as its own process, pinned by the
 * caller, and prints one JSON line (see StallProbeResult in machine-stalls.ts).
 *
 *   node dist/bench/stall-probe.js '{"durationS":1}'
 *
 * A proxy at 1,000 req/s is idle most of the time, yet every request that arrives while its core is stalled waits
 * for the stall to end: stalls of a millisecond or more, several times a second, are a p99 of that size for any
 * proxy on that core, nginx included. This measures them, so the latency figures can be read against them.
 */
import { performance } from 'node:perf_hooks';

const { durationS } = JSON.parse(process.argv[2] ?? '{}') as { durationS?: number };
const durationMs = (durationS ?? 1) * 1000;

let over05 = 0;
let over1 = 0;
let over2 = 0;
let over5 = 0;
let lostMs = 0;
let maxGapMs = 0;
const t0 = performance.now();
let last = t0;
// Progress marker, written once the probe's clock runs: a process stopped after it is stopped while it probes
// (tests that stop it on purpose read stderr).
process.stderr.write('probing\n');
for (;;) {
  const now = performance.now();
  const gap = now - last;
  last = now;
  if (gap >= 0.5) {
    over05++;
    lostMs += gap;
    if (gap >= 1) over1++;
    if (gap >= 2) over2++;
    if (gap >= 5) over5++;
    if (gap > maxGapMs) maxGapMs = gap;
  }
  if (now - t0 >= durationMs) break;
}
const seconds = (last - t0) / 1000;
process.stdout.write(JSON.stringify({ seconds, over05, over1, over2, over5, lostMs, maxGapMs }) + '\n');
