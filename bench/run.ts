/**
 * `npm run bench`: the same load, at the same concurrency, in one run, against the upstream directly, kycgate
 * (one process per scenario), @fastify/http-proxy and nginx with one worker (when installed), over HTTP and HTTPS
 * (TLS between client and proxy; proxies reach the upstream over plain HTTP).
 *
 * Method (see docs/PERFORMANCE.md): every proxy runs pinned to core 0; the load generator and the upstream share
 * core 1. Each target gets one warm-up, then the targets are measured in turns for several rounds (the order
 * rotates each round), so drift in background load spreads over all of them; the table shows medians over rounds,
 * and ratios are medians of per-round ratios. A fixed-rate run then measures latency at a constant request rate.
 */
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync, existsSync, readdirSync, copyFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { issueCertificate } from '../src/workload-identity/certificates.js';
import { SCENARIOS, scenarioNamed, type Scenario } from './scenarios.js';
import { closedLoop, type ClosedLoopResult, type LoadTool } from './closed-loop.js';
import { startProcess, freePort, waitForPort, cpuSeconds, type Managed } from './processes.js';
import { proxyConfig, upstreamConfig, type TlsFiles } from './nginx.js';
import { median, medianInterval, lineVerdict, type MedianInterval } from './stats.js';
import { fixedRate, invalidRun, tailVerdict, type OpenLoopResult } from './fixed-rate.js';
import { findBinary } from '../testing/front-proxies.js';
import { decisionBench, printDecisionResult, type DecisionBenchOptions } from './decision.js';
import { summariseProfile } from './profile.js';
import { idleLatencyUnavailable } from './idle-latency.js';
import { describeStalls, probeCores, sumStalls, type StallProbeResult } from './machine-stalls.js';
import { printWorkersResult, workersBench, type WorkersBenchOptions, type WorkersResult } from './workers.js';
import { printKillRow, workerKillBench, type KillRow } from './worker-kill.js';

const HELP = `npm run bench -- [options]
  --duration <s>        measured seconds per target and closed-loop round (default 1)
  --warmup <s>          warm-up seconds per target before the first round (default 3)
  --rounds <n>          closed-loop rounds (default 15; at least 6 for the 95% intervals that judge the
                        targets and budgets)
  --rate-rounds <n>     rounds of fixed-rate and decision runs (default 3)
  --restarts <n>        restart kycgate and the Node peers n times, evenly spaced over the closed-loop rounds
                        (default 0), so the medians and intervals cover the difference between process starts too
  --connections <n>     closed-loop connections (default 50)
  --rate <n>            fixed-rate requests per second (default 1000; 0 skips the fixed-rate runs and decision latency)
  --rate-duration <s>   measured seconds per fixed-rate run (default 3)
  --stall-probe <s>     before each fixed-rate round, spin this long on the proxy core and on the load core and
                        report the stalls the machine put on them (default 1; 0 skips; see bench/stall-probe.ts)
  --scenarios <a,b>     kycgate scenarios (default: ${SCENARIOS.filter((s) => s.byDefault)
    .map((s) => s.name)
    .join(',')}; all: ${SCENARIOS.map((s) => s.name).join(',')})
  --peers <a,b>         comparison targets among direct,fastify,nginx,floor (default all available; floor is
                        bench/minimal-proxy.ts, the least a Node proxy does: node:http + undici)
  --protocols <a,b>     http,https (default both)
  --tool <wrk|autocannon>  closed-loop load generator (default wrk when installed)
  --profile             instead of comparing: profile kycgate's first scenario under load (node --cpu-prof)
  --json <file>         also write the results as JSON
  --baseline <dir>      also run the first scenario on the kycgate built in <dir> (A/B test of a change)
  --paired              also measure each scenario's cost in concurrent pairs with the first (see docs/PERFORMANCE.md)
  --paired-only         only the concurrent-pair cost of each scenario against the first (skips the other runs)
  --no-decision         skip the decision-mode runs (kycgate behind nginx auth_request; bench/decision.ts)
  --workers <a,b>       server.workers values the workers benchmark compares (default 1,2,4; bench/workers.ts)
  --no-workers          skip the workers benchmark
  --workers-only        run only the workers benchmark
  --no-pm-qos           do not hold /dev/cpu_dma_latency at 0 during latency runs (see bench/idle-latency.ts)`;

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '1' },
    warmup: { type: 'string', default: '3' },
    rounds: { type: 'string', default: '15' },
    'rate-rounds': { type: 'string', default: '3' },
    restarts: { type: 'string', default: '0' },
    connections: { type: 'string', default: '50' },
    rate: { type: 'string', default: '1000' },
    'rate-duration': { type: 'string', default: '3' },
    'stall-probe': { type: 'string', default: '1' },
    scenarios: { type: 'string' },
    peers: { type: 'string', default: 'direct,fastify,nginx,floor' },
    protocols: { type: 'string', default: 'http,https' },
    tool: { type: 'string' },
    profile: { type: 'boolean', default: false },
    json: { type: 'string' },
    baseline: { type: 'string' },
    paired: { type: 'boolean', default: false },
    'paired-only': { type: 'boolean', default: false },
    'no-decision': { type: 'boolean', default: false },
    workers: { type: 'string', default: '1,2,4' },
    'no-workers': { type: 'boolean', default: false },
    'workers-only': { type: 'boolean', default: false },
    'no-pm-qos': { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  console.log(HELP);
  process.exit(0);
}

