/**
 * One fixed-rate run, as the proxy benchmark (run.ts) and the decision benchmark (decision.ts) both take it: the
 * open-loop generator (open-loop.ts) pinned to the load core, under the idle-state hold when asked, and the reason
 * its figures are not valid, when they are not.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from './closed-loop.js';
import { withIdleLatencyHold } from './idle-latency.js';

/** What open-loop.ts prints. */
export interface OpenLoopResult {
  sent: number;
  completed: number;
  failures: number;
  rate: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  maxLagMs: number;
  lateSends: number;
}

export interface FixedRateOptions {
  url: string;
  rate: number;
  durationS: number;
  headers: Record<string, string>;
  /** taskset prefix of the load core (empty without pinning). */
  pin: readonly string[];
  /** Hold idle CPUs polling while it runs (idle-latency.ts). */
  pmQos: boolean;
}

const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'open-loop.js');

export async function fixedRate(o: FixedRateOptions): Promise<OpenLoopResult> {
  const all = [
    ...o.pin,
    process.execPath,
    script,
    JSON.stringify({ url: o.url, rate: o.rate, durationS: o.durationS, warmupS: 2, headers: o.headers }),
  ];
  const r = await withIdleLatencyHold(o.pmQos, () => run(all[0]!, all.slice(1)));
  if (r.code !== 0) throw new Error(`fixed-rate run failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as OpenLoopResult;
}

/**
 * Why a run's latency is not a valid figure, or undefined when it is. The generator times successes only, so a run
 * with failed requests is invalid; so is one in which more than 1% of the requests went out over 5 ms after their
 * slot (its load core was starved and it did not offer the rate). A few late sends, from a stall of the machine much
 * shorter than the run, are tolerated (and kept in the JSON).
 */
export function invalidRun(
  res: Pick<OpenLoopResult, 'sent' | 'failures' | 'lateSends' | 'maxLagMs'>,
): string | undefined {
  if (res.failures > 0) return `${res.failures} failed requests`;
  if (res.lateSends > res.sent * 0.01)
    return `the generator sent ${res.lateSends} of ${res.sent} requests more than 5 ms late (up to ${res.maxLagMs.toFixed(1)} ms): it did not offer the rate`;
  return undefined;
}

/**
 * The verdict on kycgate's tail target at 1,000 req/s, no failed request: the p99 it adds over direct is at most
 * what nginx with one worker added in the same rounds plus 0.5 ms. This machine's stalls put milliseconds into any
 * proxy's p99, so the target is judged against a C proxy meeting the same stalls rather than as an absolute 1 ms.
 * Without nginx in the run (NaN) there is nothing to read the machine against, and the absolute 1 ms is judged.
 * A run at another rate is reported, not judged.
 */
export function tailVerdict(o: { rate: number; addedMs: number; nginxAddedMs: number; failures: number }): string {
  if (o.rate !== 1000) return 'not judged (the target is at 1000 req/s)';
  if (o.failures > 0 || Number.isNaN(o.addedMs)) return 'NOT MET';
  if (Number.isNaN(o.nginxAddedMs))
    return o.addedMs <= 1 ? 'MET (judged alone: <= 1 ms)' : 'NOT MET (judged alone: <= 1 ms)';
  const over = o.addedMs - o.nginxAddedMs;
  const against = `nginx, 1 worker, added ${o.nginxAddedMs.toFixed(3)} ms in the same rounds`;
  return over <= 0.5 ? `MET (${against})` : `NOT MET (${over.toFixed(3)} ms over nginx's figure; ${against})`;
}
