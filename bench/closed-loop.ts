/**
 * Closed-loop throughput runs: a fixed number of connections each sending the next request as soon as the previous
 * answer arrived. wrk when installed (C, one thread, cheapest per request), autocannon otherwise.
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';

export interface ClosedLoopResult {
  /** Answers received in the run, as the load generator counts them: failed answers included. */
  requests: number;
  /** The load generator's own rate: every answer, failed ones included. Report `succeededPerSecond` instead. */
  requestsPerSecond: number;
  /** Successful requests: requests - failures (a lower bound when there were socket errors, which are not answers). */
  succeeded: number;
  /** Successful requests per second: the throughput to report. */
  succeededPerSecond: number;
  /** Latency percentiles in milliseconds. */
  p50Ms: number;
  p99Ms: number;
  /** Answers with a status of 400 or more plus socket errors: a run with any is not a valid measurement. */
  failures: number;
  /** Answers with a status of 400 or more. `requests - rejected` is the number of answers below 400 received. */
  rejected: number;
  /** Connections that failed, broke or timed out (no answer for the request they carried). */
  socketErrors: number;
}

/** Adds the successful requests and their rate to what a load generator reported. */
function withSuccesses(r: Omit<ClosedLoopResult, 'succeeded' | 'succeededPerSecond'>): ClosedLoopResult {
  const succeeded = Math.max(0, r.requests - r.failures);
  return { ...r, succeeded, succeededPerSecond: r.requests > 0 ? (r.requestsPerSecond * succeeded) / r.requests : 0 };
}

export interface ClosedLoopOptions {
  url: string;
  connections: number;
  durationS: number;
  headers: Record<string, string>;
  /** Command prefix that pins the load generator, e.g. ['taskset', '-c', '1']; empty for none. */
  pin: readonly string[];
  /** Client certificate and key (PEM files) presented on every TLS connection; autocannon only (wrk has none). */
  clientCert?: { cert: string; key: string };
}

export type LoadTool = 'wrk' | 'autocannon';

export function run(
  command: string,
  args: readonly string[],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const UNIT_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

function durationMs(text: string): number {
  const m = /^([\d.]+)(us|ms|s|m|h)$/.exec(text.trim());
  if (!m) throw new Error(`unexpected wrk duration "${text}"`);
  return Number(m[1]) * UNIT_MS[m[2]!]!;
}

/** Parses the output of `wrk --latency`. */
export function parseWrk(output: string): ClosedLoopResult {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(output);
  const p50 = /^\s+50%\s+(\S+)/m.exec(output);
  const p99 = /^\s+99%\s+(\S+)/m.exec(output);
  const count = /(\d+) requests in/.exec(output);
  if (!rps || !p50 || !p99 || !count) throw new Error(`cannot read wrk output:\n${output}`);
  // wrk's "Non-2xx or 3xx responses" counts answers with a status above 399 (redirects are not failures).
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(output);
  const rejected = non2xx ? Number(non2xx[1]) : 0;
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(output);
  const socketErrors = socket ? Number(socket[1]) + Number(socket[2]) + Number(socket[3]) + Number(socket[4]) : 0;
  return withSuccesses({
    requests: Number(count[1]),
    requestsPerSecond: Number(rps[1]),
    p50Ms: durationMs(p50[1]!),
    p99Ms: durationMs(p99[1]!),
    failures: rejected + socketErrors,
    rejected,
    socketErrors,
  });
}

async function runWrk(o: ClosedLoopOptions): Promise<ClosedLoopResult> {
  if (o.clientCert) throw new Error('wrk cannot present a client certificate: use autocannon for mTLS targets');
  // A 10 s timeout (wrk's default is 2 s): on a busy machine a slow answer is a latency to report, not an error.
  const args = [
    'wrk',
    '--latency',
    '--timeout',
    '10s',
    '-t',
    '1',
    '-c',
    String(o.connections),
    '-d',
    `${o.durationS}s`,
  ];
  for (const [k, v] of Object.entries(o.headers)) args.push('-H', `${k}: ${v}`);
  args.push(o.url);
  const all = [...o.pin, ...args];
  const r = await run(all[0]!, all.slice(1));
  if (r.code !== 0) throw new Error(`wrk failed (${r.code}): ${r.stderr || r.stdout}`);
  return parseWrk(r.stdout);
}

async function runAutocannon(o: ClosedLoopOptions): Promise<ClosedLoopResult> {
  const script = createRequire(import.meta.url).resolve('autocannon/autocannon.js');
  const args = [process.execPath, script, '-j', '-c', String(o.connections), '-d', String(o.durationS)];
  for (const [k, v] of Object.entries(o.headers)) args.push('-H', `${k}=${v}`);
  if (o.clientCert) args.push('--cert', o.clientCert.cert, '--key', o.clientCert.key);
  args.push(o.url);
  const all = [...o.pin, ...args];
  const r = await run(all[0]!, all.slice(1));
  if (r.code !== 0) throw new Error(`autocannon failed (${r.code}): ${r.stderr}`);
  return parseAutocannon(r.stdout);
}

/**
 * Parses `autocannon -j` output. Failures are counted as wrk counts them: answers with a status of 400 or more
 * (autocannon's non2xx also counts 1xx and 3xx; redirects are not failures) plus errors, which already include
 * timeouts (autocannon counts a timeout as an error and as a timeout).
 */
export function parseAutocannon(output: string): ClosedLoopResult {
  const j = JSON.parse(output) as {
    requests: { average: number; total: number };
    latency: { p50: number; p99: number };
    non2xx: number;
    '3xx'?: number;
    errors: number;
    timeouts: number;
  };
  const rejected = j.non2xx - (j['3xx'] ?? 0);
  return withSuccesses({
    requests: j.requests.total,
    requestsPerSecond: j.requests.average,
    p50Ms: j.latency.p50,
    p99Ms: j.latency.p99,
    failures: rejected + j.errors,
    rejected,
    socketErrors: j.errors,
  });
}

export function closedLoop(tool: LoadTool, options: ClosedLoopOptions): Promise<ClosedLoopResult> {
  return tool === 'wrk' ? runWrk(options) : runAutocannon(options);
}