const durationS = Number(args.duration);
const warmupS = Number(args.warmup);
const rounds = Number(args.rounds);
const rateRounds = Number(args['rate-rounds']);
const restarts = Number(args.restarts);
const connections = Number(args.connections);
const rate = Number(args.rate);
const rateDurationS = Number(args['rate-duration']);
const stallProbeS = Number(args['stall-probe']);
if (!(stallProbeS >= 0)) throw new Error(`--stall-probe takes seconds (0 or more), not "${args['stall-probe']}"`);
const protocols = args.protocols!.split(',') as Array<'http' | 'https'>;
const scenarios: Scenario[] = (
  args.scenarios ??
  SCENARIOS.filter((s) => s.byDefault)
    .map((s) => s.name)
    .join(',')
)
  .split(',')
  .map((name) => {
    const s = scenarioNamed(name);
    if (!s) throw new Error(`unknown scenario "${name}" (known: ${SCENARIOS.map((x) => x.name).join(', ')})`);
    return s;
  });
const peers = new Set(args.peers!.split(','));

function installed(binary: string): boolean {
  return findBinary(binary) !== undefined;
}

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
/** nginx's path, found once (it is often in /usr/sbin, off a user's PATH) and spawned by that path everywhere. */
const nginxBin = findBinary('nginx');
const hasNginx = nginxBin !== undefined;
const tool: LoadTool = (args.tool as LoadTool | undefined) ?? (installed('wrk') ? 'wrk' : 'autocannon');
const cpus = os.availableParallelism();
const canPin = cpus >= 2 && installed('taskset');
const PROXY_PIN = canPin ? ['taskset', '-c', '0'] : [];
const LOAD_PIN = canPin ? ['taskset', '-c', '1'] : [];

const notes: string[] = [];
if (!hasNginx)
  notes.push(
    'nginx is not installed: the nginx peer is skipped and the upstream is a Node server (apt-get install nginx).',
  );
if (tool === 'autocannon')
  notes.push(
    'wrk is not installed: closed-loop runs use autocannon, which costs more CPU per request on the shared load core (apt-get install wrk).',
  );
/** Latency runs hold idle CPUs polling (bench/idle-latency.ts) unless told not to or not permitted. */
const pmQos = (() => {
  if (args['no-pm-qos']) {
    if (rate > 0)
      notes.push(
        'latency runs without the idle-state hold (--no-pm-qos): idle CPUs halt between requests, which adds ' +
          "the machine's wake-up time to every latency figure.",
      );
    return false;
  }
  const unavailable = idleLatencyUnavailable();
  if (unavailable !== undefined)
    notes.push(
      `latency runs without the idle-state hold (${unavailable}): idle CPUs halt between requests, which ` +
        `adds the machine's wake-up time to every latency figure.`,
    );
  return unavailable === undefined;
})();
if (rate > 0 && pmQos)
  notes.push(
    'latency runs hold /dev/cpu_dma_latency at 0: idle CPUs poll instead of halting (as tuned latency-performance does), for every target alike.',
  );
if (!canPin)
  notes.push(
    `no pinning (${cpus} cores${installed('taskset') ? '' : ', taskset missing'}): proxy, upstream and load generator share every core.`,
  );

