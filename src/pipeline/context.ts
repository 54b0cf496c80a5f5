/**
 * The request context: everything policies may read or decide about one request. It is the same object whether
 * the request is proxied or arrives as a decision request from a front proxy, so policies never touch the raw
 * socket or response. Fields are initialised in the constructor to keep one hidden class on the hot path.
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { payloadTooLarge, problem, type Problem } from './problem.js';
import type { RequestScope, Route, Upstream } from './route.js';

/** Who the client is, as established by an authentication policy. Never read from client headers. */
export interface Identity {
  /** Consumer name (client application or service). */
  consumer?: string;
  /** Authentication method that succeeded: api-key, jwt, introspection, mtls, spiffe-jwt ... */
  method: string;
  scopes: readonly string[];
  groups?: readonly string[];
  /** Consumer plan, used by rate limits. */
  plan?: string;
  spiffeId?: string;
  /** SHA-256 fingerprint of the client certificate, when mTLS was used. */
  certFingerprint?: string;
  /** Credential id (API key id, token `jti`), for audit; never the secret. */
  credentialId?: string;
  /** Verified claims (JWT) a later policy may map to a subject. */
  claims?: Readonly<Record<string, unknown>>;
  /**
   * Epoch ms after which the credential must be checked again: a token's `exp`, an API key's expiry, the end of an
   * introspection answer's cache, a certificate's notAfter. A front proxy never reuses a decision past it.
   */
  expiresAt?: number;
}

/**
 * A field of the request context that a policy or subsystem declares for its own per-request data, as Fastify's
 * `decorateRequest` does: typed, owned by the feature that declares it (`new RequestField<T>('kyc-gate.history')`),
 * and out of reach of code that does not import it. Reading and writing one is an array access.
 */
export class RequestField<T> {
  private static declared = 0;
  /** Position in each context's field array. */
  readonly index: number;
  /** Phantom member carrying T, so fields of different types are not interchangeable. */
  declare readonly valueType: T;

  constructor(readonly name: string) {
    this.index = RequestField.declared++;
  }
}

/** What was decided and why; written to the audit trail. */
export interface DecisionRecord {
  outcome: string;
  policy?: string;
  rule?: string;
  reason?: string;
}

/**
 * `R` is what the context knows of its route: policies see the contract's Route; the server, which compiled the
 * route, keeps its own type (routing/router.ts, RoutedContext) and reaches the route's policy chain through it.
 */
export class RequestContext<R extends Route = Route> {
  /** Request id: propagated from a valid incoming `x-request-id` or generated. */
  readonly id: string;
  /** `performance.now()` at arrival. */
  readonly startedAt: number;
  readonly listener: string;
  /** `https` when the client connection is TLS (or, behind a trusted proxy, said so by it). */
  readonly protocol: 'http' | 'https';
  readonly method: string;
  /** Normalised path (no query): what routes match on and what the upstream receives. */
  readonly path: string;
  /** Raw query string without the leading `?`, or '' when absent. */
  readonly query: string;
  /** Host without port, lower case. */
  readonly hostname: string;
  /** Host header value as received (with port). */
  readonly host: string;
  /** The client address: the TCP peer, or the first untrusted hop of X-Forwarded-For behind trusted proxies. */
  readonly clientIp: string;
  /** The TCP peer address. */
  readonly remoteAddress: string;
  readonly req: IncomingMessage | undefined;
  private headerObject: IncomingHttpHeaders | undefined;
  route: R;
  params: Record<string, string | undefined>;
  /** Where the request goes; a policy may reroute to another upstream group. */
  upstream: Upstream | undefined;
  identity: Identity | undefined;
  /** Pseudonymous end-user subject id, set by the KYC gate. */
  subject: string | undefined;
  /** Values of RequestFields, by field index; allocated by the first `set`. */
  private fields: unknown[] | undefined;
  /**
   * The compiled config the request started on, set by the listener that dispatches it: a reload never changes it
   * mid-request. A field of its own rather than an entry in `state`: the request path sets it on every request, and
   * CPU profiles put about 2 µs per request on adding it to each request's fresh `state` object. Undefined only
   * until the listener sets it (tests may build a context without one).
   */
  runtime: RequestScope | undefined;
  decision: DecisionRecord | undefined;
  /**
   * The identity-verification (KYC gate) decision on this request. Usually the same object as `decision`; it stays
   * when a policy after the gate (fault injection, say) makes the final one, so the request's one audit record says how
   * the KYC gate decided.
   */
  verification: DecisionRecord | undefined;
  /**
   * What this request was decided on that was served past its refresh time because the store could not be reached
   * (`api_key`, `kyc_subject`): recorded as `stale` in the audit trail and counted in the metrics.
   */
  staleState: string[] | undefined;
  /** Name of the front proxy when the request came in as a decision request. */
  frontProxy: string | undefined;
  private varyExtra: string[] | undefined;
  /** Response status finally sent (0 until known). */
  status: number;
  /** Problem kind when the gateway answered with an error. */
  errorKind: string | undefined;
  /** Upstream target URL that served the request, once chosen. */
  target: string | undefined;
  /** Why forwarding failed (undici's error code), for the access log. */
  upstreamError: string | undefined;
  /** Requests sent again to the upstream group (failed connects, resets of idempotent requests). */
  upstreamRetries: number;
  /** Set when the client went away before the answer was complete. */
  aborted: boolean;
  private upstreamSet: Array<readonly [string, string]> | undefined;
  private upstreamRemove: string[] | undefined;
  /** The query sent upstream when a policy removed parameters from it; undefined means `query` unchanged. */
  private upstreamQueryOverride: string | undefined;
  private responseSet: Array<[string, string | string[]]> | undefined;
  private bodyBuffer: Buffer | undefined;
  /** The one read of the body (from `req` or `bodyReader`): a second caller gets the same outcome, not a drained stream. */
  private bodyPromise: Promise<Buffer | Problem> | undefined;
  private readonly bodyReader: ((limit: number) => Promise<Buffer | Problem>) | undefined;
  private cacheTtl: number;
  /** Epoch ms bound on decision reuse from limitCacheUntil (Infinity when none). */
  private cacheUntil: number;

