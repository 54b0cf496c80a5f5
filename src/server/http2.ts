/**
 * HTTP/2 on the gateway's listeners. A TLS listener offers `h2` and `http/1.1` by ALPN: connections that chose
 * `h2` go to an HTTP/2 session, the others to the same HTTP/1.1 server as before (its options, timeouts and
 * connection tracking unchanged). A plain listener with `http2: h2c` speaks HTTP/2 with prior knowledge only.
 *
 * HTTP/2 requests reach the same intake and policies as HTTP/1.1 ones, through Node's compatibility API and the
 * two classes below: the request's `rawHeaders` read like an HTTP/1.1 request's (pseudo-headers out, `:authority`
 * as `host`, cookie fields joined), and what could be read two ways is refused first (`:authority` with a
 * different `host`, neither of them).
 *
 * Edge protections: concurrent streams per connection, the header list's size and count (a stream over them is
 * reset with ENHANCE_YOUR_CALM; nghttp2 also caps CONTINUATION frames), SETTINGS entries, outstanding pings and
 * settings, session memory, and stream resets per connection and second (rapid reset, CVE-2023-44487): a
 * connection over the limit gets GOAWAY (ENHANCE_YOUR_CALM) and is closed, counted and put on record. Where Node
 * passes nghttp2 its own reset limit (22.10+), a flood read in one go trips that limit before the streams' close
 * events reach the count: nghttp2 sends GOAWAY (INTERNAL_ERROR) and Node destroys the session with an
 * ERR_HTTP2_ERROR. Such a closure, right after resets by the client, is put on the same record.
 */
import http2, {
  Http2ServerRequest,
  Http2ServerResponse,
  type Http2Server,
  type Http2Session,
  type Http2Stream,
  type ServerHttp2Session,
} from 'node:http2';
import type http from 'node:http';
import type https from 'node:https';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { GatewayConfig } from '../config/types.js';
import type { EventBus } from '../pipeline/events.js';
import { problem, type Problem } from '../pipeline/problem.js';
import type { FramingResult } from './framing.js';

const { NGHTTP2_ENHANCE_YOUR_CALM, NGHTTP2_NO_ERROR } = http2.constants;

/** A request of an HTTP/2 stream, with `rawHeaders` as an HTTP/1.1 request would have them. */
export class GatewayHttp2Request extends Http2ServerRequest {
  private normalised: string[] | undefined;
  /** Set when the head can be read two ways: the intake refuses the request with it. */
  private refusal: Problem | undefined | null = null;

  /** The head as the client sent it (pseudo-headers included). */
  get sentHeaders(): string[] {
    return nodeRawHeaders.call(this);
  }

  /** What `rawHeaders` answers (see below). */
  normalisedHeaders(): string[] {
    if (this.normalised === undefined) this.normalise();
    return this.normalised!;
  }

  /** The problem this request's head is refused with, or undefined. */
  get headProblem(): Problem | undefined {
    if (this.refusal === null) this.normalise();
    return this.refusal ?? undefined;
  }

  /** Whether DATA frames follow the head (HTTP/2 needs no Content-Length for a body). */
  get hasBody(): boolean {
    return !this.stream.endAfterHeaders;
  }

  private normalise(): void {
    const raw = this.sentHeaders;
    const out: string[] = [];
    let authority: string | undefined;
    let host: string | undefined;
    let cookie: string | undefined;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!;
      const value = raw[i + 1]!;
      if (name.charCodeAt(0) === 58 /* : */) {
        if (name === ':authority') authority = value;
        continue;
      }
      // Names arrive lower-case (nghttp2 refuses upper-case ones).
      if (name === 'cookie') {
        // RFC 9113 8.2.3: cookie fields are one header once outside HTTP/2.
        cookie = cookie === undefined ? value : cookie + '; ' + value;
        continue;
      }
      if (name === 'host') {
        if (host !== undefined) {
          this.refuse('The host header appears more than once.');
          return;
        }
        host = value;
      }
      out.push(name, value);
    }
    if (authority !== undefined && host !== undefined && authority.toLowerCase() !== host.toLowerCase()) {
      this.refuse('The :authority pseudo-header and the host header disagree.');
      return;
    }
    if (authority === undefined && host === undefined) {
      this.refuse('HTTP/2 requests need :authority or a host header.');
      return;
    }
    if (host === undefined) out.unshift('host', authority!);
    if (cookie !== undefined) out.push('cookie', cookie);
    this.normalised = out;
    this.refusal = undefined;
  }

  private refuse(detail: string): void {
    this.refusal = problem('ambiguous-request', { detail });
    this.normalised = [];
  }
}