function merge(base: Record<string, unknown>, extra: Record<string, unknown> | undefined): Record<string, unknown> {
  if (!extra) return base;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(extra)) {
    const b = out[k];
    out[k] =
      b && v && typeof b === 'object' && typeof v === 'object' && !Array.isArray(b) && !Array.isArray(v)
        ? merge(b as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}

interface Target {
  label: string;
  kind: 'direct' | 'kycgate' | 'fastify' | 'nginx' | 'floor';
  urls: Record<'http' | 'https', string>;
  headers: Record<string, string>;
  /** The proxy's process, whose CPU time is measured (none for direct). */
  pid: number | undefined;
  /** The --baseline build (another checkout) running the first scenario. */
  baseline?: boolean;
  /** The kycgate scenario this target runs. */
  scenario?: Scenario;
  /** Stops the target's process and starts a fresh one with the same settings (kycgate and Node peers). */
  respawn?: () => Promise<Target>;
  /** Load generator for this target when it is not the run's (mTLS targets need autocannon for the client certificate). */
  tool?: LoadTool;
  /** Client certificate presented by the load generator. */
  clientCert?: { cert: string; key: string };
  /** Measured over HTTPS only. */
  httpsOnly?: boolean;
  /** Label of the target this one's cost is measured against (default: the first kycgate scenario). */
  costAgainst?: string;
  /** The bare route driven like the mTLS scenarios: a reference for their cost, not a scenario with a cost of its own. */
  mtlsReference?: boolean;
}

/** The reference an mTLS scenario is costed against: the bare route, driven by autocannon over HTTPS as it is. */
const MTLS_REFERENCE_SUFFIX = ' (autocannon)';

/**
 * How a cost row reads: 1 - (row's req/cpu-s / first scenario's). For the baseline row the first scenario is the
 * current build, so a positive figure means the baseline costs more: the current build is faster.
 */
const BASELINE_NOTE = '  <- baseline vs current: positive means the current build is cheaper';

/**
 * One target's measured run. A run with failed requests is invalid: its rate, latency and efficiency are NaN (printed
 * '-', left out of the medians), because errors are cheap answers that would pass for throughput.
 */
interface Measured {
  /** What the load generator reported, failed answers included. */
  load: ClosedLoopResult;
  failures: number;
  /** Successful requests per second. */
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** Share of one core the proxy used during the run. */
  cpuShare: number;
  /** Successful requests per CPU-second of the proxy: its efficiency, insensitive to time lost to other processes. */
  perCpuSecond: number;
}

/** The closed-loop load a target gets: its own tool and client certificate when it has them, else the run's. */
function loadOn(t: Target, protocol: 'http' | 'https', seconds: number): Promise<ClosedLoopResult> {
  return closedLoop(t.tool ?? tool, {
    url: t.urls[protocol],
    connections,
    durationS: seconds,
    headers: t.headers,
    pin: LOAD_PIN,
    ...(t.clientCert ? { clientCert: t.clientCert } : {}),
  });
}

async function measure(t: Target, protocol: 'http' | 'https', seconds: number): Promise<Measured> {
  const startedAt = performance.now();
  const before = t.pid === undefined ? undefined : cpuSeconds(t.pid);
  const r = await loadOn(t, protocol, seconds);
  const after = t.pid === undefined ? undefined : cpuSeconds(t.pid);
  const wall = (performance.now() - startedAt) / 1000;
  const cpu = before !== undefined && after !== undefined ? after - before : NaN;
  const valid = r.failures === 0;
  return {
    load: r,
    failures: r.failures,
    requestsPerSecond: valid ? r.succeededPerSecond : NaN,
    p50Ms: valid ? r.p50Ms : NaN,
    p99Ms: valid ? r.p99Ms : NaN,
    cpuShare: cpu / wall,
    perCpuSecond: valid ? r.succeeded / cpu : NaN,
  };
}

/**
 * Cost of each kycgate scenario against the first one (the bare route), measured in pairs running at the same
 * time: both processes share core 0 and each gets its own load generator with half the connections, so both see
 * the same background load in the same window, and the ratio of their requests per CPU-second is free of the
 * drift that moves separate runs by tens of percent on a shared machine.
 */
async function pairedCosts(kycgates: Target[], protocol: 'http' | 'https'): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  if (kycgates.length < 2) return out;
  const [base, ...others] = kycgates as [Target, ...Target[]];
  const half = Math.max(1, Math.floor(connections / 2));
  console.log(
    `\n== ${protocol.toUpperCase()} cost against ${base.label}, measured in concurrent pairs (${rounds} x ${durationS} s, ${half} connections each)`,
  );
  console.log(`${pad('scenario', 26)}${pad('cost', 8, true)}  per round (1 - req/cpu-s ratio)`);
  for (const t of others) {
    const costs: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const cpu0 = [cpuSeconds(base.pid!), cpuSeconds(t.pid!)];
      const [a, b] = await Promise.all([
        closedLoop(tool, {
          url: base.urls[protocol],
          connections: half,
          durationS,
          headers: base.headers,
          pin: LOAD_PIN,
        }),
        closedLoop(tool, { url: t.urls[protocol], connections: half, durationS, headers: t.headers, pin: LOAD_PIN }),
      ]);
      const cpu1 = [cpuSeconds(base.pid!), cpuSeconds(t.pid!)];
      if (a.failures > 0 || b.failures > 0) {
        console.log(
          `warning: failed requests in paired round ${r + 1} (${base.label} ${a.failures}, ${t.label} ${b.failures}): the round is invalid`,
        );
        costs.push(NaN);
        continue;
      }
      const perBase = a.succeeded / (cpu1[0]! - cpu0[0]!);
      const perT = b.succeeded / (cpu1[1]! - cpu0[1]!);
      costs.push(1 - perT / perBase);
    }
    const cost = median(costs);
    out[t.label] = { cost, rounds: costs };
    console.log(
      `${pad(t.label, 26)}${pad(fmt(cost * 100, 1) + '%', 8, true)}  ${costs.map((c) => fmt(c * 100, 1)).join(' ')}${t.baseline ? BASELINE_NOTE : ''}`,
    );
  }
  return out;
}

const work = mkdtempSync(path.join(os.tmpdir(), 'kycgate-bench-'));
const managed: Managed[] = [];
let cleaned = false;
async function cleanup(): Promise<void> {
  if (cleaned) return;
  cleaned = true;
  await Promise.all(managed.map((m) => m.stop()));
  rmSync(work, { recursive: true, force: true });
}
process.once('SIGINT', () => void cleanup().then(() => process.exit(130)));

async function writeCertificate(): Promise<TlsFiles> {
  const issued = await issueCertificate({ subject: 'CN=localhost', dns: ['localhost'], ips: ['127.0.0.1'] });
  const files = { cert: path.join(work, 'bench.crt'), key: path.join(work, 'bench.key') };
  writeFileSync(files.cert, issued.certPem);
  writeFileSync(files.key, issued.keyPem, { mode: 0o600 });
  return files;
}

async function startUpstream(tls: TlsFiles): Promise<Record<'http' | 'https', string>> {
  const httpPort = await freePort();
  const httpsPort = await freePort();
  if (hasNginx) {
    const conf = upstreamConfig(path.join(work, 'nginx-upstream'), httpPort, httpsPort, tls);
    managed.push(startProcess('upstream (nginx)', LOAD_PIN, [nginxBin!, '-p', path.dirname(conf), '-c', conf]));
  } else {
    const script = path.join(here, 'upstream-server.js');
    managed.push(
      startProcess('upstream (node)', LOAD_PIN, [
        process.execPath,
        script,
        JSON.stringify({ httpPort, httpsPort, ...tls }),
      ]),
    );
  }
  const { failed } = managed.at(-1)!;
  await Promise.all([waitForPort(httpPort, { failed }), waitForPort(httpsPort, { failed })]);
  return { http: `http://127.0.0.1:${httpPort}/bench`, https: `https://127.0.0.1:${httpsPort}/bench` };
}