  constructor(init: {
    id: string;
    startedAt: number;
    listener: string;
    protocol: 'http' | 'https';
    method: string;
    path: string;
    query: string;
    host: string;
    hostname: string;
    clientIp: string;
    remoteAddress: string;
    /** Request headers; taken lazily from `req` when omitted. */
    headers?: IncomingHttpHeaders;
    req: IncomingMessage | undefined;
    route: R;
    params: Record<string, string | undefined>;
    body?: Buffer;
    /**
     * Where the body comes from when there is no `req` (decision requests): resolves to the body or to the
     * Problem that explains why it is not available. Without it and without `req` the body is empty.
     */
    bodyReader?: (limit: number) => Promise<Buffer | Problem>;
  }) {
    this.id = init.id;
    this.startedAt = init.startedAt;
    this.listener = init.listener;
    this.protocol = init.protocol;
    this.method = init.method;
    this.path = init.path;
    this.query = init.query;
    this.host = init.host;
    this.hostname = init.hostname;
    this.clientIp = init.clientIp;
    this.remoteAddress = init.remoteAddress;
    this.headerObject = init.headers;
    this.req = init.req;
    this.route = init.route;
    this.params = init.params;
    this.upstream = init.route.upstream;
    this.identity = undefined;
    this.subject = undefined;
    this.fields = undefined;
    this.runtime = undefined;
    this.decision = undefined;
    this.verification = undefined;
    this.staleState = undefined;
    this.frontProxy = undefined;
    this.varyExtra = undefined;
    this.status = 0;
    this.errorKind = undefined;
    this.target = undefined;
    this.upstreamError = undefined;
    this.upstreamRetries = 0;
    this.aborted = false;
    this.upstreamSet = undefined;
    this.upstreamRemove = undefined;
    this.upstreamQueryOverride = undefined;
    this.responseSet = undefined;
    this.bodyBuffer = init.body;
    this.bodyPromise = undefined;
    this.bodyReader = init.bodyReader;
    this.cacheTtl = Infinity;
    this.cacheUntil = Infinity;
  }

  /** The value a policy or subsystem keeps in its own field for this request (see RequestField). */
  get<T>(field: RequestField<T>): T | undefined {
    const fields = this.fields;
    return fields === undefined ? undefined : (fields[field.index] as T | undefined);
  }

  set<T>(field: RequestField<T>, value: T | undefined): void {
    (this.fields ??= [])[field.index] = value;
  }

