/**
 * One fixed-rate run, as the proxy benchmark (run.ts) and the decision benchmark (decision.ts) both take it: the
 * open-loop generator (open-loop.ts) pinned to the load core, under the idle-state hold when asked, and the reason
 * its figures are not valid, when they are not.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from './closed-loop.js';
import { withIdleLatencyHold } from './idle-latency.js';
import { lineVerdict, median, medianInterval } from './stats.js';

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
 * Both were measured in each round, so each round gives one difference (kycgate's p99 minus nginx's: direct's
 * share cancels), and the verdict is the one every budget gets: the 95% interval of the median difference against
 * the 0.5 ms line (`lineVerdict`), MET when wholly at or below it, NOT MET when wholly above, UNRESOLVED when the
 * line is inside (more rounds then). One round's p99 moves by milliseconds, so a median of a few rounds alone would
 * decide on noise. Without nginx in the run (`overNginx` empty or all NaN) the p99 added over direct is judged
 * against the absolute 1 ms the same way. A run at another rate is reported, not judged. NaN marks an invalid round.
 */
export function tailVerdict(o: {
  rate: number;
  failures: number;
  /** Per round: kycgate's p99 minus nginx's, in ms. */
  overNginx: readonly number[];
  /** Per round: the p99 kycgate added over direct, in ms. */
  added: readonly number[];
}): string {
  if (o.rate !== 1000) return 'not judged (the target is at 1000 req/s)';
  if (o.failures > 0) return 'NOT MET (failed requests)';
  const alone = !o.overNginx.some((v) => !Number.isNaN(v));
  const values = alone ? o.added : o.overNginx;
  const line = alone ? 1 : 0.5;
  const ci = medianInterval(values);
  if (ci.n === 0) return 'NOT MET (no valid round)';
  const what = alone
    ? 'judged alone: p99 added over direct <= 1 ms'
    : "kycgate's p99 minus nginx's (1 worker) in the same round <= 0.5 ms";
  const figures =
    `median ${signed(median(values))} ms` +
    (Number.isNaN(ci.low) ? '' : ` [${signed(ci.low)}, ${signed(ci.high)}]`) +
    `, ${ci.n} rounds`;
  const verdict = lineVerdict([ci], line, 'at-most');
  const word =
    verdict === 'met'
      ? 'MET'
      : verdict === 'not met'
        ? 'NOT MET'
        : verdict === 'unresolved'
          ? 'UNRESOLVED'
          : 'NO VERDICT (fewer than 6 valid rounds)';
  return `${word} (${what}: ${figures})`;
}

function signed(ms: number): string {
  return (ms > 0 ? '+' : '') + ms.toFixed(3);
}
