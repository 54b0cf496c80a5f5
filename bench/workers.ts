/**
 * The workers benchmark (`server.workers`): the bare route with 1, 2 and 4 workers (the configured list), measured
 * in interleaved rounds as requests per CPU-second of the whole gateway (supervisor and workers), with each
 * worker's share of the requests (from `kycgate_worker_requests_total` on the admin listener); then a local rate
 * limit under overload across 2 workers, whose admitted count is compared with what one GCRA counter admits in the
 * same time (burst + rate × duration). bench/worker-kill.ts kills one of 2 workers under load.
 *
 * The gateways are not pinned (their workers need more than one core); the load generator and the upstream keep
 * the benchmark's load pin. Requests per CPU-second stays meaningful when the machine's cores are shared.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { request } from 'undici';
import { closedLoop, type ClosedLoopResult, type LoadTool } from './closed-loop.js';
import { cpuSeconds, freePort, startProcess, waitForPort, type Managed } from './processes.js';
import { lineVerdict, median, medianInterval, type MedianInterval } from './stats.js';

export interface WorkersBenchOptions {
  /** Built kycgate (its dist/src/cli/main.js). */
  cli: string;
  work: string;
  /** The benchmark upstream's HTTP URL. */
  upstream: string;
  tool: LoadTool;
  connections: number;
  durationS: number;
  warmupS: number;
  rounds: number;
  workers: readonly number[];
  loadPin: readonly string[];
  /** Registers a started process for the benchmark's cleanup. */
  track(m: Managed): void;
}

export interface WorkersRow {
  workers: number;
  /** Medians over rounds. */
  requestsPerSecond: number;
  requestsPerCpuSecond: number;
  /** Requests each worker took in over every round (index = slot). */
  perWorker: number[];
  failures: number;
  /** Requests per CPU-second over one worker's in the same round: median and its 95% interval (not for 1). */
  ratio?: { median: number; interval: MedianInterval };
}

export interface RateLimitRow {
  workers: number;
  rate: number;
  burst: number;
  durationS: number;
  offeredPerSecond: number;
  admitted: number;
  /** What one GCRA counter admits over the run: burst + rate × duration. */
  expected: number;
  deviation: number;
}

export interface WorkersResult {
  rows: WorkersRow[];
  rateLimit: RateLimitRow[];
}

/**
 * The rate limit's rate and burst per second. Low against the offered load (several thousand per second), so the
 * run is an overload many times over, and the requests in flight when the load generator stops (at most one per
 * connection) are a small fraction of what a 10 s run admits.
 */
const RATE = 200;
const RATE_RUN_S = 10;

export interface Running {
  workers: number;
  url: string;
  admin: string;
  pid: number;
  /** The gateway's config file, data directory and stdout (its log lines). */
  configFile: string;
  dataDir: string;
  logFile: string;
  process: Managed;
}

/** Keys that change the workers benchmark's gateway config: another audit section, more routes, a log level. */
export interface GatewayVariant {
  name: string;
  audit?: Record<string, unknown>;
  routes?: unknown[];
  logLevel?: string;
}

