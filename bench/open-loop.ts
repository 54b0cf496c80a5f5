/**
 * Fixed-rate (open-loop) load generator: sends requests on a fixed schedule whatever the answers are doing, so a slow
 * answer cannot hold the next request back (no coordinated omission), and measures each request from the moment
 * its bytes were written until the last byte of its answer was read. Runs as its own process (pinned to the
 * load-generator core) and prints one JSON line: { sent, completed, failures, p50Ms, p90Ms, p99Ms, p999Ms, maxMs,
 * rate, maxLagMs, lateSends }. `completed` and `rate` count successful answers (status below 400) and the
 * percentiles are theirs; `failures` counts the others and errors, so a run with any failure is not a valid latency
 * measurement (the callers treat it as invalid). `maxLagMs` is the longest any request went out after its slot in
 * the schedule and `lateSends` counts those more than 5 ms late: when they are more than 1% of the sends, the run
 * did not offer its rate, and the callers treat it as invalid too (`offSchedule` in stats.ts).
 *
 *   node dist/bench/open-loop.js '{"url":"http://127.0.0.1:8080/","rate":1000,"durationS":10,"warmupS":2}'
 *
 * It speaks HTTP/1.1 itself over plain sockets (one request at a time per keep-alive connection, a new connection
 * only when every open one is busy) rather than through an HTTP client library: the generator's own work is then a
 * write and a scan of the answer, and its tail stays far below what it measures. With undici's Pool in its place,
 * requests straight to nginx had a p99 of 2 to 2.7 ms on the benchmark machine; with this one, 0.2 ms.
 */
import net from 'node:net';
import tls from 'node:tls';
import { performance } from 'node:perf_hooks';
import { ResponseFramer } from './response-framer.js';
import { percentileSorted } from './stats.js';

interface OpenLoopOptions {
  url: string;
  rate: number;
  durationS: number;
  warmupS: number;
  headers?: Record<string, string>;
}

const options = JSON.parse(process.argv[2] ?? '{}') as OpenLoopOptions;
const target = new URL(options.url);
const secure = target.protocol === 'https:';
const port = Number(target.port || (secure ? 443 : 80));
const request = Buffer.from(
  `GET ${target.pathname}${target.search} HTTP/1.1\r\nhost: ${target.host}\r\n` +
    Object.entries(options.headers ?? {})
      .map(([name, value]) => `${name}: ${value}\r\n`)
      .join('') +
    '\r\n',
  'latin1',
);

/** What the current phase counts; each connection reports to it. */
interface Phase {
  total: number;
  completed: number;
  failures: number;
  record: Float64Array | undefined;
  settled: () => void;
}
let phase: Phase;

function finished(): void {
  if (phase.completed + phase.failures === phase.total) phase.settled();
}

class Connection {
  readonly socket: net.Socket;
  private index = -1;
  private start = 0;
  private dead = false;
  private readonly framer = new ResponseFramer((status) => this.answered(status));

  constructor() {
    this.socket = secure
      ? tls.connect({
          host: target.hostname,
          port,
          servername: net.isIP(target.hostname) ? undefined : target.hostname,
          rejectUnauthorized: false,
        })
      : net.connect({ host: target.hostname, port });
    this.socket.setNoDelay(true);
    this.socket.on('data', (chunk: Buffer) => {
      try {
        this.framer.push(chunk);
      } catch {
        this.fail();
      }
    });
    this.socket.on('error', () => this.fail());
    this.socket.on('close', () => this.fail());
  }

  send(index: number): void {
    this.index = index;
    this.start = performance.now();
    this.socket.write(request);
  }

  private answered(status: number): void {
    const elapsed = performance.now() - this.start;
    const index = this.index;
    this.index = -1;
    if (status >= 400) phase.failures++;
    else {
      if (phase.record) phase.record[index] = elapsed;
      phase.completed++;
    }
    if (!this.dead) idle.push(this);
    finished();
  }

  /** The connection is gone (or spoke something unframeable): its request in flight, if any, failed. */
  private fail(): void {
    if (this.dead) return;
    this.dead = true;
    this.socket.destroy();
    const i = idle.indexOf(this);
    if (i >= 0) idle.splice(i, 1);
    if (this.index >= 0) {
      this.index = -1;
      phase.failures++;
      finished();
    }
  }
}

const idle: Connection[] = [];

/** A send this much later than its slot counts as late (the 1 ms timer tick alone delays sends by up to ~1-2 ms). */
const LATE_MS = 5;

async function run(
  seconds: number,
  record: Float64Array | undefined,
  started?: () => void,
): Promise<{ sent: number; completed: number; failures: number; maxLagMs: number; lateSends: number }> {
  const total = Math.round(seconds * options.rate);
  const interval = 1000 / options.rate;
  let settled: () => void = () => undefined;
  const done = new Promise<void>((resolve) => (settled = resolve));
  phase = { total, completed: 0, failures: 0, record, settled };
  if (total === 0) settled();
  let sent = 0;
  let maxLagMs = 0;
  let lateSends = 0;
  const t0 = performance.now();
  // A 1 ms timer tick sends whatever is due: no busy loop stealing the core from the upstream it shares. How late
  // each request went out against its schedule is tracked: a generator that fell behind did not offer the rate.
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now();
      const due = Math.min(total, Math.floor((now - t0) / interval) + 1);
      while (sent < due) {
        const lag = now - (t0 + sent * interval);
        if (lag > maxLagMs) maxLagMs = lag;
        if (lag > LATE_MS) lateSends++;
        (idle.pop() ?? new Connection()).send(sent++);
      }
      if (sent < total) setTimeout(tick, 1);
      else resolve();
    };
    tick();
    started?.();
  });
  await done;
  return { sent, completed: phase.completed, failures: phase.failures, maxLagMs, lateSends };
}

await run(options.warmupS, undefined);
const samples = new Float64Array(Math.round(options.durationS * options.rate)).fill(NaN);
const t0 = performance.now();
// Progress marker, written once the measured phase's schedule has started and its first request went out (callers
// that need to know, such as tests, read stderr): a process stopped after it is stopped during the schedule.
const r = await run(options.durationS, samples, () => process.stderr.write('measuring\n'));
const elapsed = (performance.now() - t0) / 1000;
const measured = samples.filter((v) => !Number.isNaN(v)).sort();
process.stdout.write(
  JSON.stringify({
    ...r,
    rate: r.completed / elapsed,
    p50Ms: percentileSorted(measured, 50),
    p90Ms: percentileSorted(measured, 90),
    p99Ms: percentileSorted(measured, 99),
    p999Ms: percentileSorted(measured, 99.9),
    maxMs: measured.length > 0 ? measured[measured.length - 1] : NaN,
  }) + '\n',
);
for (const c of idle.splice(0)) c.socket.destroy();
