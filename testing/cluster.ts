/**
 * Runs `kycgate start` as its own process (the supervisor with its workers, when the config asks for several) and
 * follows its JSON log lines, for tests that need real processes: signals, killed workers, several workers.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';

export interface LogLine {
  msg: string;
  [key: string]: unknown;
}

export interface GatewayProcess {
  readonly child: ChildProcess;
  readonly lines: LogLine[];
  /** Resolves with the first log line (already seen or to come) that `match` accepts. */
  waitFor(match: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  readonly exited: Promise<number | null>;
  kill(): void;
}

export function startGatewayProcess(configFile: string, dataDir: string): GatewayProcess {
  const child = spawn(process.execPath, [path.resolve('dist/src/cli/main.js'), 'start', '--config', configFile], {
    env: { ...process.env, KYCGATE_DATA_DIR: dataDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: LogLine[] = [];
  const waiters = new Set<{ match: (l: LogLine) => boolean; resolve: (l: LogLine) => void }>();
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  readline.createInterface({ input: child.stdout! }).on('line', (text) => {
    let line: LogLine;
    try {
      line = JSON.parse(text) as LogLine;
    } catch {
      return;
    }
    lines.push(line);
    for (const w of waiters)
      if (w.match(line)) {
        waiters.delete(w);
        w.resolve(line);
      }
  });
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return {
    child,
    lines,
    exited,
    kill: () => child.kill('SIGKILL'),
    waitFor(match, timeoutMs = 120_000) {
      const seen = lines.find(match);
      if (seen) return Promise.resolve(seen);
      return new Promise<LogLine>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error(`no matching log line in ${timeoutMs} ms; stderr: ${stderr.slice(-2000)}`));
        }, timeoutMs);
        const waiter = {
          match,
          resolve: (l: LogLine) => {
            clearTimeout(timer);
            resolve(l);
          },
        };
        waiters.add(waiter);
        void exited.then((code) => {
          if (!waiters.has(waiter)) return;
          clearTimeout(timer);
          waiters.delete(waiter);
          reject(new Error(`the gateway exited (${code}) first; stderr: ${stderr.slice(-2000)}`));
        });
      });
    },
  };
}

/** The value of one Prometheus sample (`name{labels}`) in a scrape, or undefined. */
export function sample(scrape: string, series: string): number | undefined {
  for (const line of scrape.split('\n'))
    if (line.startsWith(series + ' ')) return Number(line.slice(series.length + 1));
  return undefined;
}
