/**
 * The decision endpoint of a decision listener. It turns a front proxy's forward-auth request back into the original
 * request (method, target, host, client address, headers), normalises and routes it exactly like a proxied request,
 * runs the route's policy chain through the gateway's own `decide`, and answers allow or deny instead of forwarding.
 * Completion goes through the gateway's `finished`, so audit, metrics and access logs see decisions like proxied
 * requests (with `ctx.frontProxy` set).
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { Problem, problem, problemBody } from '../pipeline/problem.js';
import { RequestContext, readRequestBody } from '../pipeline/context.js';
import { isReply, type PolicyResult } from '../pipeline/policy.js';
import { parseTrustedProxies } from '../server/runtime.js';
import { HOP_BY_HOP, underscoredRefusal } from '../proxy/headers.js';
import type { AddressList } from '../shared/address-list.js';
import type { ListenerHandle } from '../server/listeners.js';
import type { RoutedContext } from '../routing/router.js';
import type { OpenedRequest, RequestIntake } from '../server/intake.js';
import type { DecisionListenerConfig, FrontProxyConvention } from '../config/decision-listener.js';
import {
  META_HEADERS,
  VARY_HEADERS,
  envoyOriginal,
  forwardedOriginal,
  nginxOriginal,
  type ConventionResult,
} from './conventions.js';
import {
  PROBLEM_HEADER,
  STATUS_HEADER,
  asciiJson,
  writeAllow,
  writeProblem,
  writeReply,
  type AnswerSettings,
} from './answer.js';
import { DECISION_NEEDS_BODY, DECISION_REPLY_NOT_EXPRESSIBLE, DECISION_UNTRUSTED_PEER } from './problems.js';

/** What the endpoint needs from the server: the logger and the intake every entry point shares. */
export interface DecisionHost {
  readonly logger: Logger;
  readonly intake: RequestIntake;
}

interface ConventionPlan {
  readonly name: FrontProxyConvention;
  readonly settings: AnswerSettings;
  /** Headers removed from what policies see (meta headers, hop-by-hop, framing of a body that is not the original's). */
  readonly drop: ReadonlySet<string>;
  readonly bodyForwarded: boolean;
}

interface CompiledDecision {
  readonly trusted: AddressList;
  readonly plans: ReadonlyMap<string, ConventionPlan>;
  readonly envoy: ConventionPlan | undefined;
  readonly envoyPrefix: string;
  readonly clientAddressHeader: string;
}

const needsBody = (): Promise<Problem> =>
  Promise.resolve(
    problem(DECISION_NEEDS_BODY, {
      detail: 'This route decides on the request body, which the front proxy does not send with decision requests.',
    }),
  );

export class DecisionEndpoint {
  private readonly compiled = new WeakMap<DecisionListenerConfig, CompiledDecision>();

  constructor(private readonly host: DecisionHost) {}

  /** Compiles (once per config object) a listener's decision block; throws ConfigError on invalid addresses. */
  compile(listenerName: string, cfg: DecisionListenerConfig): CompiledDecision {
    let c = this.compiled.get(cfg);
    if (c !== undefined) return c;
    // The schema asks for at least one front proxy, so the list is never empty; bad entries throw a ConfigError.
    const trusted = parseTrustedProxies(cfg.front_proxies, `listeners.${listenerName}.decision.front_proxies`)!;
    const credentialVary = cfg.cache.vary.map((h) => h.toLowerCase());
    const plans = new Map<string, ConventionPlan>();
    let envoy: ConventionPlan | undefined;
    for (const name of new Set(cfg.conventions)) {
      const bodyForwarded = cfg.forwarded_body.includes(name);
      const drop = new Set<string>([...HOP_BY_HOP, ...META_HEADERS[name]]);
      if (!bodyForwarded) drop.add('content-length');
      const plan: ConventionPlan = {
        name,
        bodyForwarded,
        drop,
        settings: {
          allowStatus: cfg.allow_status,
          allowMaxAge: cfg.cache.allow_max_age_s,
          denyMaxAge: cfg.cache.deny_max_age_s,
          vary: [...new Set([...VARY_HEADERS[name], ...credentialVary])].join(', '),
          browserRedirect: cfg.browser_redirect,
          problemInHeader: name === 'nginx',
        },
      };
      if (name === 'envoy') envoy = plan;
      else plans.set('/' + name, plan);
    }
    c = {
      trusted,
      plans,
      envoy,
      envoyPrefix: cfg.envoy_path_prefix,
      clientAddressHeader: cfg.client_address_header.toLowerCase(),
    };
    this.compiled.set(cfg, c);
    return c;
  }