export async function startGateway(
  o: WorkersBenchOptions,
  workers: number,
  variant?: GatewayVariant,
): Promise<Running> {
  const port = await freePort();
  const adminPort = await freePort();
  const origin = new URL(o.upstream).origin;
  const config = {
    server: { workers },
    listeners: [{ name: 'http', port }],
    admin: { port: adminPort },
    audit: variant?.audit ?? { metrics: { enabled: true } },
    log: { level: variant?.logLevel ?? 'warn' },
    upstreams: { bench: { targets: [{ url: origin }] } },
    routes: [
      ...(variant?.routes ?? []),
      { name: 'bench', match: { prefix: '/' }, upstream: 'bench' },
      {
        name: 'limited',
        match: { prefix: '/limited' },
        upstream: 'bench',
        policies: [
          {
            'rate-limit': {
              limits: [{ rate: RATE, per: 'second', burst: RATE, key: ['header:x-bench-run'] }],
              headers: 'none',
            },
          },
        ],
      },
    ],
  };
  const id = `kycgate-workers-${workers}${variant ? `-${variant.name}` : ''}`;
  const file = path.join(o.work, `${id}.yaml`);
  const log = path.join(o.work, `${id}.log`);
  writeFileSync(file, JSON.stringify(config, null, 2));
  writeFileSync(log, '');
  const proc = startProcess(`kycgate ${workers} workers`, [], [process.execPath, o.cli, 'start', '-c', file], {
    env: { ...process.env, KYCGATE_DATA_DIR: path.join(o.work, id) },
    stdoutFile: log,
  });
  o.track(proc);
  await waitForPort(port, { failed: proc.failed, timeoutMs: 300_000 });
  const running: Running = {
    workers,
    url: `http://127.0.0.1:${port}`,
    admin: `http://127.0.0.1:${adminPort}`,
    pid: proc.child.pid!,
    configFile: file,
    dataDir: path.join(o.work, id),
    logFile: log,
    process: proc,
  };
  // Every worker serves once each reports its requests in /metrics (a single process serves once it listens).
  if (workers > 1) {
    await waitForPort(adminPort, { failed: proc.failed, timeoutMs: 300_000 });
    const deadline = Date.now() + 300_000;
    while ((await perWorker(running).catch(() => [])).filter((v) => v !== undefined).length < workers) {
      const failed = proc.failed();
      if (failed !== undefined) throw new Error(failed);
      if (Date.now() > deadline) throw new Error(`kycgate with ${workers} workers did not start`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  return running;
}

/** Requests each worker took in so far (one process: its total). */
export async function perWorker(g: Running): Promise<number[]> {
  const body = await (await request(g.admin + '/metrics')).body.text();
  if (g.workers === 1) {
    let total = 0;
    for (const m of body.matchAll(/^kycgate_requests_total\{[^}]*\} (\d+)/gm)) total += Number(m[1]);
    return [total];
  }
  const out: number[] = [];
  for (const m of body.matchAll(/^kycgate_worker_requests_total\{worker="(\d+)"\} (\d+)/gm))
    out[Number(m[1])] = Number(m[2]);
  return out;
}

export async function measure(o: WorkersBenchOptions, g: Running, durationS: number, path = '/bench', run = '') {
  const cpuBefore = cpuSeconds(g.pid) ?? 0;
  const r: ClosedLoopResult = await closedLoop(o.tool, {
    url: g.url + path,
    connections: o.connections,
    durationS,
    headers: run === '' ? {} : { 'x-bench-run': run },
    pin: o.loadPin,
  });
  const cpu = (cpuSeconds(g.pid) ?? 0) - cpuBefore;
  return { r, cpu };
}

export async function workersBench(o: WorkersBenchOptions): Promise<WorkersResult> {
  const gateways: Running[] = [];
  for (const n of o.workers) gateways.push(await startGateway(o, n));
  for (const g of gateways) await measure(o, g, o.warmupS);
  const samples = new Map<number, { rps: number[]; perCpu: number[]; failures: number }>();
  const start = new Map<number, number[]>();
  for (const g of gateways) {
    samples.set(g.workers, { rps: [], perCpu: [], failures: 0 });
    start.set(g.workers, await perWorker(g));
  }
  for (let round = 0; round < o.rounds; round++) {
    // The order rotates every round, so drift in background load spreads over every configuration.
    for (let i = 0; i < gateways.length; i++) {
      const g = gateways[(i + round) % gateways.length]!;
      const { r, cpu } = await measure(o, g, o.durationS);
      const s = samples.get(g.workers)!;
      s.rps.push(r.succeededPerSecond);
      if (cpu > 0) s.perCpu.push(r.succeeded / cpu);
      s.failures += r.failures;
    }
  }
  const rows: WorkersRow[] = [];
  const one = samples.get(1);
  for (const g of gateways) {
    const s = samples.get(g.workers)!;
    const before = start.get(g.workers)!;
    const after = await perWorker(g);
    const ratios =
      one === undefined || g.workers === 1 || one.perCpu.length !== s.perCpu.length
        ? undefined
        : s.perCpu.map((v, i) => v / one.perCpu[i]!);
    rows.push({
      ...(ratios ? { ratio: { median: median(ratios), interval: medianInterval(ratios) } } : {}),
      workers: g.workers,
      requestsPerSecond: median(s.rps),
      requestsPerCpuSecond: median(s.perCpu),
      perWorker: Array.from({ length: g.workers }, (_, i) => (after[i] ?? 0) - (before[i] ?? 0)),
      failures: s.failures,
    });
  }
  const rateLimit: RateLimitRow[] = [];
  for (const g of gateways.filter((x) => x.workers > 1)) {
    const durationS = Math.max(RATE_RUN_S, o.durationS);
    const { r } = await measure(o, g, durationS, '/limited/bench', `run-${g.workers}-${Date.now()}`);
    const elapsedS = r.requests / r.requestsPerSecond;
    const expected = Math.floor(RATE + RATE * elapsedS);
    rateLimit.push({
      workers: g.workers,
      rate: RATE,
      burst: RATE,
      durationS: elapsedS,
      offeredPerSecond: r.requestsPerSecond,
      admitted: r.succeeded,
      expected,
      deviation: (r.succeeded - expected) / expected,
    });
  }
  return { rows, rateLimit };
}

export function printWorkersResult(result: WorkersResult, cpus: number): void {
  console.log(`\nworkers (server.workers), bare route, gateways unpinned on ${cpus} cores:`);
  const one = result.rows.find((r) => r.workers === 1);
  for (const row of result.rows) {
    let ratio = '';
    if (row.ratio) {
      const { median: m, interval: ci } = row.ratio;
      const verdict = lineVerdict([ci], 0.9, 'at-least');
      const judged =
        verdict === 'no interval' ? 'fewer than 6 rounds: no verdict' : `within 10%: ${verdict.toUpperCase()}`;
      ratio = ` (${m.toFixed(2)}x one worker [${ci.low.toFixed(2)}, ${ci.high.toFixed(2)}], ${judged})`;
    } else if (one && row.workers !== 1) {
      ratio = ` (${(row.requestsPerCpuSecond / one.requestsPerCpuSecond).toFixed(2)}x one worker)`;
    }
    const total = row.perWorker.reduce((a, b) => a + b, 0);
    const shares = row.perWorker
      .map((v, i) => `w${i} ${v} (${total ? ((100 * v) / total).toFixed(0) : 0}%)`)
      .join(', ');
    console.log(
      `  ${row.workers} worker${row.workers === 1 ? ' ' : 's'}: ${row.requestsPerSecond.toFixed(0)} req/s, ` +
        `${row.requestsPerCpuSecond.toFixed(0)} req per CPU-second${ratio}; ${row.failures} failed; per worker: ${shares}`,
    );
  }
  for (const r of result.rateLimit) {
    const overload = r.offeredPerSecond / r.rate;
    const verdict =
      overload < 4
        ? 'not judged: less than 4x overload'
        : Math.abs(r.deviation) <= 0.02
          ? 'within 2%'
          : 'OFF BY MORE THAN 2%';
    console.log(
      `  rate limit ${r.rate}/s (burst ${r.burst}) across ${r.workers} workers at ${overload.toFixed(1)}x ` +
        `overload for ${r.durationS.toFixed(2)} s: admitted ${r.admitted}, one counter admits ${r.expected} ` +
        `(${(100 * r.deviation).toFixed(2)}%, ${verdict})`,
    );
  }
}