async function startKycgate(
  scenario: Scenario,
  upstream: string,
  tls: TlsFiles,
  nodeFlags: string[] = [],
  build = root,
  suffix = '',
): Promise<{ target: Target; process: Managed }> {
  const httpPort = await freePort();
  const httpsPort = await freePort();
  const origin = new URL(upstream).origin;
  const config = merge(
    {
      listeners: [
        { name: 'http', port: httpPort },
        { name: 'https', port: httpsPort, tls: { cert: tls.cert, key: tls.key, ...(scenario.httpsTls ?? {}) } },
      ],
      admin: { enabled: false },
      upstreams: { bench: { targets: [{ url: origin }] } },
      routes: [merge({ name: 'bench', match: { prefix: '/' }, upstream: 'bench' }, scenario.route)],
    },
    scenario.config,
  );
  const id = `kycgate-${scenario.name}${suffix === '' ? '' : '-baseline'}`;
  const dir = path.join(work, id);
  const file = path.join(work, `${id}.yaml`);
  writeFileSync(file, JSON.stringify(config, null, 2));
  const cli = path.join(build, 'dist/src/cli/main.js');
  const prepared = scenario.prepare ? await scenario.prepare({ dataDir: dir, configFile: file, cli }) : {};
  const headers = { ...(scenario.headers ?? {}), ...(prepared.headers ?? {}) };
  const proc = startProcess(
    `kycgate ${scenario.name}${suffix}`,
    PROXY_PIN,
    [process.execPath, ...nodeFlags, cli, 'start', '-c', file],
    {
      env: { ...process.env, KYCGATE_DATA_DIR: dir },
      // The access log goes where a deployment would send it: a file.
      stdoutFile: path.join(work, `${id}.log`),
    },
  );
  // Registered at once, so cleanup stops it even when its start, its warm-up or a profile run fails.
  managed.push(proc);
  await Promise.all([waitForPort(httpPort, { failed: proc.failed }), waitForPort(httpsPort, { failed: proc.failed })]);
  if (scenario.warm) await scenario.warm(`http://127.0.0.1:${httpPort}/bench`, headers);
  const respawn = async (): Promise<Target> => {
    await proc.stop();
    return (await startKycgate(scenario, upstream, tls, nodeFlags, build, suffix)).target;
  };
  return {
    target: {
      label: `kycgate ${scenario.name}${suffix}`,
      kind: 'kycgate',
      urls: { http: `http://127.0.0.1:${httpPort}/bench`, https: `https://127.0.0.1:${httpsPort}/bench` },
      headers,
      pid: proc.child.pid,
      scenario,
      respawn,
      ...(scenario.mtls ? { tool: 'autocannon' as const, httpsOnly: true } : {}),
      ...(prepared.clientCert ? { clientCert: prepared.clientCert } : {}),
      ...(scenario.mtls ? { costAgainst: `kycgate ${scenarios[0]!.name}${MTLS_REFERENCE_SUFFIX}` } : {}),
    },
    process: proc,
  };
}

/** Starts a comparison proxy listening on one HTTP and one HTTPS port, pinned to the proxy core; waits for both. */
async function startPeer(
  label: string,
  kind: Target['kind'],
  command: (httpPort: number, httpsPort: number) => string[],
): Promise<Target> {
  const httpPort = await freePort();
  const httpsPort = await freePort();
  const proc = startProcess(label, PROXY_PIN, command(httpPort, httpsPort));
  managed.push(proc);
  await Promise.all([waitForPort(httpPort, { failed: proc.failed }), waitForPort(httpsPort, { failed: proc.failed })]);
  const respawn = async (): Promise<Target> => {
    await proc.stop();
    return startPeer(label, kind, command);
  };
  return {
    label,
    kind,
    urls: { http: `http://127.0.0.1:${httpPort}/bench`, https: `https://127.0.0.1:${httpsPort}/bench` },
    headers: {},
    pid: proc.child.pid,
    respawn,
  };
}

/** A Node peer: a script of this directory given the upstream origin, its ports and the certificate. */
function nodePeer(script: string, upstream: string, tls: TlsFiles) {
  return (httpPort: number, httpsPort: number) => [
    process.execPath,
    path.join(here, script),
    JSON.stringify({ upstream: new URL(upstream).origin, httpPort, httpsPort, ...tls }),
  ];
}

const startFastify = (upstream: string, tls: TlsFiles) =>
  startPeer('@fastify/http-proxy', 'fastify', nodePeer('fastify-proxy.js', upstream, tls));
const startFloor = (upstream: string, tls: TlsFiles) =>
  startPeer('node:http+undici floor', 'floor', nodePeer('minimal-proxy.js', upstream, tls));
/** nginx is not restarted by --restarts: a C process has no JIT or heap history that differs between starts. */
const startNginxProxy = async (upstream: string, tls: TlsFiles): Promise<Target> => {
  const { respawn: _kept, ...target } = await startPeer('nginx (1 worker)', 'nginx', (httpPort, httpsPort) => {
    const conf = proxyConfig(path.join(work, 'nginx-proxy'), upstream, httpPort, httpsPort, tls);
    return [nginxBin!, '-p', path.dirname(conf), '-c', conf];
  });
  return target;
};

/** Closed-loop warm-up of one target; a target that answers nothing successfully stops the run. */
async function warmUp(t: Target, protocol: 'http' | 'https'): Promise<void> {
  const w = await loadOn(t, protocol, warmupS);
  // Nothing answered properly: the target is broken, not slow, and measuring it would be meaningless.
  if (w.failures > 0 && w.succeeded === 0)
    throw new Error(
      `${t.label} answered no request successfully during warm-up (${w.failures} failures): check its setup`,
    );
  if (w.failures > 0)
    console.log(`warning: ${t.label} had ${w.failures} failed requests during warm-up (of ${w.requests})`);
}

/**
 * A free port is picked, released and then bound by the new process; under load the load generator's own outgoing
 * connections (ephemeral ports) can take it in between. Such a start is tried again on other ports.
 */
