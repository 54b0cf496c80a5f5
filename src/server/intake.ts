/**
 * Request intake: what every entry point does with a request, written once for the proxy listener (server/proxy.ts)
 * and the decision endpoint (decision/endpoint.ts):
 *
 *   open (framing, request id) → route (target, host, route) → start (context in flight) → decide (policy chain)
 *   → the entry point answers → finished (completion hooks, events, access log)
 *
 * and every refusal on the way (framing, path, host, no route, what Node's parser refused) is answered as
 * problem+json with the request id and put on record (metrics and audit through the event bus, access log).
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { problem, rawProblemResponse, sendProblem, type Problem } from '../pipeline/problem.js';
import type { PolicyResult } from '../pipeline/policy.js';
import type { EventBus } from '../pipeline/events.js';
import type { RouteMatch, RoutedContext } from '../routing/router.js';
import { inspectFraming, type FramingResult } from './framing.js';
import { http2Framing, type GatewayHttp2Request } from './http2.js';
import { parseRequestTarget, targetProblem } from './path.js';
import type { ListenerHandle } from './listeners.js';
import type { Runtime } from './runtime.js';

const REQUEST_ID = /^[A-Za-z0-9._:@-]{1,128}$/;

/** One access-log line (field names are part of the log format operators parse). */
interface AccessLine {
  req_id: string;
  route: string;
  method: string;
  path: string;
  status: number;
  ms: number;
  client: string;
  front_proxy?: string;
  problem?: string;
  upstream_error?: unknown;
  /** Other targets tried after failed connects (upstreams.*.connect_retries). */
  upstream_retries?: unknown;
  aborted?: true;
}

/** A request whose head passed the framing checks: the runtime it runs on, its id and arrival time. */
export interface OpenedRequest {
  readonly rt: Runtime;
  readonly framing: FramingResult;
  readonly id: string;
  readonly startedAt: number;
}

/** The normalised target of a request. */
export interface RequestTarget {
  readonly path: string;
  readonly query: string;
  readonly host: string;
  readonly hostname: string;
}

export interface IntakeOptions {
  readonly logger: Logger;
  /**
   * Writes the access log (one line per request). Its lines hold only values the gateway sets (ids, route, status,
   * timings, client address), never headers or bodies, so it skips the root logger's redaction rules: matching
   * wildcard redact paths on every line cost several times the serialisation of the line itself.
   */
  readonly accessLog: Logger;
  readonly events: EventBus;
  /** The runtime new requests start on; undefined until the first configuration is compiled. */
  current(): Runtime | undefined;
  /** True once a drain began: answers close their connection. */
  draining(): boolean;
}

function clientErrorProblem(code: string | undefined): Problem {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return problem('headers-too-large');
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return problem('request-timeout');
    case 'HPE_INVALID_TRANSFER_ENCODING':
    case 'HPE_UNEXPECTED_CONTENT_LENGTH':
    case 'HPE_INVALID_CONTENT_LENGTH':
    case 'HPE_INVALID_HEADER_TOKEN':
    case 'HPE_LF_EXPECTED':
    case 'HPE_CR_EXPECTED':
    case 'HPE_STRICT':
      return problem('ambiguous-request', { detail: 'The request framing is invalid or ambiguous.' });
    default:
      return problem('bad-request', { detail: 'The request could not be parsed.' });
  }
}

/** The request method at the start of the bytes Node could not parse, when it reads as one; else ''. */
function methodOf(raw: Buffer | undefined): string {
  if (raw === undefined) return '';
  const m = /^([A-Z]{1,16}) /.exec(raw.toString('latin1', 0, 17));
  return m === null ? '' : m[1]!;
}

export class RequestIntake {
  /** Requests in flight across every runtime. */
  private inflight = 0;
  /** Requests taken in since start (per-worker request counts when the gateway runs several workers). */
  opened = 0;
  private drained: (() => void) | undefined;

  constructor(private readonly options: IntakeOptions) {}

