/**
 * HTTP/2 to an upstream target (`upstreams.*.http2`): one node:http2 session per target (TLS with ALPN h2 for
 * https targets, prior knowledge for http ones), opened on first use and again after it closed or was told to go
 * away. It takes the same dispatch handler as an undici pool (proxy/forward.ts), so forwarding, its hooks, errors
 * and backpressure are the same for both versions; trailers reach the handler's `onComplete` (gRPC's grpc-status).
 *
 * A gRPC Trailers-Only answer (grpc-status in a head that ends the stream) is handed on as a head (content type)
 * and trailers (status, message, metadata), which is how the forwarding path relays any answer.
 */
import http2, { type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders } from 'node:http2';
import type { SecureContextOptions } from 'node:tls';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';

const { NGHTTP2_CANCEL, NGHTTP2_FLAG_END_STREAM } = http2.constants;

/** Request headers HTTP/2 forbids (RFC 9113 8.2.2); `te` is sent as `trailers` by the gateway itself. */
const CONNECTION_SPECIFIC = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
]);

/** Headers of a Trailers-Only answer that stay in its head (the rest is trailing metadata). */
const GRPC_HEAD = new Set(['content-type', 'date', 'server']);

export interface Http2UpstreamOptions {
  connectTimeoutMs: number;
  /** A connection without frames for this long is closed (gracefully: streams in flight finish). */
  idleTimeoutMs: number;
  tls?: SecureContextOptions & { servername?: string; rejectUnauthorized?: boolean };
}

type Handler = Dispatcher.DispatchHandler;
type Options = Dispatcher.DispatchOptions;

function coded(message: string, code: string): Error & { code: string } {
  return Object.assign(new Error(message), { code });
}

interface Waiting {
  options: Options;
  handler: Handler;
}

/** One connection to a target, and the requests waiting for it to be ready. */
class Connection {
  ready = false;
  waiting: Waiting[] = [];
  constructor(readonly session: ClientHttp2Session) {}
}

export class Http2Upstream {
  private conn: Connection | undefined;
  private readonly scheme: 'http' | 'https';

  constructor(
    private readonly origin: string,
    private readonly options: Http2UpstreamOptions,
  ) {
    this.scheme = origin.startsWith('https:') ? 'https' : 'http';
  }

  dispatch(options: Options, handler: Handler): boolean {
    if ((options as { upgrade?: string }).upgrade !== undefined) {
      handler.onError?.(coded('protocol upgrades are not relayed over HTTP/2 upstreams', 'UND_ERR_NOT_SUPPORTED'));
      return true;
    }
    const conn = this.connection();
    if (conn.ready) this.send(conn.session, options, handler);
    else conn.waiting.push({ options, handler });
    return true;
  }

  /** For active health probes: the status of a GET, its body discarded. */
  request(options: { path: string; method: string; headers?: Record<string, string>; headersTimeout?: number }) {
    return new Promise<{ statusCode: number; body: { dump(o?: unknown): Promise<void> } }>((resolve, reject) => {
      const headers: string[] = [];
      for (const [k, v] of Object.entries(options.headers ?? {})) headers.push(k, v);
      let statusCode = 0;
      const handler: Handler = {
        onConnect: () => undefined,
        onHeaders: (status: number) => {
          statusCode = status;
          return true;
        },
        onData: () => true,
        onComplete: () => resolve({ statusCode, body: { dump: () => Promise.resolve() } }),
        onError: (err: Error) => reject(err),
      };
      this.dispatch(
        {
          path: options.path,
          method: options.method as Options['method'],
          headers,
          headersTimeout: options.headersTimeout,
        },
        handler,
      );
    });
  }

  async close(): Promise<void> {
    const conn = this.conn;
    this.conn = undefined;
    if (conn === undefined || conn.session.destroyed) return;
    await new Promise<void>((resolve) => conn.session.close(resolve));
  }

  private connection(): Connection {
    const current = this.conn;
    if (current !== undefined && !current.session.closed && !current.session.destroyed) return current;
    const tls = this.options.tls ?? {};
    const session = http2.connect(this.origin, { ...tls, settings: { enablePush: false } });
    const conn = new Connection(session);
    this.conn = conn;
    const timer = setTimeout(
      () => session.destroy(coded('connect timeout', 'UND_ERR_CONNECT_TIMEOUT')),
      this.options.connectTimeoutMs,
    );
    const forget = () => {
      if (this.conn === conn) this.conn = undefined;
    };
    const failWaiting = (err: Error) => {
      clearTimeout(timer);
      const waiting = conn.waiting;
      conn.waiting = [];
      for (const w of waiting) w.handler.onError?.(err);
    };
    session.once('connect', () => {
      clearTimeout(timer);
      conn.ready = true;
      const waiting = conn.waiting;
      conn.waiting = [];
      for (const w of waiting) this.send(session, w.options, w.handler);
    });
    // Before the connection is ready an error fails the requests waiting for it (never sent: another target may
    // take them); after, each stream reports its own.
    session.on('error', (err: Error) => {
      forget();
      if (!conn.ready) failWaiting(err);
    });
    session.once('goaway', forget);
    session.once('close', () => {
      forget();
      if (!conn.ready) failWaiting(coded('connection closed before it was ready', 'ECONNREFUSED'));
    });
    session.setTimeout(this.options.idleTimeoutMs, () => session.close());
    return conn;
  }

