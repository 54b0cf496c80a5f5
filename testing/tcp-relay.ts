/**
 * A TCP relay between a client and a real server that a test can break in the ways a database breaks:
 * - freeze: bytes stop flowing both ways, sockets stay open, new connections are accepted and then hang (a database
 *   that hangs, a network partition); thaw lets everything flow again;
 * - cut: open connections are reset and new ones are refused (`refuse`: nothing listens on the port any more,
 *   ECONNREFUSED) or reset as soon as they are accepted (`reset`, ECONNRESET): a database that is down or
 *   restarting; restore listens again on the same port.
 * Used to put a real PostgreSQL behind a failure the test controls.
 */
import net from 'node:net';

export interface TcpRelay {
  readonly port: number;
  freeze(): void;
  thaw(): void;
  /** Resets every open connection and refuses (or resets) new ones until `restore`. */
  cut(mode?: 'refuse' | 'reset'): Promise<void>;
  restore(): Promise<void>;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** Resolves when the next connection is accepted (the client is connecting now). */
  nextAccept(): Promise<void>;
  close(): Promise<void>;
}

export async function startTcpRelay(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpRelay> {
  const pairs = new Set<[net.Socket, net.Socket]>();
  let frozen = false;
  let cut: 'refuse' | 'reset' | undefined;
  let accepted = 0;
  let acceptWaiters: (() => void)[] = [];
  const server = net.createServer((client) => {
    accepted++;
    const waiters = acceptWaiters;
    acceptWaiters = [];
    for (const w of waiters) w();
    if (cut !== undefined) {
      client.resetAndDestroy();
      return;
    }
    const upstream = net.connect(targetPort, targetHost);
    const pair: [net.Socket, net.Socket] = [client, upstream];
    pairs.add(pair);
    if (!frozen) {
      client.pipe(upstream);
      upstream.pipe(client);
    } else {
      client.pause();
      upstream.pause();
    }
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  const listen = (port: number) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  await listen(0);
  const port = (server.address() as net.AddressInfo).port;
  // pipe() resumes a paused source when the destination drains: freezing unpipes, thawing pipes again.
  return {
    port,
    get accepted() {
      return accepted;
    },
    nextAccept() {
      return new Promise<void>((resolve) => acceptWaiters.push(resolve));
    },
    freeze() {
      frozen = true;
      for (const [a, b] of pairs) {
        a.unpipe(b);
        b.unpipe(a);
        a.pause();
        b.pause();
      }
    },
    thaw() {
      frozen = false;
      for (const [a, b] of pairs) {
        a.pipe(b);
        b.pipe(a);
      }
    },
    async cut(mode = 'refuse') {
      cut = mode;
      for (const [a, b] of pairs) {
        a.resetAndDestroy();
        b.destroy();
      }
      pairs.clear();
      if (mode === 'refuse') await new Promise<void>((resolve) => server.close(() => resolve()));
    },
    async restore() {
      const wasRefusing = cut === 'refuse';
      cut = undefined;
      if (wasRefusing) await listen(port);
    },
    close() {
      for (const [a, b] of pairs) {
        a.destroy();
        b.destroy();
      }
      if (!server.listening) return Promise.resolve();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