  /**
   * The client went away before the exchange ended. Before any answer started it is recorded as nginx does, 499
   * (client closed request), apart from upstream and gateway failures; after, the status sent stays on record.
   */
  clientClosed(answerStarted: boolean): void {
    this.aborted = true;
    if (!answerStarted) {
      this.status = 499;
      this.errorKind = 'client-closed-request';
    }
  }

  /**
   * Bounds how long (seconds) a front proxy may reuse the decision made for this request: a policy calls it with
   * the time until the earliest expiry it relied on (token `exp`, KYC decision validity), or 0 when its answer
   * must not be reused at all (per-request counters). The smallest bound wins.
   */
  limitCacheTtl(seconds: number): void {
    const s = seconds > 0 ? Math.floor(seconds) : 0;
    if (s < this.cacheTtl) this.cacheTtl = s;
  }

  /**
   * Bounds decision reuse by an absolute time (epoch ms), such as a credential's expiry: the same as limitCacheTtl
   * with the seconds left, without reading the clock on every request (the answer does, in decision mode only).
   */
  limitCacheUntil(epochMs: number): void {
    if (epochMs < this.cacheUntil) this.cacheUntil = epochMs;
  }

  /**
   * Marks the request as decided on `what` served stale during a store outage. A front proxy must not reuse such a
   * decision: it is made again (and recorded) on the next request.
   */
  markStale(what: string): void {
    const list = (this.staleState ??= []);
    if (!list.includes(what)) list.push(what);
    this.cacheTtl = 0;
  }

  /**
   * Names a request header this request's decision depends on beyond the credentials (a subject taken from a
   * header, for example): a front proxy that caches decisions must keep one answer per value of it (`Vary`).
   */
  varyOn(header: string): void {
    const list = (this.varyExtra ??= []);
    if (!list.includes(header)) list.push(header);
  }

  /** Headers named with `varyOn`, lower case, or undefined. */
  get varyHeaders(): readonly string[] | undefined {
    return this.varyExtra;
  }

  /** The smallest bound (seconds from now) given by `limitCacheTtl` or `limitCacheUntil`, or Infinity when none. */
  get cacheTtlLimit(): number {
    const until = this.cacheUntil;
    if (until === Infinity) return this.cacheTtl;
    const left = Math.floor((until - Date.now()) / 1000);
    const s = Math.max(left, 0);
    return Math.min(s, this.cacheTtl);
  }

  /** Request headers with lower-case names (built on first use: a bare route never pays for it). */
  get headers(): IncomingHttpHeaders {
    return (this.headerObject ??= this.req === undefined ? {} : this.req.headers);
  }

  /** First value of a request header (lower-case name). */
  header(name: string): string | undefined {
    const built = this.headerObject;
    const req = this.req;
    if (built === undefined && req !== undefined) {
      // One lookup is cheaper as a scan of the raw list than building the whole header object.
      const raw = req.rawHeaders;
      const length = name.length;
      for (let i = 0; i < raw.length; i += 2) {
        const candidate = raw[i]!;
        if (candidate.length === length && (candidate === name || candidate.toLowerCase() === name)) return raw[i + 1];
      }
      return undefined;
    }
    const value = this.headers[name];
    return Array.isArray(value) ? value[0] : value;
  }

  /** The TLS socket of the client connection, for mTLS policies. */
  get tlsSocket(): TLSSocket | undefined {
    const socket = this.req?.socket as TLSSocket | undefined;
    return socket?.encrypted ? socket : undefined;
  }

  /** Adds or replaces a header sent upstream (and, in decision mode, returned to the front proxy). */
  setUpstreamHeader(name: string, value: string): void {
    (this.upstreamSet ??= []).push([name.toLowerCase(), value]);
  }

  /** Adds one header sent upstream as a pair a policy keeps (name lower case; shared, not copied). */
  addUpstreamHeader(pair: readonly [string, string]): void {
    (this.upstreamSet ??= []).push(pair);
  }

  /** Adds headers sent upstream from a list a policy keeps (names lower case; the pairs are shared, not copied). */
  addUpstreamHeaders(pairs: ReadonlyArray<readonly [string, string]>): void {
    const set = (this.upstreamSet ??= []);
    for (let i = 0; i < pairs.length; i++) set.push(pairs[i]!);
  }

  /** Removes a client header before forwarding. */
  removeUpstreamHeader(name: string): void {
    (this.upstreamRemove ??= []).push(name.toLowerCase());
  }