  get inFlight(): number {
    return this.inflight;
  }

  /**
   * First steps of every request: the gateway is serving, the head's framing is unambiguous, a request id (the
   * client's when it is a valid one). Undefined when the request was answered already.
   */
  open(
    listener: ListenerHandle,
    req: IncomingMessage,
    res: ServerResponse,
    upgradeHead: Buffer | undefined,
  ): OpenedRequest | undefined {
    const rt = this.options.current();
    if (rt === undefined) {
      sendProblem(res, problem('service-unavailable', { headers: { 'retry-after': 1 } }), undefined, true);
      return undefined;
    }
    this.opened++;
    const startedAt = performance.now();
    const framing = inspectFraming(req.rawHeaders, req.httpVersionMinor);
    if (req.httpVersionMajor === 2) http2Framing(req as unknown as GatewayHttp2Request, framing);
    const incomingId = framing.requestId;
    const id = incomingId !== undefined && REQUEST_ID.test(incomingId) ? incomingId : randomUUID();
    if (this.options.draining()) res.shouldKeepAlive = false;
    if (framing.problem) {
      this.refuse(listener, req, res, framing.problem, id, startedAt);
      return undefined;
    }
    // The body of a request that asks for an upgrade is not read as HTTP any more.
    if (upgradeHead !== undefined && framing.hasBody) {
      this.refuse(
        listener,
        req,
        res,
        problem('bad-request', { detail: 'A request that asks for a protocol upgrade cannot carry a body.' }),
        id,
        startedAt,
      );
      return undefined;
    }
    return { rt, framing, id, startedAt };
  }

  /** The request's target, normalised, or the 400 that refuses it (path, host, form of the target). */
  target(rt: Runtime, rawTarget: string, hostHeader: string): RequestTarget | Problem {
    const target = parseRequestTarget(rawTarget, hostHeader, rt.pathRules);
    return target.ok ? target : targetProblem(target);
  }

  /** The route for a normalised target, or undefined (404). */
  match(rt: Runtime, method: string, target: RequestTarget): RouteMatch | undefined {
    return rt.router.find(method, target.path, target.hostname);
  }

  /** Puts a context in flight on the runtime it started on; `finished` takes it out. */
  start(ctx: RoutedContext, rt: Runtime): void {
    rt.inflight++;
    this.inflight++;
    ctx.runtime = rt;
  }

  /**
   * Runs the route's policies and hands the result to `then`: synchronously when no policy went asynchronous. A
   * policy that throws was already answered 500 by the chain; anything else that fails here is, too.
   */
  decide(ctx: RoutedContext, then: (ctx: RoutedContext, result: PolicyResult) => void): void {
    let decided: PolicyResult | Promise<PolicyResult>;
    try {
      decided = ctx.route.chain.run(ctx);
    } catch (err) {
      this.options.logger.error({ req_id: ctx.id, err }, 'policy chain failed');
      decided = problem('internal-error');
    }
    if (decided instanceof Promise) {
      decided.then(
        (result) => then(ctx, result),
        (err: unknown) => {
          this.options.logger.error({ req_id: ctx.id, err }, 'policy chain failed');
          then(ctx, problem('internal-error'));
        },
      );
    } else {
      then(ctx, decided);
    }
  }

  /**
   * Writes an answer, turning a failure to write it (Node refusing a header value a policy computed) into a 500
   * problem instead of a crashed process.
   */
  writeSafely(ctx: RoutedContext, res: ServerResponse, write: () => void): void {
    try {
      write();
    } catch (err) {
      this.options.logger.error({ req_id: ctx.id, err }, 'answer could not be written');
      ctx.errorKind = 'internal-error';
      ctx.status = 500;
      if (res.headersSent) res.destroy();
      else {
        for (const name of res.getHeaderNames()) res.removeHeader(name);
        sendProblem(res, problem('internal-error'), ctx.id);
      }
    }
  }

