/**
 * Forwarding: acts on a decision to forward. One ForwardExchange per request is the undici dispatch handler, so
 * the response streams from the upstream socket to the client socket with backpressure, without a stream object
 * or a promise per chunk. Client aborts cancel the upstream request; upstream failures become 502/504 when
 * nothing was sent yet, and end the client response otherwise.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import { payloadTooLarge, problem, type Problem } from '../pipeline/problem.js';
import type { RequestContext } from '../pipeline/context.js';
import type { ResponseBodyTransform, ResponseHead } from '../pipeline/policy.js';
import type { PolicyChain } from '../pipeline/chain.js';
import { buildUpstreamHeaders, filterResponseHeaders, type StripRules } from './headers.js';
import { BodyLimit, IDEMPOTENT, REQUEST_FAULTS, RESETS, problemForUpstreamError } from './upstream-errors.js';
import { relay } from './relay.js';
import { UpstreamGroup, type UpstreamTarget } from './upstream.js';
import { mergeResponseHeaders, relayTrailers, responseMediaType } from './response-fields.js';

/** What forwarding reports back; `C` is the context type the caller holds (it gets its own contexts back). */
export interface ForwardHooks<C extends RequestContext = RequestContext> {
  /** Writes a gateway-made problem (with response hooks applied) when forwarding fails before the head. */
  sendProblem(ctx: C, res: ServerResponse, p: Problem, close?: boolean): void;
  /** Called exactly once when the exchange is over, however it ended. */
  finished(ctx: C): void;
  /**
   * A WebSocket connection is relayed from now on: the gateway destroys the client socket if it stops first, and
   * the relay then destroys its upstream side.
   */
  tunnelOpened(client: Duplex): void;
  /** A response body transform threw: the response is passed or withheld per its `onFailure`, and this is logged. */
  transformFailed(ctx: C, err: unknown): void;
}

/** Retries a request went through: targets it could not connect to, and resets it was sent again after. */
interface RetryState {
  tried: UpstreamTarget[];
  resets: number;
}

/** A response held back for body transforms: its head, and the chunks received so far. */
interface HeldResponse {
  readonly head: ResponseHead;
  readonly transforms: readonly ResponseBodyTransform[];
  readonly maxBytes: number;
  readonly block: boolean;
  readonly chunks: Buffer[];
  size: number;
}

/** The exchange a client response belongs to, so its listeners are shared functions instead of closures per request. */
const EXCHANGE = Symbol('kycgate.exchange');
type ExchangeResponse = ServerResponse & { [EXCHANGE]?: ForwardExchange<RequestContext> };

function onResponseClose(this: ExchangeResponse): void {
  this[EXCHANGE]?.clientClosed();
}

function onResponseDrain(this: ExchangeResponse): void {
  this[EXCHANGE]?.resume();
}

class ForwardExchange<C extends RequestContext> implements Dispatcher.DispatchHandler {
  private abortUpstream: ((err?: Error) => void) | undefined = undefined;
  /** Set only while a response is buffered for a body transform; undefined on the streaming path. */
  private held: HeldResponse | undefined = undefined;
  private resumeUpstream: (() => void) | undefined = undefined;
  private done = false;

  constructor(
    private readonly ctx: C,
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly group: UpstreamGroup,
    private readonly target: UpstreamTarget,
    private readonly hooks: ForwardHooks<C>,
    private readonly options: ForwardOptions,
    private readonly body: Dispatcher.DispatchOptions['body'],
    /** What this request already went through (undefined on the first try, which is nearly always). */
    private readonly retries: RetryState | undefined,
  ) {
    target.outstanding++;
    (res as ExchangeResponse)[EXCHANGE] = this;
    res.on('close', onResponseClose);
  }

  /** The client went away before the answer was complete: stop the upstream request. */
  clientClosed(): void {
    if (this.done) return;
    this.ctx.clientClosed(this.res.headersSent);
    this.abortUpstream?.(new Error('client closed the connection'));
    this.finish();
  }

  /** The client socket drained: let the upstream send more. */
  resume(): void {
    this.resumeUpstream?.();
  }