  /**
   * Removes every occurrence of a query parameter (compared by its decoded name) from the query sent upstream; the
   * other parameters keep their exact encoding and order. `query` itself is unchanged, so later policies still see
   * what the client sent. The new query is computed here, once, so requests that never call this pay nothing.
   */
  removeUpstreamQueryParam(name: string): void {
    const current = this.upstreamQueryOverride ?? this.query;
    if (current === '') return;
    const kept: string[] = [];
    let removed = false;
    for (const part of current.split('&')) {
      const eq = part.indexOf('=');
      const rawName = eq === -1 ? part : part.slice(0, eq);
      // Most names need no decoding; others are decoded as URLSearchParams does ('+' is a space, lenient %-escapes).
      const decoded =
        rawName.includes('%') || rawName.includes('+')
          ? (new URLSearchParams(rawName + '=').keys().next().value ?? rawName)
          : rawName;
      if (decoded === name) removed = true;
      else kept.push(part);
    }
    if (removed) this.upstreamQueryOverride = kept.join('&');
  }

  /** Raw query string sent upstream (without `?`): `query` minus parameters removed with removeUpstreamQueryParam. */
  get upstreamQuery(): string {
    return this.upstreamQueryOverride ?? this.query;
  }

  /** Headers set for upstream, in the order set (no object per call: read on the hot path). */
  get upstreamSets(): ReadonlyArray<readonly [string, string]> | undefined {
    return this.upstreamSet;
  }

  get upstreamRemovals(): readonly string[] | undefined {
    return this.upstreamRemove;
  }

  get upstreamHeaderChanges(): {
    set: ReadonlyArray<readonly [string, string]> | undefined;
    remove: readonly string[] | undefined;
  } {
    return { set: this.upstreamSet, remove: this.upstreamRemove };
  }

  /** Adds a header to the answer sent to the client, whoever makes it. */
  setResponseHeader(name: string, value: string | string[]): void {
    (this.responseSet ??= []).push([name.toLowerCase(), value]);
  }

  get responseHeaderChanges(): ReadonlyArray<[string, string | string[]]> | undefined {
    return this.responseSet;
  }

  /** True once a policy has read the body (it is then forwarded from memory). */
  get bodyRead(): boolean {
    return this.bodyBuffer !== undefined;
  }

  get body(): Buffer | undefined {
    return this.bodyBuffer;
  }

  /**
   * Replaces the body sent upstream (after validation stripped fields or a transform rewrote it). Only valid
   * after readBody() resolved: the original body has then been consumed and is forwarded from memory anyway.
   */
  replaceBody(body: Buffer): void {
    if (this.bodyBuffer === undefined) throw new Error('replaceBody() before readBody()');
    this.bodyBuffer = body;
  }

  /**
   * Reads the whole request body, bounded by the route's body limit. Resolves to a Problem (413, 400) instead of
   * rejecting, so callers can return it as their answer.
   */
  readBody(): Promise<Buffer | Problem> {
    if (this.bodyBuffer !== undefined) return Promise.resolve(this.bodyBuffer);
    const req = this.req;
    if (req === undefined && this.bodyReader === undefined) return Promise.resolve(Buffer.alloc(0));
    const limit = this.route.maxBodyBytes;
    return (this.bodyPromise ??= (req !== undefined ? readRequestBody(req, limit) : this.bodyReader!(limit)).then(
      (body) => {
        if (Buffer.isBuffer(body)) this.bodyBuffer = body;
        return body;
      },
    ));
  }
}

/**
 * Reads a request body whole, bounded by `limit`: a declared Content-Length over it, or a body that grows past it
 * while read, is a 413 (reading stops); a failed read is a 400. Resolves to the Problem instead of rejecting, so
 * callers can answer it. Used by RequestContext.readBody and the decision endpoint (forwarded Envoy bodies).
 */
export function readRequestBody(req: IncomingMessage, limit: number): Promise<Buffer | Problem> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) return Promise.resolve(payloadTooLarge(limit));
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (value: Buffer | Problem) => {
      if (done) return;
      done = true;
      req.off('data', onData);
      resolve(value);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) return finish(payloadTooLarge(limit));
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => finish(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)));
    req.once('error', () => finish(problem('bad-request', { detail: 'The request body could not be read.' })));
  });
}
