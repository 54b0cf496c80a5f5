/**
 * The built-in demo (`kycgate start` without a config) listens on fixed ports, as the README tells users: HTTP 8080,
 * HTTPS 8443, admin 9901 and the sandbox provider's pages on 8090, all on 127.0.0.1. A test that runs the demo as a
 * user does holds those ports through a lock shared by every test process (one demo at a time), and first checks
 * that nothing else holds them (a demo a developer left running): then it is skipped with the reason printed, and
 * under CI=true that is a failure.
 */
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { TestContext } from 'node:test';

export const DEMO_PORTS = { http: 8080, https: 8443, admin: 9901, sandbox: 8090 } as const;

const LOCK = path.join(os.tmpdir(), 'kycgate-demo-ports.lock');

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Takes the lock directory; a lock left by a process that is gone is taken over. */
async function lock(timeoutMs: number): Promise<() => void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      mkdirSync(LOCK);
      writeFileSync(path.join(LOCK, 'pid'), String(process.pid));
      return () => rmSync(LOCK, { recursive: true, force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let owner = NaN;
    try {
      owner = Number(readFileSync(path.join(LOCK, 'pid'), 'utf8'));
    } catch {
      /* being created or removed right now */
    }
    if (Number.isInteger(owner) && owner > 0 && !alive(owner)) {
      rmSync(LOCK, { recursive: true, force: true });
      continue;
    }
    if (Date.now() > deadline)
      throw new Error(`the demo ports are still held by another test (process ${owner}) after ${timeoutMs} ms`);
    // Another test process runs the demo; nothing announces the end of its test to this process.
    await new Promise((r) => setTimeout(r, 250));
  }
}

function free(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/**
 * Takes the demo's ports for test `t` and resolves with the function that gives them back (call it once the demo
 * has exited). Resolves undefined when something else holds them and the test was skipped (outside CI); throws
 * under CI=true.
 */
export async function holdDemoPorts(t: TestContext, timeoutMs = 240_000): Promise<(() => void) | undefined> {
  const release = await lock(timeoutMs);
  const taken: number[] = [];
  for (const port of Object.values(DEMO_PORTS)) if (!(await free(port))) taken.push(port);
  if (taken.length > 0) {
    release();
    const reason = `127.0.0.1 port ${taken.join(', ')} is in use (a demo left running?), so the built-in demo cannot start`;
    if (process.env.CI === 'true') throw new Error(`${reason} (CI=true: this is a failure)`);
    console.log(`# skipped: ${reason}`);
    t.skip(reason);
    return undefined;
  }
  return release;
}
