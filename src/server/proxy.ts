/**
 * The proxy listener's request path, after intake opened the request:
 *
 *   route (target, host, route) → client address → context → decide → forward (proxy/forward.ts) or answer
 *
 * Deciding and forwarding are separate steps, so the same decision is served to a front proxy by the decision
 * endpoint instead of being acted on here.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { Problem, problem, sendProblem } from '../pipeline/problem.js';
import { RequestContext } from '../pipeline/context.js';
import { isReply, type PolicyResult, type Reply } from '../pipeline/policy.js';
import { answerHead } from './answer-head.js';
import type { RoutedContext } from '../routing/router.js';
import { forward, type ForwardHooks, type ForwardOptions } from '../proxy/forward.js';
import { underscoredRefusal } from '../proxy/headers.js';
import { clientFromForwardedFor } from '../shared/forwarded.js';
import { webSocketHandshake } from './upgrade.js';
import type { ListenerHandle } from './listeners.js';
import type { OpenedRequest, RequestIntake } from './intake.js';

export interface ProxyRequestsOptions {
  readonly logger: Logger;
  readonly intake: RequestIntake;
  /** Answers /healthz and /readyz on listeners that serve them. */
  health(path: string, res: ServerResponse): void;
  /** A WebSocket relay started: its client socket is cut if a drain runs out of time. */
  tunnelOpened(client: Duplex): void;
}

export class ProxyRequests {
  private readonly intake: RequestIntake;
  private readonly hooks: ForwardHooks<RoutedContext>;

  constructor(private readonly options: ProxyRequestsOptions) {
    this.intake = options.intake;
    this.hooks = {
      sendProblem: (ctx, res, p, close) => this.answerProblem(ctx, res, p, close),
      finished: (ctx) => this.intake.finished(ctx),
      tunnelOpened: (client) => options.tunnelOpened(client),
      transformFailed: (ctx, err) =>
        options.logger.error({ req_id: ctx.id, route: ctx.route.name, err }, 'response body transform failed'),
    };
  }

  /** `upgradeHead`: for a request that asks for a protocol upgrade, the bytes that followed its head (server/upgrade.ts). */
  handle(
    listener: ListenerHandle,
    req: IncomingMessage,
    res: ServerResponse,
    opened: OpenedRequest,
    upgradeHead: Buffer | undefined,
  ): void {
    const { rt, framing, id, startedAt } = opened;
    if (framing.host === undefined && req.httpVersionMinor === 1) {
      return this.intake.refuse(
        listener,
        req,
        res,
        problem('bad-request', { detail: 'HTTP/1.1 requests need a Host header.' }),
        id,
        startedAt,
      );
    }
    const target = this.intake.target(rt, req.url ?? '', framing.host ?? '');
    if (target instanceof Problem) return this.intake.refuse(listener, req, res, target, id, startedAt);
    const { path, query, host, hostname } = target;
    if (rt.rules.underscored === 'refuse') {
      const twin = rt.rules.findTwin(req.rawHeaders);
      if (twin !== undefined) return this.intake.refuse(listener, req, res, underscoredRefusal(twin), id, startedAt);
    }

    const lc = listener.config;
    if (!listener.tls && lc.plain !== 'serve')
      return this.plainRefusal(listener, req, res, id, startedAt, hostname, query === '' ? path : path + '?' + query);
    if (lc.health && rt.config.server.health_paths && (path === '/healthz' || path === '/readyz')) {
      res.setHeader('x-request-id', id);
      return this.options.health(path, res);
    }
    const match = this.intake.match(rt, req.method!, target);
    if (match === undefined) return this.intake.refuse(listener, req, res, problem('not-found'), id, startedAt);

    // A WebSocket handshake on a route that relays them; any other upgrade request is an ordinary request.
    let relay: Buffer | undefined;
    if (upgradeHead !== undefined && match.route.websocket) {
      const handshake = webSocketHandshake(req);
      if (handshake.kind === 'invalid')
        return this.intake.refuse(
          listener,
          req,
          res,
          problem('bad-request', { detail: handshake.detail }),
          id,
          startedAt,
        );
      if (handshake.kind === 'websocket') relay = upgradeHead;
    }

    const remote = req.socket.remoteAddress ?? '';
    const trustedPeer = rt.trustedProxies !== undefined && rt.isTrustedProxy(remote);
    let protocol: 'http' | 'https' = listener.tls ? 'https' : 'http';
    let clientIp = remote;
    if (trustedPeer) {
      const xfp = framing.forwardedProto;
      if (xfp === 'https' || xfp === 'http') protocol = xfp;
      // Read from the raw list: Node's header object is built only when something asks for it.
      const forwarded = clientFromForwardedFor(joinedRawHeader(req.rawHeaders, 'x-forwarded-for'), rt.trustedProxies!);
      // A malformed hop or a chain of proxies only: the peer itself is the client address IP rules see.
      if (forwarded.kind === 'client') clientIp = forwarded.address;
    }

    const ctx = new RequestContext({
      id,
      startedAt,
      listener: lc.name,
      protocol,
      method: req.method!,
      path,
      query,
      host,
      hostname,
      clientIp,
      remoteAddress: remote,
      req,
      route: match.route,
      params: match.params,
    });
    this.intake.start(ctx, rt);
    const fw: ForwardOptions = {
      chain: match.route.chain,
      rules: rt.rules,
      trustedPeer,
      hasBody: framing.hasBody,
      contentLength: framing.contentLength,
    };
    if (relay !== undefined) fw.upgradeHead = relay;
    this.intake.decide(ctx, (decided, result) => this.act(decided, req, res, result, fw));
  }