  handle(
    listener: ListenerHandle,
    cfg: DecisionListenerConfig,
    req: IncomingMessage,
    res: ServerResponse,
    opened: OpenedRequest,
  ): void {
    const { rt, id, startedAt } = opened;
    const listenerName = listener.config.name;
    let c: CompiledDecision;
    try {
      c = this.compile(listenerName, cfg);
    } catch (err) {
      this.host.logger.error({ listener: listenerName, err }, 'decision listener config invalid');
      return this.refuse(listener, req, res, problem('internal-error'), id, startedAt, false);
    }
    const remote = req.socket.remoteAddress ?? '';
    if (!c.trusted.has(remote)) {
      return this.refuse(
        listener,
        req,
        res,
        problem(DECISION_UNTRUSTED_PEER, {
          detail: 'Decision requests are answered only for configured front proxies.',
        }),
        id,
        startedAt,
        false,
      );
    }

    const url = req.url ?? '';
    const q = url.indexOf('?');
    let plan = c.plans.get(q === -1 ? url : url.slice(0, q));
    let original: ConventionResult;
    if (plan !== undefined) {
      original = plan.name === 'nginx' ? nginxOriginal(req, c.clientAddressHeader) : forwardedOriginal(req, c.trusted);
    } else if (c.envoy !== undefined && url.startsWith(c.envoyPrefix) && url.charCodeAt(c.envoyPrefix.length) === 47) {
      plan = c.envoy;
      original = envoyOriginal(req, url, c.envoyPrefix.length, c.trusted);
    } else {
      return this.refuse(
        listener,
        req,
        res,
        problem('not-found', {
          detail: 'Unknown decision path: use /nginx, /traefik, /caddy, /kong or the Envoy path prefix.',
        }),
        id,
        startedAt,
        false,
      );
    }
    const nginx = plan.settings.problemInHeader;
    if ('error' in original)
      return this.refuse(listener, req, res, problem('bad-request', { detail: original.error }), id, startedAt, nginx);

    const intake = this.host.intake;
    const target = intake.target(rt, original.target, original.host);
    if (target instanceof Problem) return this.refuse(listener, req, res, target, id, startedAt, nginx);
    // The front proxy forwards the client's headers itself: one that could stand in for an injected header once
    // `_` is read as `-` cannot be dropped from here, so it is refused unless allowed.
    if (rt.rules.underscored !== 'allow') {
      const twin = rt.rules.findTwin(req.rawHeaders);
      if (twin !== undefined) return this.refuse(listener, req, res, underscoredRefusal(twin), id, startedAt, nginx);
    }
    const match = intake.match(rt, original.method, target);
    if (match === undefined) return this.refuse(listener, req, res, problem('not-found'), id, startedAt, nginx);

    const headers: IncomingHttpHeaders = {};
    const source = req.headers;
    const drop = plan.drop;
    for (const name in source) if (!drop.has(name)) headers[name] = source[name];
    headers.host = original.host;

    const ctx = new RequestContext({
      id,
      startedAt,
      listener: listenerName,
      protocol: original.protocol,
      method: original.method,
      path: target.path,
      query: target.query,
      host: target.host,
      hostname: target.hostname,
      clientIp: original.clientIp,
      remoteAddress: remote,
      headers,
      req: undefined,
      route: match.route,
      params: match.params,
      bodyReader: plan.bodyForwarded ? (limit) => readDecisionBody(req, limit, plan.name === 'envoy') : needsBody,
    });
    ctx.frontProxy = plan.name;
    intake.start(ctx, rt);
    const settings = plan.settings;
    intake.decide(ctx, (decided, result) => this.answer(decided, res, result, settings));
  }

  private answer(ctx: RoutedContext, res: ServerResponse, result: PolicyResult, settings: AnswerSettings): void {
    const intake = this.host.intake;
    if (res.destroyed) ctx.clientClosed(false);
    else {
      intake.writeSafely(ctx, res, () => {
        if (result === undefined) {
          writeAllow(ctx, res, settings);
        } else if (result instanceof Problem) {
          writeProblem(ctx, res, result, settings);
        } else if (isReply(result) && result.status >= 300) {
          writeReply(ctx, res, result, settings);
        } else {
          // A 2xx made by the gateway would read as "allow" to the front proxy, which would then forward the request.
          writeProblem(
            ctx,
            res,
            problem(DECISION_REPLY_NOT_EXPRESSIBLE, {
              detail: 'This route answers requests itself; it cannot be served through a front proxy.',
            }),
            settings,
          );
        }
      });
    }
    intake.finished(ctx);
  }

  private refuse(
    listener: ListenerHandle,
    req: IncomingMessage,
    res: ServerResponse,
    p: Problem,
    id: string,
    startedAt: number,
    problemInHeader: boolean,
  ): void {
    res.setHeader(STATUS_HEADER, String(p.status));
    if (problemInHeader) res.setHeader(PROBLEM_HEADER, asciiJson(problemBody(p, id)));
    this.host.intake.refuse(listener, req, res, p, id, startedAt);
  }
}

/**
 * Reads the decision request's body as the original body (conventions whose proxy forwards it). Envoy marks a
 * forwarded body with `x-envoy-auth-partial-body` (with_request_body + allow_partial_message): without the mark
 * there is no proof the body was sent at all, so an empty body is not taken for the original.
 */
function readDecisionBody(req: IncomingMessage, limit: number, envoy: boolean): Promise<Buffer | Problem> {
  if (envoy) {
    const partial = req.headers['x-envoy-auth-partial-body'];
    if (partial === 'true') {
      return Promise.resolve(
        problem(DECISION_NEEDS_BODY, {
          detail: 'The front proxy sent only part of the request body; raise its body buffer limit.',
        }),
      );
    }
    if (partial !== 'false') {
      return Promise.resolve(
        problem(DECISION_NEEDS_BODY, {
          detail:
            'The front proxy did not mark the body as forwarded (Envoy: with_request_body with allow_partial_message).',
        }),
      );
    }
  }
  return readRequestBody(req, limit);
}
