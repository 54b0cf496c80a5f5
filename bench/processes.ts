/** Child processes of the benchmark: start pinned, wait until they accept connections, stop cleanly. */
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import net from 'node:net';

export interface Managed {
  readonly name: string;
  readonly child: ChildProcess;
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
  const exit = new Promise<void>((resolve) => child.on('exit', () => ((exited = true), resolve())));
  child.on('exit', (code, signal) => {
    if (!stopping && code !== 0) process.stderr.write(`bench: ${name} exited (${code ?? signal}): ${stderr.trim().slice(-2000)}\n`);
  });
  let stopping = false;
  return {
    name,
    child,
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

/** A TCP port free right now on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

/** Resolves once something accepts connections on `port`; rejects after `timeoutMs`. */
export async function waitForPort(port: number, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => (socket.destroy(), resolve(true)));
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on port ${port} after ${timeoutMs} ms`);
    // No event announces a port opening in another process: poll briefly.
    await new Promise((r) => setTimeout(r, 50));
  }
}