  private send(session: ClientHttp2Session, options: Options, handler: Handler): void {
    const headers: Record<string, string | string[]> = {
      ':method': options.method,
      ':path': options.path,
      ':scheme': this.scheme,
      te: 'trailers',
    };
    const flat = options.headers as string[] | null | undefined;
    if (flat)
      for (let i = 0; i < flat.length; i += 2) {
        const name = flat[i]!.toLowerCase();
        const value = flat[i + 1]!;
        if (name === 'host') headers[':authority'] = value;
        else if (CONNECTION_SPECIFIC.has(name)) continue;
        else {
          const existing = headers[name];
          if (existing === undefined) headers[name] = value;
          else if (Array.isArray(existing)) existing.push(value);
          else headers[name] = [existing, value];
        }
      }
    const body = options.body as Buffer | Readable | null | undefined;
    let stream: ClientHttp2Stream;
    try {
      stream = session.request(headers, { endStream: body === null || body === undefined });
    } catch (err) {
      handler.onError?.(err as Error);
      return;
    }
    new Exchange(stream, handler, options, body);
  }
}

/** One request on a stream, reported to the handler exactly once at the end (completion or error). */
class Exchange {
  private over = false;
  private answered = false;
  private trailers: string[] | null = null;
  private headersTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly stream: ClientHttp2Stream,
    private readonly handler: Handler,
    options: Options,
    private readonly body: Buffer | Readable | null | undefined,
  ) {
    handler.onConnect?.((err?: Error) => this.abort(err));
    if (options.headersTimeout)
      this.headersTimer = setTimeout(
        () => this.fail(coded('no answer head in time', 'UND_ERR_HEADERS_TIMEOUT')),
        options.headersTimeout,
      );
    const bodyTimeout = options.bodyTimeout;
    stream.on('response', (h: IncomingHttpHeaders, flags: number) => this.onResponse(h, flags, bodyTimeout));
    stream.on('data', (chunk: Buffer) => {
      if (!this.over && this.handler.onData?.(chunk) === false) stream.pause();
    });
    stream.on('trailers', (t: IncomingHttpHeaders) => {
      this.trailers = flatten(t, this.trailers ?? []);
    });
    stream.on('end', () => this.complete());
    stream.on('error', (err: Error & { code?: string }) =>
      this.fail(this.answered ? err : coded(err.message, 'UND_ERR_SOCKET')),
    );
    stream.on('close', () => {
      if (this.over) return;
      if (this.answered && stream.rstCode === 0) this.complete();
      else this.fail(coded(`stream closed (code ${stream.rstCode})`, 'UND_ERR_SOCKET'));
    });
    if (Buffer.isBuffer(body)) stream.end(body);
    else if (body !== null && body !== undefined) {
      body.on('error', (err: Error) => this.fail(err));
      body.pipe(stream);
    }
  }

  private onResponse(h: IncomingHttpHeaders, flags: number, bodyTimeout: number | null | undefined): void {
    if (this.over) return;
    clearTimeout(this.headersTimer);
    this.answered = true;
    const trailersOnly = (flags & NGHTTP2_FLAG_END_STREAM) !== 0 && h['grpc-status'] !== undefined;
    const raw: string[] = [];
    for (const name of Object.keys(h)) {
      if (name.charCodeAt(0) === 58 /* : */) continue;
      const v = h[name]!;
      const into = trailersOnly && !GRPC_HEAD.has(name) ? (this.trailers ??= []) : raw;
      if (Array.isArray(v)) for (const item of v) into.push(name, item);
      else into.push(name, String(v));
    }
    if (bodyTimeout) this.stream.setTimeout(bodyTimeout, () => this.fail(coded('body idle', 'UND_ERR_BODY_TIMEOUT')));
    const go = this.handler.onHeaders?.(
      Number(h[':status']),
      raw as unknown as Buffer[],
      () => this.stream.resume(),
      '',
    );
    if (go === false) this.stream.pause();
  }

  private complete(): void {
    if (this.over) return;
    if (!this.answered) return this.fail(coded('stream ended without an answer', 'UND_ERR_SOCKET'));
    this.over = true;
    this.cleanup();
    this.handler.onComplete?.(this.trailers);
  }

  private fail(err: Error): void {
    if (this.over) return;
    this.over = true;
    this.cleanup();
    if (!this.stream.destroyed) this.stream.close(NGHTTP2_CANCEL);
    this.handler.onError?.(err);
  }

  /** The gateway stopped the exchange (client gone, answer withheld): no more callbacks. */
  private abort(_err?: Error): void {
    if (this.over) return;
    this.over = true;
    this.cleanup();
    if (!this.stream.destroyed) this.stream.close(NGHTTP2_CANCEL);
  }

  private cleanup(): void {
    clearTimeout(this.headersTimer);
    this.stream.setTimeout(0);
    const body = this.body;
    if (body !== null && body !== undefined && !Buffer.isBuffer(body)) body.unpipe(this.stream);
  }
}

function flatten(h: IncomingHttpHeaders, into: string[]): string[] {
  for (const name of Object.keys(h)) {
    if (name.charCodeAt(0) === 58) continue;
    const v = h[name]!;
    if (Array.isArray(v)) for (const item of v) into.push(name, item);
    else into.push(name, String(v));
  }
  return into;
}
