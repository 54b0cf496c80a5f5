/**
 * Fixed-rate (open-loop) load generator: sends requests on a fixed schedule whatever the answers are doing, so a slow
 * answer cannot hold the next request back (no coordinated omission), and measures each request from the moment
 * it was sent until its answer was read completely. Runs as its own process (pinned to the load-generator core) and
 * prints one JSON line: { sent, completed, failures, p50Ms, p99Ms, rate }. `completed` and `rate` count successful
 * answers (status below 400) and the percentiles are theirs; `failures` counts the others and errors, so a run with
 * any failure is not a valid latency measurement (the callers treat it as invalid).
 *
 *   node dist/bench/open-loop.js '{"url":"http://127.0.0.1:8080/","rate":1000,"durationS":10,"warmupS":1}'
 */
import { Pool } from 'undici';
import { performance } from 'node:perf_hooks';
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
const pool = new Pool(target.origin, { connections: 64, pipelining: 1, connect: { rejectUnauthorized: false } });
const path = target.pathname + target.search;
const headers = options.headers ?? {};

async function phase(seconds: number, record: Float64Array | undefined): Promise<{ sent: number; completed: number; failures: number }> {
  const total = Math.round(seconds * options.rate);
  const interval = 1000 / options.rate;
  let sent = 0;
  let completed = 0;
  let failures = 0;
  let settled: () => void = () => undefined;
  const done = new Promise<void>((resolve) => (settled = resolve));
  const finish = () => {
    if (completed + failures === total) settled();
  };
  const send = (index: number) => {
    const start = performance.now();
    pool.request({ path, method: 'GET', headers }).then(
      async (res) => {
        await res.body.dump();
        if (res.statusCode >= 400) failures++;
        else {
          if (record) record[index] = performance.now() - start;
          completed++;
        }
        finish();
      },
      () => {
        failures++;
        finish();
      },
    );
  };
  const t0 = performance.now();
  // A 1 ms timer tick sends whatever is due: no busy loop stealing the core from the upstream it shares.
  await new Promise<void>((resolve) => {
    const tick = () => {
      const due = Math.min(total, Math.floor((performance.now() - t0) / interval) + 1);
      while (sent < due) send(sent++);
      if (sent < total) setTimeout(tick, 1);
      else resolve();
    };
    tick();
  });
  await done;
  return { sent, completed, failures };
}

await phase(options.warmupS, undefined);
const samples = new Float64Array(Math.round(options.durationS * options.rate)).fill(NaN);
const t0 = performance.now();
const r = await phase(options.durationS, samples);
const elapsed = (performance.now() - t0) / 1000;
const measured = samples.filter((v) => !Number.isNaN(v)).sort();
process.stdout.write(
  JSON.stringify({ ...r, rate: r.completed / elapsed, p50Ms: percentileSorted(measured, 50), p99Ms: percentileSorted(measured, 99) }) + '\n',
);
await pool.close();