  /** The exchange ended (answered, failed or aborted): completion hooks, events, access log, out of flight. */
  finished(ctx: RoutedContext): void {
    const rt = ctx.runtime!;
    const chain = ctx.route.chain;
    if (chain.hasCompleteHooks) chain.onComplete(ctx);
    const events = this.options.events;
    if (events.observesRequests) events.requestComplete(ctx);
    if (rt.accessLog) {
      const line: AccessLine = {
        req_id: ctx.id,
        route: ctx.route.name,
        method: ctx.method,
        path: ctx.path,
        status: ctx.status,
        ms: Math.round((performance.now() - ctx.startedAt) * 1000) / 1000,
        client: ctx.clientIp,
      };
      // Optional fields are added only when present (and in this order), without a temporary object per field.
      if (ctx.frontProxy) line.front_proxy = ctx.frontProxy;
      if (ctx.errorKind) line.problem = ctx.errorKind;
      if (ctx.upstreamError !== undefined) line.upstream_error = ctx.upstreamError;
      if (ctx.upstreamRetries > 0) line.upstream_retries = ctx.upstreamRetries;
      if (ctx.aborted) line.aborted = true;
      this.options.accessLog.info(line, 'request');
    }
    rt.release();
    if (--this.inflight === 0 && this.drained) this.drained();
  }

  /** Resolves once no request is in flight, or after `deadlineMs`. */
  whenIdle(deadlineMs: number): Promise<void> {
    if (this.inflight === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, deadlineMs);
      this.drained = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  /** Answers a request refused before a context existed, and puts the refusal on record. */
  refuse(
    listener: ListenerHandle,
    req: IncomingMessage,
    res: ServerResponse,
    p: Problem,
    id: string,
    startedAt: number,
  ): void {
    // After a framing error (or a refused expectation, whose body may follow) the rest of the connection cannot be
    // trusted: close it.
    sendProblem(res, p, id, p.kind === 'ambiguous-request' || p.kind === 'expectation-failed');
    this.record(listener, req.method ?? '', req.socket.remoteAddress ?? '', p, id, startedAt);
  }

  /** An `Expect` other than `100-continue` (RFC 9110 10.1.1): 417. */
  expectationFailed(listener: ListenerHandle, req: IncomingMessage, res: ServerResponse): void {
    this.refuse(
      listener,
      req,
      res,
      problem('expectation-failed', { detail: 'Only "Expect: 100-continue" is supported.' }),
      randomUUID(),
      performance.now(),
    );
  }

  /**
   * Node could not parse a request (framing, header size, request timeout): it is answered with a raw problem and
   * recorded like every refusal. Also when the head was fine and the body's framing is broken: no response has
   * started yet, so the client still gets a 400; the request in flight on the socket is then recorded by its own
   * completion.
   */
  clientError(listener: ListenerHandle, err: NodeJS.ErrnoException & { rawPacket?: Buffer }, socket: Socket): void {
    const current = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
    if (!socket.writable || current?.headersSent) {
      socket.destroy();
      return;
    }
    const p = clientErrorProblem(err.code);
    const id = randomUUID();
    socket.end(rawProblemResponse(p, id));
    if (current) return;
    this.record(listener, methodOf(err.rawPacket), socket.remoteAddress ?? '', p, id, performance.now());
  }

  /** Every refusal is on record: the refused-request event (metrics, audit) and the access log. */
  private record(
    listener: ListenerHandle,
    method: string,
    clientIp: string,
    p: Problem,
    id: string,
    startedAt: number,
  ): void {
    this.options.events.requestRefused({
      requestId: id,
      listener: listener.config.name,
      method,
      clientIp,
      status: p.status,
      problem: p.kind,
      startedAt,
    });
    if (this.options.current()?.accessLog) {
      this.options.accessLog.info(
        {
          req_id: id,
          status: p.status,
          problem: p.kind,
          method: method === '' ? undefined : method,
          client: clientIp,
          listener: listener.config.name,
        },
        'refused',
      );
    }
  }
}