async function respawnWithRetry(respawn: () => Promise<Target>): Promise<Target> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await respawn();
    } catch (err) {
      if (attempt >= 3 || !/EADDRINUSE/.test((err as Error).message)) throw err;
      console.log(`  (a restarted process found its port taken; starting it again on other ports)`);
    }
  }
}

/** Replaces every target that can be respawned with a fresh process (same label and settings), warmed up. */
async function restartTargets(targets: Target[], protocol: 'http' | 'https'): Promise<void> {
  for (let i = 0; i < targets.length; i++) {
    const old = targets[i]!;
    if (old.respawn === undefined) continue;
    // Settings given where the target was first started (baseline, load tool ...) carry over to the fresh process.
    const fresh: Target = { ...old, ...(await respawnWithRetry(old.respawn)) };
    targets[i] = fresh;
    if (protocol === 'https' || !fresh.httpsOnly) await warmUp(fresh, protocol);
  }
  console.log(
    `  (restarted ${targets
      .filter((t) => t.respawn !== undefined)
      .map((t) => t.label)
      .join(', ')})`,
  );
}

function fmt(n: number, digits = 0): string {
  return Number.isFinite(n) ? n.toFixed(digits) : '-';
}

/** `[low, high]` of a median interval, or `[no interval]` when there were too few rounds. */
function interval(ci: { low: number; high: number }, digits: number): string {
  return Number.isNaN(ci.low) ? '[no interval]' : `[${fmt(ci.low, digits)}, ${fmt(ci.high, digits)}]`;
}

function percentInterval(ci: { low: number; high: number }): string {
  return Number.isNaN(ci.low) ? '[no interval]' : `[${fmt(ci.low * 100, 1)}, ${fmt(ci.high * 100, 1)}]%`;
}

/** A cost budget: within it when the whole interval of the median cost is at or under it (see lineVerdict). */
function budgetVerdict(ci: MedianInterval, max: number): string {
  const v = lineVerdict([ci], max, 'at-most');
  if (v === 'no interval') return `not judged (${ci.n} valid rounds: too few for a 95% interval)`;
  return v === 'met'
    ? 'WITHIN BUDGET'
    : v === 'not met'
      ? 'OVER BUDGET'
      : 'UNRESOLVED (the budget is inside the interval: run more rounds)';
}

function pad(text: string, width: number, right = false): string {
  return right ? text.padStart(width) : text.padEnd(width);
}

async function profileRun(upstream: Record<'http' | 'https', string>, tls: TlsFiles): Promise<void> {
  const scenario = scenarios[0]!;
  const profDir = path.join(work, 'profile');
  const { target, process: proc } = await startKycgate(scenario, upstream.http, tls, [
    '--cpu-prof',
    `--cpu-prof-dir=${profDir}`,
  ]);
  for (const protocol of protocols) {
    const load = await closedLoop(tool, {
      url: target.urls[protocol],
      connections,
      durationS: durationS * 2,
      headers: target.headers,
      pin: LOAD_PIN,
    });
    console.log(
      `profiled ${target.label} over ${protocol}: ${fmt(load.succeededPerSecond)} successful req/s while profiling`,
    );
    if (load.failures > 0)
      console.log(
        `warning: ${load.failures} failed requests while profiling (of ${load.requests}): the profile includes their handling`,
      );
  }
  await proc.stop();
  const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) throw new Error('no .cpuprofile was written');
  const { totalMs, rows, categories } = summariseProfile(path.join(profDir, file), 30);
  console.log(`\nTop self time, ${fmt(totalMs / 1000, 1)} s sampled (includes idle and start-up):`);
  for (const row of rows)
    console.log(`${pad(fmt(row.share * 100, 1) + '%', 7, true)}  ${pad(row.name, 40)} ${row.location}`);
  console.log('\nBy component, share of non-idle samples:');
  for (const c of categories) console.log(`${pad(fmt(c.share * 100, 1) + '%', 7, true)}  ${c.name}`);
  mkdirSync(path.join(root, '.bench'), { recursive: true });
  const keep = path.join(root, '.bench', 'kycgate.cpuprofile');
  copyFileSync(path.join(profDir, file), keep);
  console.log(`\nFull profile: ${keep} (open in Chrome DevTools > Performance)`);
}

async function runWorkersBench(upstream: string): Promise<WorkersResult & { kill?: KillRow }> {
  const workers = args.workers!.split(',').map(Number);
  if (workers.some((n) => !Number.isInteger(n) || n < 1))
    throw new Error(`--workers takes worker counts, not "${args.workers}"`);
  const options: WorkersBenchOptions = {
    cli: path.join(root, 'dist/src/cli/main.js'),
    work,
    upstream,
    tool,
    connections,
    durationS,
    warmupS,
    rounds: Math.min(rounds, 12),
    workers,
    loadPin: LOAD_PIN,
    track: (m) => managed.push(m),
  };
  const result = await workersBench(options);
  printWorkersResult(result, cpus);
  if (!workers.some((n) => n > 1)) return result;
  const kill = await workerKillBench(options);
  printKillRow(kill);
  return { ...result, kill };
}

