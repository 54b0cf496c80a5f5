/**
 * Ports for processes the tests and the benchmark start: a free one to hand to a child, and waiting until the child
 * listens on it (nginx, Caddy, redis-server and a gateway in another process announce nothing we could await).
 */
import net from 'node:net';

/** A TCP port free right now on 127.0.0.1 (the caller's child binds it). */
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

/**
 * Resolves once something accepts connections on `port`. Rejects after `timeoutMs`, or as soon as `failed` returns
 * a reason (the child exited): the reason, with the child's log, is the error.
 */
export async function waitForPort(
  port: number,
  options: { timeoutMs?: number; failed?: () => string | undefined } = {},
): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 20_000;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const reason = options.failed?.();
    if (reason !== undefined) throw new Error(reason);
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on port ${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
