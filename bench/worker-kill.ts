/**
 * A worker killed under load (part of the workers benchmark): 2 workers serve a route whose every answer is made
 * durable before it leaves (`audit.durability: sync` and the `audit` policy with `sync: true`), under the closed
 * loop's connections; one worker gets SIGKILL mid-run. Reported: how long until the supervisor's replacement
 * serves, how many requests broke with the killed worker's connections, and whether every answer the load generator
 * received as a success has its audit record (read with `kycgate audit verify` and `export`, as an operator would,
 * after the gateway drained). An acknowledged request without a record is a lost one.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { startGateway, measure, perWorker, type WorkersBenchOptions } from './workers.js';

const run = promisify(execFile);

export interface KillRow {
  workers: number;
  durationS: number;
  /** Answers below 400 the load generator received. */
  answered: number;
  /** Answers of 400 or more (503 while a record could not be written, say). */
  rejected: number;
  /** Requests whose connection broke (those in flight on the killed worker). */
  socketErrors: number;
  /** Audit records of answers below 400 on the durable route, across every worker's chain. */
  recorded: number;
  /** Acknowledged answers with no audit record. */
  lost: number;
  /** Whether `kycgate audit verify` accepted the whole trail. */
  verified: boolean;
  /** From the kill to the replacement's "worker serving" log line. */
  replacedAfterMs: number | undefined;
  /** Requests the replacement took in, on the new connections of a second 2 s run after the kill run. */
  replacementRequests: number;
}

const KILL_RUN_S = 8;
const KILL_AFTER_MS = 2500;

/** The pids of a process's direct children (the supervisor's workers). */
function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

interface ServingLine {
  msg?: string;
  pid?: number;
  slot?: number;
  time?: number | string;
}

/** The "worker serving" lines the supervisor's workers logged so far. */
function servingLines(logFile: string): ServingLine[] {
  const out: ServingLine[] = [];
  for (const line of readFileSync(logFile, 'utf8').split('\n')) {
    if (!line.includes('worker serving')) continue;
    try {
      out.push(JSON.parse(line) as ServingLine);
    } catch {
      // not a JSON log line
    }
  }
  return out;
}

export async function workerKillBench(o: WorkersBenchOptions): Promise<KillRow> {
  const workers = 2;
  const g = await startGateway(o, workers, {
    name: 'kill',
    logLevel: 'info',
    audit: { enabled: true, durability: 'sync', metrics: { enabled: true } },
    routes: [
      { name: 'durable', match: { prefix: '/durable' }, upstream: 'bench', policies: [{ audit: { sync: true } }] },
    ],
  });
  try {
    const before = childrenOf(g.pid);
    if (before.length !== workers) throw new Error(`expected ${workers} worker processes, found ${before.length}`);
    const victim = before[0]!;
    const durationS = Math.max(KILL_RUN_S, o.durationS);
    let killedAt = 0;
    let replacedAfterMs: number | undefined;
    let replacement: ServingLine | undefined;
    let atReplacement: number[] = [];
    const killer = (async () => {
      await new Promise((r) => setTimeout(r, KILL_AFTER_MS));
      killedAt = performance.now();
      process.kill(victim, 'SIGKILL');
      const victimSlot = servingLines(g.logFile).find((l) => l.pid === victim)?.slot;
      while (performance.now() - killedAt < 120_000) {
        replacement = servingLines(g.logFile).find(
          (l) => l.pid !== undefined && !before.includes(l.pid) && (victimSlot === undefined || l.slot === victimSlot),
        );
        if (replacement !== undefined) {
          replacedAfterMs = performance.now() - killedAt;
          atReplacement = await perWorker(g).catch(() => []);
          return;
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const first = await measure(o, g, durationS, '/durable/bench');
    await killer;
    // The broken connections reconnected while only the survivor served, and keep-alive keeps them there: a
    // second run opens new connections, which the supervisor spreads over both workers again.
    const second = await measure(o, g, 2, '/durable/bench');
    const endCounts = await perWorker(g);
    const slot = replacement?.slot;
    // Counted from when the replacement logged that it serves.
    const replacementRequests = slot === undefined ? 0 : (endCounts[slot] ?? 0) - (atReplacement[slot] ?? 0);
    const r = {
      requests: first.r.requests + second.r.requests,
      rejected: first.r.rejected + second.r.rejected,
      socketErrors: first.r.socketErrors + second.r.socketErrors,
    };
    await g.process.stop();
    const env = { ...process.env, KYCGATE_DATA_DIR: g.dataDir };
    const verified = await run(process.execPath, [o.cli, 'audit', 'verify', '-c', g.configFile], { env }).then(
      () => true,
      () => false,
    );
    const exported = await run(process.execPath, [o.cli, 'audit', 'export', '-c', g.configFile], {
      env,
      maxBuffer: 1 << 30,
    });
    let recorded = 0;
    for (const line of exported.stdout.split('\n')) {
      if (!line.includes('"route":"durable"')) continue;
      const rec = JSON.parse(line) as { type?: string; status?: number };
      if (rec.type === 'http.request' && rec.status !== undefined && rec.status < 400) recorded++;
    }
    const answered = r.requests - r.rejected;
    return {
      workers,
      durationS: durationS + 2,
      answered,
      rejected: r.rejected,
      socketErrors: r.socketErrors,
      recorded,
      lost: Math.max(0, answered - recorded),
      verified,
      replacedAfterMs,
      replacementRequests,
    };
  } finally {
    await g.process.stop();
  }
}

export function printKillRow(k: KillRow): void {
  const replaced =
    k.replacedAfterMs === undefined ? 'NOT REPLACED within 120 s' : `replaced in ${k.replacedAfterMs.toFixed(0)} ms`;
  console.log(
    `  SIGKILL of one of ${k.workers} workers under load (${k.durationS} s, every answer fsynced before it leaves): ` +
      `${replaced}, then served ${k.replacementRequests} requests of new connections; ${k.socketErrors} requests broke with the killed ` +
      `worker's connections, ${k.rejected} answered 400 or more; ${k.answered} answered, ${k.recorded} on record ` +
      `(${k.lost === 0 ? 'none lost' : `${k.lost} LOST`}), audit verify ${k.verified ? 'ok' : 'FAILED'}`,
  );
}