const nodeRawHeaders = Object.getOwnPropertyDescriptor(Http2ServerRequest.prototype, 'rawHeaders')!.get! as (
  this: Http2ServerRequest,
) => string[];
// The intake, policies and forwarding read `rawHeaders` as on an HTTP/1.1 request.
Object.defineProperty(GatewayHttp2Request.prototype, 'rawHeaders', {
  configurable: true,
  get(this: GatewayHttp2Request) {
    return this.normalisedHeaders();
  },
});

// Policies that read the header object see the same names as over HTTP/1.1 (`host`, one `cookie`).
const HEADER_OBJECT = Symbol('kycgate.h2-headers');
Object.defineProperty(GatewayHttp2Request.prototype, 'headers', {
  configurable: true,
  get(this: GatewayHttp2Request & { [HEADER_OBJECT]?: Record<string, string | string[]> }) {
    let built = this[HEADER_OBJECT];
    if (built !== undefined) return built;
    built = Object.create(null) as Record<string, string | string[]>;
    const raw = this.normalisedHeaders();
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!;
      const existing = built[name];
      if (existing === undefined) built[name] = name === 'set-cookie' ? [raw[i + 1]!] : raw[i + 1]!;
      else if (Array.isArray(existing)) existing.push(raw[i + 1]!);
      else built[name] = existing + ', ' + raw[i + 1]!;
    }
    this[HEADER_OBJECT] = built;
    return built;
  },
  set() {
    // Node's constructor assigns the object it parsed: this getter replaces it.
  },
});

/** Adjusts the framing facts of an HTTP/2 request: its head's refusal, and whether a body follows. */
export function http2Framing(req: GatewayHttp2Request, framing: FramingResult): void {
  const refused = req.headProblem;
  if (refused !== undefined && framing.problem === undefined) framing.problem = refused;
  framing.hasBody = req.hasBody;
}

/** A response on an HTTP/2 stream, with the `destroyed` flag the forwarding path reads on HTTP/1.1 responses. */
export class GatewayHttp2Response extends Http2ServerResponse {}
Object.defineProperty(GatewayHttp2Response.prototype, 'destroyed', {
  configurable: true,
  get(this: GatewayHttp2Response) {
    return this.stream.destroyed;
  },
});

/** `server.http2` with defaults filled in. */
export type Http2Limits = GatewayConfig['server']['http2'];

/** Node's HTTP/2 server options from `server.http2` and `server.max_header_bytes`. */
export function http2ServerOptions(s: GatewayConfig['server']): http2.ServerOptions {
  const h = s.http2;
  return {
    settings: {
      maxConcurrentStreams: h.max_concurrent_streams,
      maxHeaderListSize: s.max_header_bytes,
      initialWindowSize: h.initial_window_bytes,
      enablePush: false,
    },
    maxHeaderListPairs: h.max_header_fields,
    maxSettings: 32,
    maxOutstandingPings: 10,
    maxSessionMemory: h.max_session_memory_mb,
    maxSessionInvalidFrames: 100,
    maxSessionRejectedStreams: 100,
    // nghttp2's own limit on incoming RST_STREAM frames (honoured from Node 22.10; Node 20 keeps nghttp2's 1000 and
    // 33 per second), a backstop behind the gateway's count below that acts first on a flood read in one go.
    streamResetBurst: h.max_resets_per_second * 4,
    streamResetRate: h.max_resets_per_second * 2,
    Http2ServerRequest: GatewayHttp2Request,
    Http2ServerResponse: GatewayHttp2Response,
  } as http2.ServerOptions;
}

/** Why the gateway closed an HTTP/2 connection; each is a label of kycgate_http2_connections_closed_total. */
export type Http2CloseReason = 'rapid_reset';

/** Records a connection closed for abuse; `client` is its remote address, kept when the session began. */
export type Http2AbuseRecorder = (client: string, reason: Http2CloseReason) => void;

interface ResetCount {
  windowStart: number;
  resets: number;
  limit: number;
  /** On record (and closed, or being closed): nothing more to count or record. */
  closed: boolean;
  client: string;
  onAbuse: Http2AbuseRecorder;
}

const RESETS = Symbol('kycgate.h2-resets');
const OWNER = Symbol('kycgate.h2-session');
type GuardedSession = ServerHttp2Session & { [RESETS]?: ResetCount };
type OwnedStream = Http2Stream & { [OWNER]?: GuardedSession };