  onConnect(abort: (err?: Error) => void): void {
    if (this.done) abort(new Error('client closed the connection'));
    else this.abortUpstream = abort;
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    if (statusCode < 200) return true; // 1xx: nothing for the client here
    if (this.done) return false;
    this.resumeUpstream = resume;
    const ctx = this.ctx;
    this.group.answered(this.target);
    const headers = filterResponseHeaders(rawHeaders);
    headers.push('x-request-id', ctx.id);
    const extra = ctx.responseHeaderChanges;
    ctx.status = statusCode;
    const chain = this.options.chain;
    if (!chain.hasResponseHooks && !chain.hasBodyTransforms) {
      // Headers policies added (rate-limit counters ...) go straight into the flat list: no Map for them.
      if (extra !== undefined) mergeResponseHeaders(headers, extra);
      this.res.writeHead(statusCode, headers);
      return true;
    }
    const head: ResponseHead = { status: statusCode, headers: new Map(), fromUpstream: true };
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i]!.toLowerCase();
      const existing = head.headers.get(name);
      if (existing === undefined) head.headers.set(name, headers[i + 1]!);
      else
        head.headers.set(name, Array.isArray(existing) ? [...existing, headers[i + 1]!] : [existing, headers[i + 1]!]);
    }
    if (extra !== undefined) for (const [k, v] of extra) head.headers.set(k, v);
    chain.onResponse(ctx, head);
    // A response hook refused to let this answer out: answer its problem and drop the upstream response.
    if (head.withhold !== undefined) return this.withhold(head.withhold);
    ctx.status = head.status;
    if (chain.hasBodyTransforms && ctx.method !== 'HEAD' && head.status !== 204 && head.status !== 304) {
      return this.holdForTransforms(chain.bodyTransforms, head);
    }
    this.writeHead(head);
    return true;
  }

  private writeHead(head: ResponseHead): void {
    const flat: string[] = [];
    for (const [k, v] of head.headers) {
      if (Array.isArray(v)) for (const item of v) flat.push(k, item);
      else flat.push(k, v);
    }
    this.res.writeHead(head.status, flat);
  }

  /** Starts buffering when a transform wants this response; otherwise writes the head and streams as usual. */
  private holdForTransforms(all: readonly ResponseBodyTransform[], head: ResponseHead): boolean {
    const mediaType = responseMediaType(head);
    let transforms: ResponseBodyTransform[] | undefined;
    for (const t of all) if (t.wants(mediaType)) (transforms ??= []).push(t);
    if (transforms === undefined) {
      this.writeHead(head);
      return true;
    }
    const maxBytes = Math.min(...transforms.map((t) => t.maxBytes));
    const block = transforms.some((t) => t.onFailure === 'block');
    const encoding = head.headers.get('content-encoding');
    const declared = Number(head.headers.get('content-length') ?? 0);
    if ((encoding !== undefined && encoding !== 'identity') || declared > maxBytes)
      return this.untransformable(head, block, []);
    this.held = { head, transforms, maxBytes, block, chunks: [], size: 0 };
    return true;
  }

  /** Answers `p` instead of the upstream's response and stops reading that response; false tells undici to stop. */
  private withhold(p: Problem): false {
    this.hooks.sendProblem(this.ctx, this.res, p);
    this.finish();
    this.abortUpstream?.(new Error('response withheld'));
    return false;
  }

  /** A wanted response that cannot be transformed: 502 when a transform blocks, else sent unchanged. */
  private untransformable(head: ResponseHead, block: boolean, chunks: readonly Buffer[]): boolean {
    this.held = undefined;
    if (block) {
      return this.withhold(
        problem('response-unprocessable', { detail: 'The upstream response could not be checked and was withheld.' }),
      );
    }
    this.writeHead(head);
    for (const c of chunks) this.res.write(c);
    return true;
  }

  /**
   * The upstream accepted the WebSocket handshake (101): the client gets the 101 with the upstream's end-to-end
   * headers, and bytes are relayed both ways until either side closes. The exchange ends when both sockets closed.
   */
  onUpgrade(statusCode: number, rawHeaders: Buffer[] | string[] | null, upstream: Duplex): void {
    if (this.done) {
      upstream.destroy();
      return;
    }
    const ctx = this.ctx;
    const client = this.req.socket;
    this.group.answered(this.target);
    ctx.status = statusCode;
    // From here the client socket closing is the end of the relay, not an abort.
    this.res.off('close', onResponseClose);
    const headers = filterResponseHeaders((rawHeaders ?? []) as Buffer[]);
    headers.push('x-request-id', ctx.id);
    if (ctx.responseHeaderChanges !== undefined) mergeResponseHeaders(headers, ctx.responseHeaderChanges);
    let head = 'HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: websocket\r\n';
    for (let i = 0; i < headers.length; i += 2) head += headers[i] + ': ' + headers[i + 1] + '\r\n';
    this.res.detachSocket(client);
    client.write(head + '\r\n', 'latin1');
    const early = this.options.upgradeHead;
    if (early !== undefined && early.length > 0) upstream.write(early);
    relay(client, upstream, ctx.route.timeouts.websocketIdleMs, () => this.finish());
    this.hooks.tunnelOpened(client);
  }

  onData(chunk: Buffer): boolean {
    if (this.done) return false;
    const held = this.held;
    if (held !== undefined) {
      held.size += chunk.length;
      if (held.size > held.maxBytes) return this.untransformable(held.head, held.block, [...held.chunks, chunk]);
      held.chunks.push(chunk);
      return true;
    }
    const ok = this.res.write(chunk);
    if (!ok) this.res.once('drain', onResponseDrain);
    return ok;
  }

  onComplete(trailers?: Buffer[] | string[] | null): void {
    if (this.done) return;
    const held = this.held;
    if (held !== undefined) return this.completeTransformed(held);
    // Trailers (gRPC's grpc-status) reach a client on HTTP/2; HTTP/1.1 clients get the body without them.
    if (trailers && trailers.length > 0 && this.req.httpVersionMajor === 2) relayTrailers(this.res, trailers);
    this.res.end();
    this.finish();
  }

  private completeTransformed(held: HeldResponse): void {
    this.held = undefined;
    const original = held.chunks.length === 1 ? held.chunks[0]! : Buffer.concat(held.chunks, held.size);
    let body = original;
    try {
      for (const t of held.transforms) body = t.transform(this.ctx, body, held.head);
    } catch (err) {
      this.hooks.transformFailed(this.ctx, err);
      if (this.untransformable(held.head, held.block, [original])) {
        this.res.end();
        this.finish();
      }
      return;
    }
    held.head.headers.delete('transfer-encoding');
    held.head.headers.set('content-length', String(body.length));
    this.ctx.status = held.head.status;
    this.writeHead(held.head);
    this.res.end(body);
    this.finish();
  }

  onError(err: Error & { code?: string }): void {
    if (this.done) return;
    const res = this.res;
    // The client went away (a reset mid-upload fails the request body before the response closes): not the
    // upstream's failure, nor the target's.
    if (res.destroyed || this.req.socket.destroyed) return this.clientClosed();
    if (!res.headersSent) {
      const code = err.code ?? '';
      const group = this.group;
      // undici hands a request to its handler's onConnect when it starts writing it. Before that, any error but the
      // request's own faults is a connection that could not be made (refused, unreachable, not resolved, any TLS
      // handshake failure, connect timeout): the target is down for this request, which was never sent, so another
      // target may take it. After it, the target failed when the connection was reset or closed, or no answer head
      // came in time. (A client that went away ended this exchange already: it never counts against a target.)
      if (this.abortUpstream === undefined) {
        if (!REQUEST_FAULTS.has(code)) {
          group.failed(this.target);
          if (this.retry(group, 'connect')) return;
        }
      } else if (RESETS.has(code)) {
        group.failed(this.target);
        // Typically a keep-alive connection the upstream closed as the request went out: an idempotent request may
        // be sent again (RFC 9110 9.2.2).
        if (
          IDEMPOTENT.has(this.ctx.method) &&
          (this.body === null || Buffer.isBuffer(this.body)) &&
          this.retry(group, 'reset')
        )
          return;
      } else if (code === 'UND_ERR_HEADERS_TIMEOUT') {
        group.failed(this.target);
      }
      const p = problemForUpstreamError(err);
      this.ctx.errorKind = p.kind;
      this.ctx.upstreamError = err.code ?? err.name;
      // A failed upload leaves unread bytes on the client connection: close it rather than parse them.
      this.hooks.sendProblem(this.ctx, res, p, this.ctx.req?.complete === false);
    } else {
      // Mid-body failure: the status already went out, so the only honest signal is an incomplete response.
      this.ctx.upstreamError = err.code ?? err.name;
      res.destroy();
    }
    this.finish();
  }

  /**
   * Sends the request again; false when that kind of retry is used up or no target is left. After a failed connect
   * it goes to another target in rotation; after a reset, to another one when there is one, else to the same
   * target (undici takes another connection: the reset one is gone).
   */
  private retry(group: UpstreamGroup, kind: 'connect' | 'reset'): boolean {
    const state = this.retries ?? { tried: [], resets: 0 };
    let next: UpstreamTarget | undefined;
    if (kind === 'connect') {
      if (state.tried.length >= group.connectRetries) return false;
      state.tried.push(this.target);
      next = group.retryTarget(state.tried);
    } else {
      if (state.resets >= group.idempotentRetries) return false;
      state.resets++;
      next = group.retryTarget([...state.tried, this.target]) ?? this.target;
    }
    if (next === undefined) return false;
    // This exchange is over without being finished: the request goes on in the next one.
    this.done = true;
    this.target.outstanding--;
    this.res.off('close', onResponseClose);
    this.ctx.upstreamRetries = state.tried.length + state.resets;
    dispatchTo(this.ctx, this.req, this.res, this.options, this.hooks, this.body, this.group, next, state);
    return true;
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    this.target.outstanding--;
    this.res.off('close', onResponseClose);
    this.hooks.finished(this.ctx);
  }
}

