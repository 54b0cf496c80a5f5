/**
 * The floor peer: the least a correct Node.js reverse proxy does per request, in one file. node:http server,
 * undici Pool with keep-alive to the upstream, hop-by-hop headers removed both ways (RFC 9110 7.6.1, names listed
 * in Connection included), X-Forwarded-For appended, bodies streamed with backpressure through undici's dispatch
 * handler (no stream object or promise per request), client aborts cancel the upstream request, upstream errors
 * answer 502. No routing, policies, request ids, timeouts, path normalisation, metrics or logs.
 *
 * It is not a product and not a competitor: it shows what part of kycgate's cost per request is Node's HTTP server
 * and undici themselves (the same for every Node proxy), and what part is the gateway.
 *
 *   node dist/bench/minimal-proxy.js '{"upstream":"http://127.0.0.1:9000","httpPort":9100,"httpsPort":9101,"cert":"...","key":"..."}'
 */
import { readFileSync } from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import { Pool, type Dispatcher } from 'undici';

const o = JSON.parse(process.argv[2] ?? '{}') as {
  upstream: string;
  httpPort: number;
  httpsPort: number;
  cert: string;
  key: string;
};
const pool = new Pool(o.upstream, { connections: 128, pipelining: 1 });

const HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'proxy-authenticate',
  'proxy-authorization',
]);

/** Flat [name, value, ...] list without hop-by-hop headers (and without `skip`), from Node's or undici's raw list. */
function endToEnd(raw: ReadonlyArray<string | Buffer>, skip?: string): string[] {
  let listed: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    if (String(raw[i]).toLowerCase() === 'connection')
      for (const n of String(raw[i + 1]).split(',')) (listed ??= new Set()).add(n.trim().toLowerCase());
  }
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = String(raw[i]);
    const lower = name.toLowerCase();
    if (HOP.has(lower) || listed?.has(lower) || lower === skip) continue;
    out.push(name, String(raw[i + 1]));
  }
  return out;
}

class Exchange implements Dispatcher.DispatchHandler {
  private abort: ((err?: Error) => void) | undefined;
  private done = false;
  constructor(private readonly res: ServerResponse) {
    res.on('close', () => {
      if (!this.done) this.abort?.(new Error('client closed'));
    });
  }
  onConnect(abort: (err?: Error) => void): void {
    this.abort = abort;
  }
  onHeaders(status: number, raw: Buffer[], resume: () => void): boolean {
    if (status < 200) return true;
    this.res.writeHead(status, endToEnd(raw));
    this.res.on('drain', resume);
    return true;
  }
  onData(chunk: Buffer): boolean {
    return this.res.write(chunk);
  }
  onComplete(): void {
    this.done = true;
    this.res.end();
  }
  onError(): void {
    this.done = true;
    if (this.res.headersSent) this.res.destroy();
    else this.res.writeHead(502, { 'content-type': 'text/plain' }).end('bad gateway');
  }
}

function handle(req: IncomingMessage, res: ServerResponse): void {
  // The incoming X-Forwarded-For is replaced by one that appends this hop, not sent twice.
  const headers = endToEnd(req.rawHeaders, 'x-forwarded-for');
  const xff = req.headers['x-forwarded-for'];
  headers.push('x-forwarded-for', xff ? `${xff}, ${req.socket.remoteAddress}` : String(req.socket.remoteAddress));
  const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
  pool.dispatch(
    { method: req.method as Dispatcher.HttpMethod, path: req.url!, headers, body: hasBody ? req : null },
    new Exchange(res),
  );
}

const opts = { keepAliveTimeout: 120_000 };
http.createServer(opts, handle).listen(o.httpPort, '127.0.0.1');
https
  .createServer({ ...opts, cert: readFileSync(o.cert), key: readFileSync(o.key) }, handle)
  .listen(o.httpsPort, '127.0.0.1');
process.stdout.write('ready\n');