/** A stream of a guarded session closed: a reset by the peer counts towards the connection's limit. */
function onStreamClose(this: OwnedStream): void {
  const code = this.rstCode;
  if (code === undefined || code === NGHTTP2_NO_ERROR) return;
  // A closed stream no longer knows its session: the one it was opened on was kept.
  const session = this[OWNER];
  const count = session?.[RESETS];
  if (count === undefined || count.closed) return;
  const now = performance.now();
  if (now - count.windowStart >= 1000) {
    count.windowStart = now;
    count.resets = 0;
  }
  if (++count.resets <= count.limit) return;
  count.closed = true;
  count.onAbuse(count.client, 'rapid_reset');
  // nghttp2 may have closed the session already (its own reset limit, same flood): then it is only recorded.
  if (session!.destroyed) return;
  // GOAWAY with this code, then the connection is closed (Node sends NO_ERROR unless given an error and a code).
  // GOAWAY first, explicitly: Node 24's destroy(error, code) sends INTERNAL_ERROR instead of the code it is given.
  session!.goaway(NGHTTP2_ENHANCE_YOUR_CALM);
  session!.destroy(new Error('too many stream resets'), NGHTTP2_ENHANCE_YOUR_CALM);
}

/**
 * The session failed in the protocol layer (Node destroys it; the error is the client's, nothing to log). An
 * ERR_HTTP2_ERROR while the client's resets are being counted is nghttp2 closing a reset flood itself (GOAWAY
 * INTERNAL_ERROR once over its reset limit, or over the refused streams a flood of opens leaves): the refusal the
 * gateway's own count would have made, put on the same record.
 */
function onSessionError(this: GuardedSession, err: Error & { code?: string }): void {
  const count = this[RESETS];
  if (count === undefined || count.closed || err.code !== 'ERR_HTTP2_ERROR') return;
  if (count.resets === 0 || performance.now() - count.windowStart >= 1000) return;
  count.closed = true;
  count.onAbuse(count.client, 'rapid_reset');
}

function onStream(this: GuardedSession, stream: OwnedStream): void {
  stream[OWNER] = this;
  stream.once('close', onStreamClose);
}

/** The HTTP/2 side of a listener: its server (never bound itself) and the sessions it serves. */
export class Http2Side {
  readonly server: Http2Server;
  private readonly sessions = new Set<ServerHttp2Session>();

  constructor(
    options: http2.ServerOptions,
    limits: Http2Limits,
    onRequest: (req: GatewayHttp2Request, res: GatewayHttp2Response) => void,
    onAbuse: Http2AbuseRecorder,
  ) {
    const server = http2.createServer(options);
    server.on('request', onRequest as never);
    // An idle connection is closed after this long (Node destroys the session when nothing listens to 'timeout').
    server.setTimeout(limits.idle_timeout_ms);
    server.on('session', (session: ServerHttp2Session) => {
      const guarded = session as GuardedSession;
      guarded[RESETS] = {
        windowStart: performance.now(),
        resets: 0,
        limit: limits.max_resets_per_second,
        closed: false,
        client: session.socket.remoteAddress ?? '',
        onAbuse,
      };
      session.on('stream', onStream);
      session.on('error', onSessionError);
      this.sessions.add(session);
      session.once('close', () => this.sessions.delete(session));
    });
    this.server = server;
  }

  /** Takes a connection (TLS with ALPN h2, or plain with prior knowledge). */
  accept(socket: Socket): void {
    this.server.emit('connection', socket);
  }

  /** GOAWAY to every connection: streams in flight finish, no new ones start. */
  closeIdle(): void {
    for (const s of this.sessions) if (!s.closed) s.close();
  }

  /** Closes every connection now. */
  closeAll(): void {
    for (const s of this.sessions) s.destroy();
  }

  get connections(): number {
    return this.sessions.size;
  }
}

/**
 * Routes the connections of a listener's server: on TLS, those that chose `h2` by ALPN to `side`, the others to the
 * server's own HTTP/1.1 handling; on a plain `h2c` listener, every connection to `side`.
 */
export function attachHttp2(server: http.Server | https.Server, side: Http2Side, tls: boolean): void {
  const event = tls ? 'secureConnection' : 'connection';
  const [http1] = server.listeners(event) as Array<(this: http.Server, socket: Socket) => void>;
  if (http1 === undefined) throw new Error(`no ${event} listener to take over`);
  server.off(event, http1);
  if (tls) {
    server.prependListener(event, (socket: Socket & { alpnProtocol?: string | false }) => {
      if (socket.alpnProtocol === 'h2') side.accept(socket);
      else http1.call(server, socket);
    });
  } else {
    server.prependListener(event, (socket: Socket) => side.accept(socket));
  }
}

export type { Http2Session };

/** Records connections closed for abuse: metric, event (audit) and a log line. */
export function http2AbuseRecorder(
  listener: string,
  events: EventBus,
  logger: Logger,
  count: (reason: Http2CloseReason) => void,
): Http2AbuseRecorder {
  return (client, reason) => {
    count(reason);
    events.emit({ type: 'http2.connection_closed', outcome: reason, data: { listener, client } });
    logger.warn({ listener, client, reason }, 'HTTP/2 connection closed for abuse');
  };
}