  private act(
    ctx: RoutedContext,
    req: IncomingMessage,
    res: ServerResponse,
    result: PolicyResult,
    fw: ForwardOptions,
  ): void {
    if (res.destroyed) {
      ctx.clientClosed(false);
      return this.intake.finished(ctx);
    }
    if (result === undefined) {
      if (ctx.upstream === undefined) {
        this.answerProblem(ctx, res, problem('bad-gateway', { detail: 'This route has no upstream.' }));
        return this.intake.finished(ctx);
      }
      return forward(ctx, req, res, fw, this.hooks);
    }
    this.intake.writeSafely(ctx, res, () => {
      if (result instanceof Problem) this.answerProblem(ctx, res, result, result.status === 413);
      else if (isReply(result)) this.answerReply(ctx, res, result);
    });
    this.intake.finished(ctx);
  }

  private plainRefusal(
    listener: ListenerHandle,
    req: IncomingMessage,
    res: ServerResponse,
    id: string,
    startedAt: number,
    hostname: string,
    target: string,
  ): void {
    const lc = listener.config;
    if (lc.plain === 'redirect') {
      const port = lc.https_port ?? 443;
      const location = `https://${hostname.includes(':') ? `[${hostname}]` : hostname}${port === 443 ? '' : `:${port}`}${target}`;
      res.writeHead(308, { location, 'x-request-id': id, 'content-length': 0 });
      res.end();
      return;
    }
    this.intake.refuse(
      listener,
      req,
      res,
      problem('https-required', { detail: 'This listener only redirects or refuses: use HTTPS.' }),
      id,
      startedAt,
    );
  }

  private answerProblem(ctx: RoutedContext, res: ServerResponse, p: Problem, close = false): void {
    ctx.errorKind = p.kind;
    const extra = ctx.responseHeaderChanges;
    if (extra === undefined && !ctx.route.chain.hasResponseHooks) {
      ctx.status = p.status;
      return sendProblem(res, p, ctx.id, close);
    }
    const head = answerHead(ctx, p.status, p.headers);
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of head.headers) headers[k] = v;
    ctx.status = head.status;
    sendProblem(
      res,
      new Problem(
        { kind: p.kind, status: head.status, title: p.title },
        { ...(p.detail ? { detail: p.detail } : {}), ...(p.extensions ? { extensions: p.extensions } : {}), headers },
      ),
      ctx.id,
      close,
    );
  }

  private answerReply(ctx: RoutedContext, res: ServerResponse, reply: Reply): void {
    const head = answerHead(ctx, reply.status, reply.headers);
    if (head.withhold !== undefined && !res.headersSent) return this.answerProblem(ctx, res, head.withhold);
    ctx.status = head.status;
    if (res.headersSent) return void res.destroy();
    res.statusCode = head.status;
    for (const [k, v] of head.headers) res.setHeader(k, v);
    res.setHeader('x-request-id', ctx.id);
    res.end(reply.body);
  }
}

/** The values of a header that may be repeated, joined with commas (as Node's header object would), or undefined. */
function joinedRawHeader(raw: readonly string[], lower: string): string | undefined {
  let out: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length !== lower.length || name.toLowerCase() !== lower) continue;
    out = out === undefined ? raw[i + 1]! : out + ', ' + raw[i + 1]!;
  }
  return out;
}