export interface ForwardOptions {
  /** The route's policies: response hooks and body transforms run on the upstream's answer. */
  chain: PolicyChain;
  rules: StripRules;
  trustedPeer: boolean;
  hasBody: boolean;
  contentLength: number | undefined;
  /**
   * Set for a WebSocket handshake on a route that relays them: the bytes the client sent after the handshake's head
   * (usually none), sent to the upstream once it answered 101.
   */
  upgradeHead?: Buffer;
}

/** Forwards the request in `ctx` to a target of its upstream group and streams the answer to `res`. */
export function forward<C extends RequestContext>(
  ctx: C,
  req: IncomingMessage,
  res: ServerResponse,
  options: ForwardOptions,
  hooks: ForwardHooks<C>,
): void {
  const route = ctx.route;

  let body: Dispatcher.DispatchOptions['body'] = null;
  if (ctx.bodyRead) {
    body = ctx.body!;
  } else if (options.hasBody) {
    if (options.contentLength !== undefined) {
      if (options.contentLength > route.maxBodyBytes) {
        ctx.errorKind = 'payload-too-large';
        hooks.sendProblem(ctx, res, payloadTooLarge(route.maxBodyBytes), true);
        hooks.finished(ctx);
        return;
      }
      body = req;
    } else {
      const limited = new BodyLimit(route.maxBodyBytes);
      req.pipe(limited);
      body = limited;
    }
  }

  // Picked once the request is known to go out: a refused one neither advances the balancing nor names a target.
  // Policies see upstreams through the contract's `Upstream` interface; every one the server hands them (route
  // upstreams, the `upstreams` directory) is an UpstreamGroup.
  const group = ctx.upstream;
  if (!(group instanceof UpstreamGroup)) {
    ctx.errorKind = 'bad-gateway';
    hooks.sendProblem(ctx, res, problem('bad-gateway', { detail: 'This route has no upstream group.' }));
    hooks.finished(ctx);
    return;
  }
  dispatchTo(ctx, req, res, options, hooks, body, group, group.pick(), undefined);
}

