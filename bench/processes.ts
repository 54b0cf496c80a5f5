/** Child processes of the benchmark: start pinned, wait until they accept connections, stop cleanly. */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { openSync, closeSync, existsSync, readdirSync, readFileSync } from 'node:fs';

export interface Managed {
  readonly name: string;
  readonly child: ChildProcess;
  /**
   * Why the process is gone when nobody stopped it (it could not be spawned, or it exited), with its stderr;
   * undefined while it runs. Pass it to waitForPort as `failed` so a dead child fails the wait at once.
   */
  readonly failed: () => string | undefined;
  stop(): Promise<void>;
}

/** Starts `command` with the `pin` prefix; stdout goes to `stdoutFile` (or is discarded), stderr is kept for errors. */
export function startProcess(
  name: string,
  pin: readonly string[],
  command: readonly string[],
  options: { env?: NodeJS.ProcessEnv; stdoutFile?: string; stopSignal?: NodeJS.Signals } = {},
): Managed {
  const all = [...pin, ...command];
  const out = options.stdoutFile ? openSync(options.stdoutFile, 'a') : 'ignore';
  const child = spawn(all[0]!, all.slice(1), { stdio: ['ignore', out, 'pipe'], env: options.env ?? process.env });
  if (typeof out === 'number') closeSync(out);
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => {
    stderr += c.toString();
    if (stderr.length > 20_000) stderr = stderr.slice(-10_000);
  });
  let exited = false;
  let stopping = false;
  let reason: string | undefined;
  let ended: () => void = () => undefined;
  const exit = new Promise<void>((resolve) => (ended = resolve));
  child.on('exit', (code, signal) => {
    exited = true;
    ended();
    // The reason quotes stderr, which may still be arriving: it is set once the pipe closed, or shortly after the
    // exit when a descendant keeps the pipe open.
    const report = () => {
      if (reason !== undefined) return;
      reason = `${name} exited (${code ?? signal}): ${stderr.trim().slice(-2000)}`;
      if (!stopping && code !== 0) process.stderr.write(`bench: ${reason}\n`);
    };
    child.once('close', report);
    setTimeout(report, 200).unref();
  });
  // A failed spawn (binary not found, not executable) emits 'error' and no 'exit': without a listener it would
  // crash the benchmark before its cleanup; recorded, it fails the caller's waitForPort.
  child.once('error', (error) => {
    exited = true;
    reason ??= `${name} could not be started (${all[0]}): ${error.message}`;
    if (!stopping) process.stderr.write(`bench: ${reason}\n`);
    ended();
  });
  return {
    name,
    child,
    failed: () => (stopping ? undefined : reason),
    async stop() {
      if (exited) return;
      stopping = true;
      child.kill(options.stopSignal ?? 'SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exit;
      clearTimeout(timer);
    },
  };
}

export { freePort, waitForPort } from '../testing/ports.js';

const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** [pid, parent pid, user+system ticks] of every process, from /proc (Linux only). */
function processTable(): Array<[number, number, number]> {
  const rows: Array<[number, number, number]> = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    // The command name may contain spaces and parentheses: fields are counted after its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    rows.push([Number(name), Number(fields[1]), Number(fields[11]) + Number(fields[12])]);
  }
  return rows;
}

/**
 * CPU seconds (user + system) used so far by `pid` and its descendants (nginx's worker is a child of its master).
 * Undefined where /proc is not available. Requests per CPU-second is the measure that stays meaningful when other
 * processes take turns on the same core: time the proxy spends descheduled costs neither requests nor CPU time.
 */
export function cpuSeconds(pid: number): number | undefined {
  if (!existsSync('/proc/self/stat')) return undefined;
  const table = processTable();
  const family = new Set([pid]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const [p, parent] of table) {
      if (family.has(parent) && !family.has(p)) {
        family.add(p);
        grew = true;
      }
    }
  }
  let ticks = 0;
  for (const [p, , t] of table) if (family.has(p)) ticks += t;
  return ticks / CLOCK_TICKS;
}
