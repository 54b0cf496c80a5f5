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
 * The verdict on kycgate's tail target: p99 added over direct <= 1 ms at 1,000 req/s, no failed request. The target
 * is stated at 1,000 req/s: a run at another rate is reported, not judged. When nginx with one worker, in the same
 * rounds, itself added more than the budget (NaN: nginx was not run), the machine's tail is larger than what is
 * judged. A miss is then UNRESOLVED, unless kycgate added more than the budget on top of nginx's figure: the
 * machine's share is in both, so that excess is kycgate's own, and it is NOT MET.
 */
export function tailVerdict(o: { rate: number; addedMs: number; nginxAddedMs: number; failures: number }): string {
  if (o.rate !== 1000) return 'not judged (the target is at 1000 req/s)';
  if (o.failures > 0) return 'NOT MET';
  if (o.addedMs <= 1) return 'MET';
  if (o.nginxAddedMs > 1 && o.addedMs - o.nginxAddedMs <= 1) {
    return `UNRESOLVED on this machine (nginx, 1 worker, itself added ${o.nginxAddedMs.toFixed(3)} ms in the same rounds)`;
  }
  return 'NOT MET';
}
