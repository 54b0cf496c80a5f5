/**
 * A webhook receiver for tests: a real HTTP server that records every delivery (headers and raw body) and
 * answers with the statuses it is told to, in order (then 200). `waitFor(n)` resolves once n deliveries arrived.
 */
import http from 'node:http';
import type net from 'node:net';

export interface ReceivedWebhook {
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  json: Record<string, unknown>;
  answeredWith: number;
}

export interface WebhookReceiver {
  url: string;
  received: ReceivedWebhook[];
  /** Resolves when at least `count` deliveries matching `filter` arrived (rejects after `timeoutMs`). */
  waitFor(count: number, filter?: (w: ReceivedWebhook) => boolean, timeoutMs?: number): Promise<ReceivedWebhook[]>;
  close(): Promise<void>;
}

export async function startWebhookReceiver(answers: number[] = [], port = 0): Promise<WebhookReceiver> {
  const received: ReceivedWebhook[] = [];
  const waiters = new Set<() => void>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const status = answers.shift() ?? 200;
      let json: Record<string, unknown> = {};
      try {
        json = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
      } catch {
        /* recorded as is */
      }
      received.push({ headers: req.headers, body, json, answeredWith: status });
      res.writeHead(status, { 'content-type': 'text/plain' }).end(status === 200 ? 'ok' : 'no');
      for (const w of waiters) w();
    });
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
  const address = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${address.port}/webhooks/didit`,
    received,
    waitFor(count, filter = () => true, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const matching = received.filter(filter);
          if (matching.length >= count) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve(matching);
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(
            new Error(
              `expected ${count} webhook deliveries within ${timeoutMs} ms, got ${received.filter(filter).length}`,
            ),
          );
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