async function main(): Promise<void> {
  console.log(
    `kycgate benchmark: node ${process.version}, ${cpus} cores (${os.cpus()[0]?.model ?? 'unknown CPU'}), load ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  console.log(
    `closed loop: ${tool}, ${connections} connections, ${warmupS} s warm-up, ${rounds} rounds x ` +
      `${durationS} s; fixed rate: ${rate > 0 ? `${rate} req/s, ${rateRounds} rounds x ${rateDurationS} s` : 'skipped (--rate 0)'}`,
  );
  console.log(canPin ? 'pinning: proxies on core 0; upstream and load generator on core 1' : 'pinning: none');
  for (const n of notes) console.log(`note: ${n}`);

  const tls = await writeCertificate();
  const upstream = await startUpstream(tls);
  console.log(`upstream: ${hasNginx ? 'nginx static response, 1 worker' : 'node:http server'}`);

  if (args.profile) return profileRun(upstream, tls);
  if (args['workers-only']) {
    await runWorkersBench(upstream.http);
    return;
  }

  const targets: Target[] = [];
  if (peers.has('direct'))
    targets.push({ label: 'direct (no proxy)', kind: 'direct', urls: upstream, headers: {}, pid: undefined });
  for (const s of scenarios) {
    targets.push((await startKycgate(s, upstream.http, tls)).target);
  }
  if (scenarios.some((s) => s.mtls) && protocols.includes('https')) {
    // mTLS scenarios are driven by autocannon (wrk presents no client certificate): their cost is measured against
    // the bare route driven the same way, in the same rounds.
    const reference = (await startKycgate(scenarios[0]!, upstream.http, tls, [], root, MTLS_REFERENCE_SUFFIX)).target;
    targets.push({ ...reference, tool: 'autocannon', httpsOnly: true, mtlsReference: true });
  }
  if (args.baseline) {
    // Another build of kycgate (e.g. a worktree at an earlier commit), measured in the same rounds: an A/B test of a
    // change that the background load affects equally.
    targets.push({
      ...(await startKycgate(scenarios[0]!, upstream.http, tls, [], path.resolve(args.baseline), ' (baseline)')).target,
      baseline: true,
    });
  }
  if (peers.has('fastify')) targets.push(await startFastify(upstream.http, tls));
  if (peers.has('nginx') && hasNginx) targets.push(await startNginxProxy(upstream.http, tls));
  if (peers.has('floor')) targets.push(await startFloor(upstream.http, tls));

  const results: Record<string, unknown> = {};
  for (const protocol of protocols) {
    console.log(`\n== ${protocol.toUpperCase()} closed loop`);
    const activeTargets = () => targets.filter((t) => protocol === 'https' || !t.httpsOnly);
    let active = activeTargets();
    for (const t of active) await warmUp(t, protocol);
    if (args['paired-only']) {
      results[protocol] = {
        pairedCost: await pairedCosts(
          active.filter((t) => t.kind === 'kycgate' && !t.mtlsReference),
          protocol,
        ),
      };
      continue;
    }
    const perRound: Array<Map<string, Measured>> = [];
    // Rounds before which the processes start afresh: each start's JIT, heap layout and garbage-collection history
    // differ, and rounds of one start cannot show that difference.
    const restartAt = new Set(
      Array.from({ length: restarts }, (_, i) => Math.round(((i + 1) * rounds) / (restarts + 1))).filter(
        (r) => r > 0 && r < rounds,
      ),
    );
    for (let r = 0; r < rounds; r++) {
      if (restartAt.has(r)) {
        await restartTargets(targets, protocol);
        active = activeTargets();
      }
      const round = new Map<string, Measured>();
      // Rotate the order so no target always runs right after the same neighbour or at the same point of a round.
      for (let i = 0; i < active.length; i++) {
        const t = active[(i + r) % active.length]!;
        const res = await measure(t, protocol, durationS);
        if (res.failures > 0)
          console.log(
            `warning: ${t.label} had ${res.failures} failed requests in round ${r + 1}: the round is invalid for it`,
          );
        round.set(t.label, res);
      }
      perRound.push(round);
      process.stdout.write(
        `  round ${r + 1}/${rounds}: ${active.map((t) => `${t.label} ${fmt(round.get(t.label)!.requestsPerSecond)}`).join(', ')}\n`,
      );
    }
    const ratioTo = (label: string, kind: Target['kind'], metric: 'requestsPerSecond' | 'perCpuSecond'): number => {
      const peer = active.find((t) => t.kind === kind);
      if (!peer || peer.label === label) return NaN;
      return median(perRound.map((r) => r.get(label)![metric] / r.get(peer.label)![metric]));
    };
    console.log(
      `\nreq/s: wall-clock throughput; cpu: share of a core the proxy got; req/cpu-s: requests per CPU-second of the proxy.`,
    );
    console.log(`Ratios are medians of per-round ratios, by req/s and (in brackets) by req/cpu-s.`);
    console.log(
      [
        pad('target', 22),
        pad('req/s', 8, true),
        pad('p50 ms', 8, true),
        pad('p99 ms', 8, true),
        pad('cpu', 6, true),
        pad('req/cpu-s', 11, true),
        pad('/direct', 9, true),
        pad('/fastify', 16, true),
        pad('/nginx', 16, true),
      ].join(''),
    );
    const table: Record<string, unknown> = {};
    const both = (label: string, kind: Target['kind']) => {
      const wall = ratioTo(label, kind, 'requestsPerSecond');
      const cpu = ratioTo(label, kind, 'perCpuSecond');
      return { wall, cpu, text: Number.isFinite(wall) ? `${fmt(wall, 2)} (${fmt(cpu, 2)})` : '-' };
    };
    for (const t of active) {
      const of = (f: (m: Measured) => number) => median(perRound.map((r) => f(r.get(t.label)!)));
      const rps = of((m) => m.requestsPerSecond);
      const p50 = of((m) => m.p50Ms);
      const p99 = of((m) => m.p99Ms);
      const cpu = of((m) => m.cpuShare);
      const perCpu = of((m) => m.perCpuSecond);
      const vsDirect = ratioTo(t.label, 'direct', 'requestsPerSecond');
      const vsFastify = both(t.label, 'fastify');
      const vsNginx = both(t.label, 'nginx');
      const vsFloor = both(t.label, 'floor');
      table[t.label] = {
        rps,
        p50Ms: p50,
        p99Ms: p99,
        cpuShare: cpu,
        perCpuSecond: perCpu,
        vsDirect,
        vsFastify: { wall: vsFastify.wall, cpu: vsFastify.cpu },
        vsNginx: { wall: vsNginx.wall, cpu: vsNginx.cpu },
        vsFloor: { wall: vsFloor.wall, cpu: vsFloor.cpu },
        rounds: perRound.map((r) => r.get(t.label)),
      };
      console.log(
        [
          pad(t.label, 22),
          pad(fmt(rps), 8, true),
          pad(fmt(p50, 2), 8, true),
          pad(fmt(p99, 2), 8, true),
          pad(Number.isFinite(cpu) ? fmt(cpu * 100) + '%' : '-', 6, true),
          pad(fmt(perCpu), 11, true),
          pad(fmt(vsDirect, 2), 9, true),
          pad(vsFastify.text, 16, true),
          pad(vsNginx.text, 16, true),
        ].join(''),
      );
    }
    const invalidRounds = (t: Target) => perRound.filter((r) => r.get(t.label)!.failures > 0).length;
    for (const t of active) {
      const invalid = invalidRounds(t);
      if (invalid > 0)
        console.log(
          `warning: ${t.label}: ${invalid} of ${rounds} rounds had failed requests and are left out of its medians and ratios`,
        );
    }
    const bare = active.find((t) => t.kind === 'kycgate');
    const fastify = active.find((t) => t.kind === 'fastify');
    let fastifyTarget: Record<string, unknown> | undefined;
    if (bare && fastify) {
      const x = both(bare.label, 'fastify');
      const perRoundRatio = (metric: 'requestsPerSecond' | 'perCpuSecond') =>
        perRound.map((r) => r.get(bare.label)![metric] / r.get(fastify.label)![metric]);
      const wallCi = medianInterval(perRoundRatio('requestsPerSecond'));
      const cpuCi = medianInterval(perRoundRatio('perCpuSecond'));
      // Judged on the 95% interval of the median of per-round ratios, by both measures: met when the whole interval
      // is at or above the line, not met when it is below, unresolved when the line is inside it. A comparison with
      // failed requests on either side is not judged.
      const judged = lineVerdict([wallCi, cpuCi], 1.25, 'at-least');
      const verdict =
        invalidRounds(bare) + invalidRounds(fastify) > 0
          ? 'NOT MET (failed requests)'
          : judged === 'no interval'
            ? `not judged (too few rounds for a 95% interval: ${rounds})`
            : judged === 'met'
              ? 'MET'
              : judged === 'not met'
                ? 'NOT MET'
                : 'UNRESOLVED (1.25 is inside the interval)';
      console.log(
        `target: ${bare.label} >= 1.25x @fastify/http-proxy: ${x.text}; 95% interval ${interval(wallCi, 2)} (${interval(cpuCi, 2)}) ${verdict}`,
      );
      fastifyTarget = { wall: x.wall, cpu: x.cpu, wallInterval: wallCi, cpuInterval: cpuCi, verdict };
    }
    const floor = active.find((t) => t.kind === 'floor');
    if (bare && floor) {
      const x = both(bare.label, 'floor');
      const f = both(floor.label, 'fastify');
      console.log(
        `${bare.label} against the node:http + undici floor: ${x.text}${fastify ? `; the floor against @fastify/http-proxy: ${f.text}` : ''}`,
      );
    }

    // Cost of each scenario against the first kycgate scenario (the bare route), by requests per CPU-second:
    // the median of the per-round ratios, with every round's value (their spread is the measurement's resolution).
    const kycgates = active.filter((t) => t.kind === 'kycgate');
    const costs: Record<string, unknown> = {};
    if (kycgates.length > 1) {
      console.log(
        `\ncost against ${kycgates[0]!.label} (1 - ratio of req/cpu-s; median of rounds with its 95% interval; each round in brackets):`,
      );
      for (const t of kycgates.slice(1)) {
        if (t.mtlsReference) continue;
        const base = t.costAgainst ?? kycgates[0]!.label;
        const per = perRound.map((r) => 1 - r.get(t.label)!.perCpuSecond / r.get(base)!.perCpuSecond);
        const ci = medianInterval(per);
        const budget = t.baseline ? undefined : t.scenario?.budget;
        const verdict = budget === undefined ? undefined : budgetVerdict(ci, budget.max);
        costs[t.label] = {
          cost: median(per),
          interval: ci,
          rounds: per,
          ...(budget ? { budget: budget.max, verdict } : {}),
        };
        const judged = budget ? `  budget ${fmt(budget.max * 100, 0)}%: ${verdict}` : '';
        const against = t.costAgainst ? `  (against ${t.costAgainst})` : '';
        console.log(
          `  ${pad(t.label, 26)}${pad(fmt(median(per) * 100, 1) + '%', 8, true)}  ${pad(percentInterval(ci), 16)}` +
            `${judged}${against}${t.baseline ? BASELINE_NOTE : ''}`,
        );
        console.log(`  ${pad('', 34)}[${per.map((c) => fmt(c * 100, 0)).join(' ')}]`);
      }
    }
    const paired = args.paired ? await pairedCosts(kycgates, protocol) : {};

    const fixed: Record<string, unknown> = {};
    const rateTargets = active.filter((t) => t.kind !== 'kycgate' || t === bare);
    if (rate > 0) {
      console.log(`\n== ${protocol.toUpperCase()} fixed rate ${rate} req/s`);
      const perRate: Array<Map<string, OpenLoopResult>> = [];
      // Stalls the machine put on each core, probed right before each round (the proxy core first, then the load core).
      const stalls: StallProbeResult[][] = [];
      for (let r = 0; r < rateRounds; r++) {
        if (stallProbeS > 0) stalls.push(await probeCores(canPin ? [PROXY_PIN, LOAD_PIN] : [[]], stallProbeS));
        const round = new Map<string, OpenLoopResult>();
        for (let i = 0; i < rateTargets.length; i++) {
          const t = rateTargets[(i + r) % rateTargets.length]!;
          const res = await fixedRate({
            url: t.urls[protocol],
            rate,
            durationS: rateDurationS,
            headers: t.headers,
            pin: LOAD_PIN,
            pmQos,
          });
          const invalid = invalidRun(res);
          if (invalid !== undefined)
            console.log(`warning: ${t.label} at fixed rate in round ${r + 1}: ${invalid}; the round is invalid for it`);
          round.set(t.label, res);
        }
        perRate.push(round);
      }
      const stallSummary =
        stalls.length === 0 ? undefined : stalls[0]!.map((_, core) => sumStalls(stalls.map((round) => round[core]!)));
      if (stallSummary !== undefined) {
        const names = canPin ? ['proxy core 0', 'load core 1'] : ['all cores'];
        console.log(
          `machine stalls (probe spinning ${fmt(stallProbeS, 1)} s before each round; requests that arrive during a stall wait it out):`,
        );
        stallSummary.forEach((s, i) => {
          console.log(`  ${pad(names[i]!, 14)}${describeStalls(s)}`);
        });
      }
      const direct = rateTargets.find((t) => t.kind === 'direct');
      console.log(
        `${pad('target', 22)}${pad('p50 ms', 9, true)}${pad('p99 ms', 9, true)}${pad('+p50', 9, true)}${pad('+p99', 9, true)} ` +
          ` (added over direct, median of per-round differences)`,
      );
      // An invalid round (see invalidRun) counts as NaN: left out of the medians.
      const ms = (r: Map<string, OpenLoopResult>, t: Target, key: 'p50Ms' | 'p99Ms') => {
        const res = r.get(t.label)!;
        return invalidRun(res) === undefined ? res[key] : NaN;
      };
      const failuresOf = (t: Target) => perRate.reduce((n, r) => n + r.get(t.label)!.failures, 0);
      for (const t of rateTargets) {
        const p50 = median(perRate.map((r) => ms(r, t, 'p50Ms')));
        const p99 = median(perRate.map((r) => ms(r, t, 'p99Ms')));
        const added50 =
          direct && direct !== t ? median(perRate.map((r) => ms(r, t, 'p50Ms') - ms(r, direct, 'p50Ms'))) : NaN;
        const added99 =
          direct && direct !== t ? median(perRate.map((r) => ms(r, t, 'p99Ms') - ms(r, direct, 'p99Ms'))) : NaN;
        fixed[t.label] = {
          p50Ms: p50,
          p99Ms: p99,
          addedP50Ms: added50,
          addedP99Ms: added99,
          failures: failuresOf(t),
          rounds: perRate.map((r) => r.get(t.label)),
        };
        console.log(
          `${pad(t.label, 22)}${pad(fmt(p50, 3), 9, true)}${pad(fmt(p99, 3), 9, true)}` +
            `${pad(fmt(added50, 3), 9, true)}${pad(fmt(added99, 3), 9, true)}` +
            (failuresOf(t) > 0 ? `  ${failuresOf(t)} failed requests` : ''),
        );
      }
      if (stallSummary !== undefined) fixed.machineStalls = stallSummary;
      if (bare && direct) {
        const added = (fixed[bare.label] as { addedP99Ms: number }).addedP99Ms;
        const failed = failuresOf(bare) + failuresOf(direct);
        const nginx = rateTargets.find((t) => t.kind === 'nginx');
        const verdict = tailVerdict({
          rate,
          failures: failed,
          overNginx: nginx ? perRate.map((r) => ms(r, bare, 'p99Ms') - ms(r, nginx, 'p99Ms')) : [],
          added: perRate.map((r) => ms(r, bare, 'p99Ms') - ms(r, direct, 'p99Ms')),
        });
        console.log(
          `target: ${bare.label} p99 added over direct <= nginx's + 0.5 ms at ${rate} req/s: ${fmt(added, 3)} ` +
            `ms${failed > 0 ? `, ${failed} failed requests` : ''} ${verdict}`,
        );
        fixed.tailVerdict = verdict;
      }
    }
    results[protocol] = { closedLoop: table, fastifyTarget, cost: costs, pairedCost: paired, fixedRate: fixed };
  }
  if (!args['no-decision'] && !args['paired-only']) {
    // --rate 0 skips the fixed-rate runs, decision latency included (printDecisionResult says so).
    const o: DecisionBenchOptions = {
      rounds: rateRounds,
      durationS: Math.max(durationS, rateDurationS),
      warmupS,
      rate,
      connections,
      tool,
      proxyPin: PROXY_PIN,
      loadPin: LOAD_PIN,
      pmQos,
    };
    const decision = await decisionBench(o);
    printDecisionResult(decision, o);
    results.decision = decision;
  }
  if (!args['no-workers'] && !args['paired-only']) results.workers = await runWorkersBench(upstream.http);
  if (args.json)
    writeFileSync(
      args.json,
      JSON.stringify(
        { node: process.version, cpus, tool, connections, durationS, rounds, rateRounds, rate, notes, results },
        null,
        2,
      ),
    );
}

try {
  if (!existsSync(path.join(root, 'dist/src/cli/main.js'))) throw new Error('build first: npm run build');
  await main();
} finally {
  await cleanup();
}