/** Sends the request to `target`: its path and headers (Host, base path) are that target's. */
function dispatchTo<C extends RequestContext>(
  ctx: C,
  req: IncomingMessage,
  res: ServerResponse,
  options: ForwardOptions,
  hooks: ForwardHooks<C>,
  body: Dispatcher.DispatchOptions['body'],
  group: UpstreamGroup,
  target: UpstreamTarget,
  retries: RetryState | undefined,
): void {
  const route = ctx.route;
  ctx.target = target.url;

  let path = ctx.path;
  if (route.stripPrefix !== '' && path.startsWith(route.stripPrefix)) {
    path = path.slice(route.stripPrefix.length);
    if (path === '' || path.charCodeAt(0) !== 47) path = '/' + path;
  }
  path = target.basePath + path;
  const query = ctx.upstreamQuery;
  if (query !== '') path += '?' + query;

  const headers = buildUpstreamHeaders(
    ctx,
    req.rawHeaders,
    options.rules,
    { trustedPeer: options.trustedPeer },
    route.preserveHost ? ctx.host : target.host,
  );
  if (ctx.bodyRead) {
    // The body is sent from memory: its length is known even if the client sent it chunked.
    for (let i = 0; i < headers.length; i += 2) {
      if (headers[i]!.toLowerCase() === 'content-length') {
        headers.splice(i, 2);
        break;
      }
    }
    headers.push('content-length', String(ctx.body!.length));
  }

  const exchange = new ForwardExchange(ctx, req, res, group, target, hooks, options, body, retries);
  if (options.upgradeHead !== undefined) {
    // undici writes `connection: upgrade` and `upgrade: websocket` itself and hands over the socket on a 101.
    target.pool.dispatch(
      {
        path,
        method: 'GET',
        headers,
        upgrade: 'websocket',
        headersTimeout: route.timeouts.headersMs,
      } as Dispatcher.DispatchOptions,
      exchange,
    );
    return;
  }
  target.pool.dispatch(
    {
      path,
      method: ctx.method,
      headers,
      body,
      headersTimeout: route.timeouts.headersMs,
      bodyTimeout: route.timeouts.bodyIdleMs,
      // An idempotent request may be retried on a fresh connection by undici only if the pooled one was stale.
      idempotent: false,
    } as Dispatcher.DispatchOptions,
    exchange,
  );
}
