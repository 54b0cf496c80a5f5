/**
 * The Gateway owns listeners, the current Runtime and the request path:
 *
 *   edge checks (framing, path) → route match → policy chain (decide) → forward or answer → completion hooks
 *
 * Deciding and forwarding are separate calls (`decide` / `forward`), so the same decision can be served to a
 * front proxy instead of being acted on here.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { GATEWAY_REQUEST_OPTIONS, takeRequest } from './incoming.js';
import { responseForUpgrade, webSocketHandshake } from './upgrade.js';
import https from 'node:https';
import { randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { performance } from 'node:perf_hooks';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { Problem, problem, sendProblem, rawProblemResponse } from '../errors/problem.js';
import { RequestContext } from '../pipeline/context.js';
import { isReply, type PolicyResult, type Reply } from '../pipeline/policy.js';
import { forward, type ForwardHooks, type ForwardOptions } from '../proxy/forward.js';
import { underscoredRefusal } from '../proxy/headers.js';
import { compileRuntime, Runtime, type CompileEnv } from '../config/runtime.js';
import { ConfigValidator, loadConfigFile, ConfigError } from '../config/load.js';
import type { ListenerConfig, LoadedConfig } from '../config/types.js';
import { inspectFraming } from './framing.js';
import { clientFromForwardedFor } from '../shared/forwarded.js';
import { parseRequestTarget, targetProblem } from './path.js';
import { CertificateWatcher, tlsServerOptions } from './tls.js';
import { ListenerClientAuth } from '../identity/listener-client-auth.js';
import { startListenerSvidSource } from '../identity/workload-api/x509-source.js';
import { ConfigWatcher } from '../config/watch.js';
import { POLICIES, MODULES } from '../extensions.js';
import { Services } from '../pipeline/services.js';
import type { ModuleInstance } from '../modules.js';
import { resolveSecret } from '../config/secrets.js';
import { DecisionEndpoint } from '../decision/endpoint.js';
import { VaultSecrets } from '../secrets/vault-secrets.js';
import { answerHead } from '../pipeline/answer-head.js';

const REQUEST_ID = /^[A-Za-z0-9._:@\-]{1,128}$/;

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

export interface ListenerHandle {
  readonly config: ListenerConfig;
  readonly server: http.Server | https.Server;
  readonly tls: boolean;
  certificates: CertificateWatcher | undefined;
  /** Bound port (useful with port 0). */
  port: number;
}

export interface GatewayOptions {
  loaded: LoadedConfig;
  logger: Logger;
  dataDir: string;
  /** URL of the embedded echo service; started on demand. */
  builtinEchoUrl?: () => Promise<string>;
  /** Watch the config file and reload on change (default true when the config came from a file). */
  watchConfig?: boolean;
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

export class Gateway {
  readonly logger: Logger;
  /**
   * Writes the access log (one line per request). Its lines hold only values the gateway sets (ids, route, status,
   * timings, client address), never headers or bodies, so it skips the root logger's redaction rules: matching
   * wildcard redact paths on every line cost several times the serialisation of the line itself.
   */
  private readonly accessLog: Logger;
  readonly listeners: ListenerHandle[] = [];
  admin: { server: http.Server; port: number } | undefined;
  private runtime!: Runtime;
  private readonly validator = new ConfigValidator(MODULES, POLICIES);
  private readonly env: CompileEnv;
  /** Shared by every runtime: modules' services and the event bus. */
  readonly services: Services;
  private readonly modules: ModuleInstance[] = [];
  /** Names of the started modules, index for index: readiness checks are reported under them. */
  private readonly moduleNames: string[] = [];
  /** Readiness checks failing at the last probe (their cause is logged once when they start failing). */
  private readonly failingChecks = new Set<string>();
  /** Base URL clients reach the gateway at (first listener): for provider callbacks and hosted pages. */
  publicBaseUrl = '';
  private configWatcher: ConfigWatcher | undefined;
  private draining = false;
  /** False until the first runtime is compiled: listeners answer 503 until then. */
  private ready = false;
  private readonly hooks: ForwardHooks;
  /** In-flight requests across all runtimes. */
  private inflight = 0;
  private drained: (() => void) | undefined;
  /** Client sockets of relayed WebSocket connections, closed when a drain runs out of time (the relay then closes its upstream side). */
  private readonly tunnels = new Set<Duplex>();
  private reloading: Promise<boolean> | undefined;
  /** Answers decision listeners (front-proxy forward-auth) through the same decide/finished path. */
  private readonly decisions: DecisionEndpoint;
  /** Values of `{vault: ...}` secret references, read before each config is compiled and refreshed in the background. */
  readonly vault: VaultSecrets;

  constructor(private readonly options: GatewayOptions) {
    this.logger = options.logger;
    this.accessLog = options.logger.child({}, { redact: [] });
    this.services = new Services(options.logger, options.dataDir);
    this.vault = new VaultSecrets(options.logger, this.services.events);
    // A rotated secret takes effect by compiling the configuration again (policies and modules resolve it anew).
    this.vault.onRotated = () => void this.reload('secret rotated', { inMemory: true });
    this.env = {
      logger: options.logger,
      dataDir: options.dataDir,
      policies: POLICIES,
      services: this.services,
      modules: this.modules,
      builtinEchoUrl: options.builtinEchoUrl ?? (() => Promise.reject(new ConfigError(['builtin:echo is only available to `kycgate start`']))),
    };
    this.hooks = {
      sendProblem: (ctx, res, p, close) => this.answerProblem(ctx, res, p, close),
      finished: (ctx) => this.finished(ctx),
      tunnelOpened: (client) => {
        this.tunnels.add(client);
        client.once('close', () => this.tunnels.delete(client));
      },
    };
    this.decisions = new DecisionEndpoint({
      logger: this.logger,
      decide: (ctx) => this.decide(ctx),
      begin: (rt) => {
        rt.inflight++;
        this.inflight++;
      },
      finished: (ctx) => this.finished(ctx),
      refuse: (listener, req, res, p, id, startedAt) => this.early(listener, req, res, p, id, startedAt),
    });
  }

  get current(): Runtime {
    return this.runtime;
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /** Binds every listener, starts modules, compiles the config and binds the admin listener. */
  async start(): Promise<void> {
    try {
      await this.startParts();
    } catch (err) {
      // Nothing half-started may outlive a failed start: a caller that retries must find the ports free.
      for (const l of this.listeners) {
        l.certificates?.close();
        l.server.closeAllConnections();
        l.server.close();
      }
      this.admin?.server.close();
      this.configWatcher?.close();
      for (const m of this.modules) await m.close?.().catch(() => undefined);
      await this.vault.close();
      throw err;
    }
  }

  private async startParts(): Promise<void> {
    const { loaded } = this.options;
    await this.vault.prepare(loaded.config, loaded.baseDir);
    // Listeners first (so port 0 resolves to a real base URL for modules), serving only once the runtime exists.
    for (const lc of loaded.config.listeners) await this.listen(lc, loaded.baseDir);
    // Decision listeners serve no routes of their own: callbacks and hosted pages need a serving listener.
    this.publicBaseUrl = this.urlOf(this.listeners.find((l) => l.config.decision === undefined) ?? this.listeners[0]!);
    for (const m of MODULES) {
      this.moduleNames.push(m.name);
      this.modules.push(
        await m.start(loaded.config, {
          loaded,
          services: this.services,
          resolveSecret: (ref) => resolveSecret(ref, loaded.baseDir, process.env, this.vault),
          publicBaseUrl: this.publicBaseUrl,
          listenerCertificates: () =>
            this.listeners
              .filter((l) => l.tls)
              .map((l) => ({ listener: l.config.name, notAfter: l.certificates?.notAfter, served: l.certificates?.served, rotatedAt: l.certificates?.rotatedAt, rotations: l.certificates?.rotations ?? 0 })),
          upstreamTargets: () => (this.ready ? this.runtime.upstreamTargets() : []),
        }),
      );
    }
    this.runtime = await compileRuntime(loaded, this.env);
    this.vault.retain(loaded.config);
    this.ready = true;
    if (loaded.config.admin.enabled) await this.listenAdmin();
    if (loaded.file && this.options.watchConfig !== false) {
      this.configWatcher = new ConfigWatcher(loaded.file, () => void this.reload('file change'), this.logger);
    }
  }

  urlOf(listener: ListenerHandle): string {
    const host = listener.config.address.includes(':') ? `[${listener.config.address}]` : listener.config.address;
    return `${listener.tls ? 'https' : 'http'}://${host}:${listener.port}`;
  }

  private serverOptions(): http.ServerOptions {
    const s = this.options.loaded.config.server;
    return {
      maxHeaderSize: s.max_header_bytes,
      headersTimeout: s.headers_timeout_ms,
      requestTimeout: s.request_timeout_ms,
      keepAliveTimeout: s.keep_alive_timeout_ms,
      // Node checks the two timeouts above on this interval (30 s by default, far too lax for slow clients).
      connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(s.headers_timeout_ms / 2))),
      joinDuplicateHeaders: false,
      insecureHTTPParser: false,
      noDelay: true,
      // No header object per request that the forwarding path never reads, and Host checked in the request path
      // instead of by Node, so its refusal is problem+json like every other (see incoming.ts).
      ...GATEWAY_REQUEST_OPTIONS,
    };
  }

  private async listen(lc: ListenerConfig, baseDir: string): Promise<void> {
    if (lc.decision) this.decisions.compile(lc.name, lc.decision);
    let server: http.Server | https.Server;
    let certificates: CertificateWatcher | undefined;
    const handle = {} as ListenerHandle;
    const onRequest = (req: IncomingMessage, res: ServerResponse) => this.handle(handle, req, res);
    if (lc.tls) {
      const svids = lc.tls.workload_api ? await startListenerSvidSource(lc.tls.workload_api, this.logger) : undefined;
      let clientAuth: ListenerClientAuth | undefined;
      let tlsOptions: ReturnType<typeof tlsServerOptions>;
      try {
        clientAuth = ListenerClientAuth.create(lc.tls, baseDir, this.logger, svids);
        tlsOptions = tlsServerOptions(lc.tls, baseDir, clientAuth, svids);
      } catch (err) {
        clientAuth?.close();
        svids?.close();
        throw err;
      }
      const { notAfter, served, ...serverTls } = tlsOptions;
      server = https.createServer({ ...this.serverOptions(), ...serverTls }, onRequest);
      certificates = new CertificateWatcher(server as https.Server, lc.tls, baseDir, this.logger, clientAuth, svids);
      certificates.notAfter = notAfter;
      certificates.served = served;
      certificates.onExpiring = (cert, secondsLeft) =>
        this.services.events.emit({
          type: 'tls.certificate_expiring',
          outcome: secondsLeft > 0 ? 'rotation_stalled' : 'expired',
          data: { listener: lc.name, serial: cert.serial, spiffe_id: cert.spiffeId, not_after: cert.notAfter.toISOString(), seconds_left: secondsLeft, source: cert.source },
        });
      certificates.startExpiryChecks();
      certificates.onClientRefused = (reason, client) =>
        this.services.events.emit({ type: 'auth.failure', outcome: reason, data: { listener: lc.name, method: 'mtls', stage: 'handshake', client } });
      // A failed handshake is the client's problem, not ours: do not log it as an error.
      server.on('tlsClientError', () => undefined);
    } else {
      server = http.createServer(this.serverOptions(), onRequest);
    }
    // Requests asking for a protocol upgrade: the same path as any request, on a response made for the socket
    // (server/upgrade.ts). Decision listeners keep Node's default (an ordinary request).
    if (!lc.decision) {
      server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
        takeRequest(req); // before the response reads anything of it
        this.handle(handle, req, responseForUpgrade(req, socket), head);
      });
    }
    // Node answers `Expect: 100-continue` itself and emits this for any other expectation (RFC 9110 10.1.1: 417).
    server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
      takeRequest(req);
      const p = problem('expectation-failed', { detail: 'Only "Expect: 100-continue" is supported.' });
      this.early(handle, req, res, p, randomUUID(), performance.now());
    });
    server.on('clientError', (err: NodeJS.ErrnoException & { rawPacket?: Buffer }, socket: Socket) => this.clientError(handle, err, socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port: lc.port, host: lc.address }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    Object.assign(handle, { config: lc, server, tls: lc.tls !== undefined, certificates, port: (server.address() as { port: number }).port });
    this.listeners.push(handle);
    this.logger.info({ listener: lc.name, url: this.urlOf(handle) }, 'listening');
  }

  private async listenAdmin(): Promise<void> {
    const a = this.options.loaded.config.admin;
    const server = http.createServer({ requireHostHeader: false }, (req, res) => this.handleAdmin(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port: a.port, host: a.address }, () => resolve());
    });
    this.admin = { server, port: (server.address() as { port: number }).port };
    this.logger.info({ listener: 'admin', url: `http://${a.address}:${this.admin.port}` }, 'listening');
  }

  private handleAdmin(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0]!;
    if (path === '/healthz' || path === '/readyz') {
      this.answerHealth(path, res);
      return;
    }
    for (const m of this.modules) {
      const h = m.adminHandlers?.[path];
      if (h) return h(req, res);
    }
    sendProblem(res, problem('not-found'), undefined);
  }

  private answerHealth(path: string, res: ServerResponse): void {
    if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end('{"status":"ok"}');
      return;
    }
    void this.readiness().then((r) => {
      const body = JSON.stringify(r);
      res.writeHead(r.status === 'ready' ? 200 : 503, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(body);
    });
  }

  /** Readiness: config loaded, not draining, every module's dependencies reachable. */
  async readiness(): Promise<{ status: string; checks: Record<string, unknown> }> {
    const checks: Record<string, unknown> = { config: { ok: true, file: this.runtime.loaded.file ?? 'built-in demo' } };
    let ok = !this.draining;
    if (this.draining) checks.draining = { ok: false };
    for (const l of this.listeners) {
      const c = l.certificates;
      if (c?.notAfter) {
        checks[`tls:${l.config.name}`] = {
          ok: c.notAfter.getTime() > Date.now(),
          not_after: c.notAfter.toISOString(),
          ...(c.served ? { source: c.served.source, serial: c.served.serial, ...(c.served.spiffeId ? { spiffe_id: c.served.spiffeId } : {}) } : {}),
          last_rotation: c.rotatedAt?.toISOString() ?? null,
          rotations: c.rotations,
        };
      }
    }
    if (this.runtime.config.vault) checks.vault = this.vault.readiness();
    const results = await Promise.all(
      this.modules.map((m) => (m.ready ? m.ready().catch((err: unknown) => ({ ok: false, detail: { state: 'check failed' }, error: err })) : undefined)),
    );
    results.forEach((r, i) => {
      if (!r) return;
      const name = this.moduleNames[i]!;
      // The answer names what fails; why goes to the log, once each time a check starts failing.
      checks[name] = r.detail === undefined ? { ok: r.ok } : { ok: r.ok, ...r.detail };
      if (r.ok) {
        this.failingChecks.delete(name);
        return;
      }
      ok = false;
      if (!this.failingChecks.has(name)) {
        this.failingChecks.add(name);
        this.logger.warn({ check: name, err: r.error }, 'readiness check failing');
      }
    });
    return { status: ok ? 'ready' : 'not ready', checks };
  }

  // ---------------------------------------------------------------------------------------------------------
  // The request path

  /** `upgradeHead`: for a request that asks for a protocol upgrade, the bytes that followed its head (server/upgrade.ts). */
  private handle(listener: ListenerHandle, req: IncomingMessage, res: ServerResponse, upgradeHead?: Buffer): void {
    takeRequest(req);
    if (!this.ready) return sendProblem(res, problem('service-unavailable', { headers: { 'retry-after': 1 } }), undefined, true);
    const rt = this.runtime;
    const startedAt = performance.now();
    const framing = inspectFraming(req.rawHeaders, req.httpVersionMinor);
    const incomingId = framing.requestId;
    const id = incomingId !== undefined && REQUEST_ID.test(incomingId) ? incomingId : randomUUID();
    if (this.draining) res.shouldKeepAlive = false;
    if (framing.problem) return this.early(listener, req, res, framing.problem, id, startedAt);
    // The body of a request that asks for an upgrade is not read as HTTP any more.
    if (upgradeHead !== undefined && framing.hasBody) return this.early(listener, req, res, problem('bad-request', { detail: 'A request that asks for a protocol upgrade cannot carry a body.' }), id, startedAt);
    const decision = listener.config.decision;
    if (decision !== undefined) {
      const url = req.url;
      if (listener.config.health && rt.config.server.health_paths && (url === '/healthz' || url === '/readyz')) return this.answerHealth(url, res);
      return this.decisions.handle(listener, decision, rt, req, res, id, startedAt);
    }
    if (framing.host === undefined && req.httpVersionMinor === 1) {
      return this.early(listener, req, res, problem('bad-request', { detail: 'HTTP/1.1 requests need a Host header.' }), id, startedAt);
    }

    const target = parseRequestTarget(req.url ?? '', framing.host ?? '', rt.pathRules);
    if (!target.ok) return this.early(listener, req, res, targetProblem(target), id, startedAt);
    const { path, query, host, hostname } = target;
    if (rt.rules.underscored === 'refuse') {
      const twin = rt.rules.findTwin(req.rawHeaders);
      if (twin !== undefined) return this.early(listener, req, res, underscoredRefusal(twin), id, startedAt);
    }

    const lc = listener.config;
    if (!listener.tls && lc.plain !== 'serve') return this.plainRefusal(listener, req, res, id, startedAt, hostname, query === '' ? path : path + '?' + query);
    if (lc.health && rt.config.server.health_paths && (path === '/healthz' || path === '/readyz')) {
      res.setHeader('x-request-id', id);
      return this.answerHealth(path, res);
    }

    const match = rt.router.find(req.method!, path, hostname);
    if (match === undefined) return this.early(listener, req, res, problem('not-found'), id, startedAt);
    // A WebSocket handshake on a route that relays them; any other upgrade request is an ordinary request.
    let relay: Buffer | undefined;
    if (upgradeHead !== undefined && match.route.websocket) {
      const handshake = webSocketHandshake(req);
      if (handshake.kind === 'invalid') return this.early(listener, req, res, problem('bad-request', { detail: handshake.detail }), id, startedAt);
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
    rt.inflight++;
    this.inflight++;
    ctx.runtime = rt;

    let decided: PolicyResult | Promise<PolicyResult>;
    try {
      decided = this.decide(ctx);
    } catch (err) {
      this.logger.error({ req_id: id, err }, 'policy chain failed');
      decided = problem('internal-error');
    }
    const fw: ForwardOptions = { rules: rt.rules, trustedPeer, hasBody: framing.hasBody, contentLength: framing.contentLength };
    if (relay !== undefined) fw.upgradeHead = relay;
    if (decided instanceof Promise) {
      decided.then(
        (result) => this.act(ctx, req, res, result, fw),
        (err: unknown) => {
          this.logger.error({ req_id: id, err }, 'policy chain failed');
          this.act(ctx, req, res, problem('internal-error'), fw);
        },
      );
    } else {
      this.act(ctx, req, res, decided, fw);
    }
  }

  /** Runs the route's policies: undefined means forward, anything else is the answer. */
  decide(ctx: RequestContext): PolicyResult | Promise<PolicyResult> {
    return ctx.route.chain.run(ctx);
  }

  private act(
    ctx: RequestContext,
    req: IncomingMessage,
    res: ServerResponse,
    result: PolicyResult,
    fw: ForwardOptions,
  ): void {
    if (res.destroyed) {
      ctx.clientClosed(false);
      return this.finished(ctx);
    }
    if (result === undefined) {
      if (ctx.upstream === undefined) {
        this.answerProblem(ctx, res, problem('bad-gateway', { detail: 'This route has no upstream.' }));
        return this.finished(ctx);
      }
      return forward(ctx, req, res, fw, this.hooks);
    }
    try {
      if (result instanceof Problem) this.answerProblem(ctx, res, result, result.status === 413);
      else if (isReply(result)) this.answerReply(ctx, res, result);
    } catch (err) {
      // Node refused to write the answer (e.g. a header value a policy computed): 500, never a crashed process.
      this.logger.error({ req_id: ctx.id, err }, 'answer could not be written');
      ctx.errorKind = 'internal-error';
      ctx.status = 500;
      if (res.headersSent) res.destroy();
      else {
        for (const name of res.getHeaderNames()) res.removeHeader(name);
        sendProblem(res, problem('internal-error'), ctx.id);
      }
    }
    this.finished(ctx);
  }

  /**
   * Node could not parse a request (framing, header size, request timeout): it is answered with a raw problem and
   * recorded like every refusal (metrics, access log, audit). Also when the head was fine and the body's framing is
   * broken: no response has started yet, so the client still gets a 400; the request in flight on the socket is
   * then recorded by its own completion.
   */
  private clientError(listener: ListenerHandle, err: NodeJS.ErrnoException & { rawPacket?: Buffer }, socket: Socket): void {
    const current = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
    if (!socket.writable || (current && current.headersSent)) {
      socket.destroy();
      return;
    }
    const p = clientErrorProblem(err.code);
    const id = randomUUID();
    socket.end(rawProblemResponse(p, id));
    if (current || !this.ready) return;
    this.recordRefusal(listener, methodOf(err.rawPacket), socket.remoteAddress ?? '', p, id, performance.now());
  }

  /** Answers before a context exists (framing, path, routing errors). */
  private early(listener: ListenerHandle, req: IncomingMessage, res: ServerResponse, p: Problem, id: string, startedAt: number): void {
    // After a framing error (or a refused expectation, whose body may follow) the rest of the connection cannot be
    // trusted: close it.
    sendProblem(res, p, id, p.kind === 'ambiguous-request' || p.kind === 'ambiguous-path' || p.kind === 'expectation-failed');
    this.recordRefusal(listener, req.method ?? '', req.socket.remoteAddress ?? '', p, id, startedAt);
  }

  /** Every refusal is on record: the refused-request event (metrics, audit) and the access log. */
  private recordRefusal(listener: ListenerHandle, method: string, clientIp: string, p: Problem, id: string, startedAt: number): void {
    this.services.events.requestRefused({ requestId: id, listener: listener.config.name, method, clientIp, status: p.status, problem: p.kind, startedAt });
    if (this.runtime.config.log.access) {
      this.accessLog.info({ req_id: id, status: p.status, problem: p.kind, method: method === '' ? undefined : method, client: clientIp, listener: listener.config.name }, 'refused');
    }
  }

  private plainRefusal(listener: ListenerHandle, req: IncomingMessage, res: ServerResponse, id: string, startedAt: number, hostname: string, target: string): void {
    const lc = listener.config;
    if (lc.plain === 'redirect') {
      const port = lc.https_port ?? 443;
      const location = `https://${hostname.includes(':') ? `[${hostname}]` : hostname}${port === 443 ? '' : `:${port}`}${target}`;
      res.writeHead(308, { location, 'x-request-id': id, 'content-length': 0 });
      res.end();
      return;
    }
    this.early(listener, req, res, problem('https-required', { detail: 'This listener only redirects or refuses: use HTTPS.' }), id, startedAt);
  }

  private answerProblem(ctx: RequestContext, res: ServerResponse, p: Problem, close = false): void {
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
    sendProblem(res, new Problem(p.kind, { status: head.status, title: p.title, ...(p.detail ? { detail: p.detail } : {}), ...(p.extensions ? { extensions: p.extensions } : {}), headers }), ctx.id, close);
  }

  private answerReply(ctx: RequestContext, res: ServerResponse, reply: Reply): void {
    const head = answerHead(ctx, reply.status, reply.headers);
    if (head.withhold !== undefined && !res.headersSent) return this.answerProblem(ctx, res, head.withhold);
    ctx.status = head.status;
    if (res.headersSent) return void res.destroy();
    res.statusCode = head.status;
    for (const [k, v] of head.headers) res.setHeader(k, v);
    res.setHeader('x-request-id', ctx.id);
    res.end(reply.body);
  }

  private finished(ctx: RequestContext): void {
    const rt = ctx.runtime!;
    const chain = ctx.route.chain;
    if (chain.hasCompleteHooks) chain.onComplete(ctx);
    if (this.services.events.observesRequests) this.services.events.requestComplete(ctx);
    if (rt.config.log.access) {
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
      const upstreamError = ctx.state['upstream-error'];
      if (upstreamError) line.upstream_error = upstreamError;
      const retries = ctx.state['upstream-retries'];
      if (retries) line.upstream_retries = retries;
      if (ctx.aborted) line.aborted = true;
      this.accessLog.info(line, 'request');
    }
    rt.release();
    if (--this.inflight === 0 && this.drained) this.drained();
  }

  // ---------------------------------------------------------------------------------------------------------
  // Reload and shutdown

  /**
   * Loads the config file again; on success new requests use it and in-flight ones finish on the old runtime.
   * An invalid file is refused with a log line and the current config keeps serving. With `inMemory`, a config
   * that did not come from a file is compiled again as it is (a rotated secret must reach it too).
   */
  reload(reason: string, options: { inMemory?: boolean } = {}): Promise<boolean> {
    // Coalesce: a reload requested while one runs waits for it and then runs once more.
    const run = async (): Promise<boolean> => {
      const file = this.runtime.loaded.file;
      if ((!file && !options.inMemory) || this.draining) return false;
      let next: Runtime;
      // Modules that took the new config: put back on the current one if the rest of it is refused.
      const reloaded: ModuleInstance[] = [];
      try {
        const loaded = file ? loadConfigFile(file, this.validator) : this.runtime.loaded;
        await this.vault.prepare(loaded.config, loaded.baseDir);
        for (const lc of loaded.config.listeners) if (lc.decision) this.decisions.compile(lc.name, lc.decision);
        for (const m of this.modules) {
          if (m.reload === undefined) continue;
          reloaded.push(m);
          await m.reload(loaded.config);
        }
        next = await compileRuntime(loaded, this.env);
      } catch (err) {
        const problems = err instanceof ConfigError ? err.problems : [(err as Error).message];
        for (const m of reloaded) {
          await m.reload!(this.runtime.config).catch((e: unknown) => this.logger.error({ err: e }, 'a module could not return to the current configuration'));
        }
        this.logger.error({ reason, problems }, 'configuration refused; the previous configuration keeps serving');
        this.services.events.emit({ type: 'config.refused', outcome: 'invalid', data: { reason, problems } });
        return false;
      }
      if (this.draining) {
        // stop() began while this config compiled: it is never put in service.
        await next.close();
        return false;
      }
      const old = this.runtime;
      this.runtime = next;
      this.vault.retain(next.config);
      this.applyListenerChanges(next, old);
      this.logger.info({ reason, routes: next.routes.length }, 'configuration reloaded');
      this.services.events.emit({ type: 'config.reloaded', outcome: 'applied', data: { reason, file } });
      void old.retire();
      return true;
    };
    const previous = this.reloading ?? Promise.resolve(true);
    const current = previous.then(run, run);
    this.reloading = current;
    void current.finally(() => {
      if (this.reloading === current) this.reloading = undefined;
    });
    return current;
  }

  private applyListenerChanges(next: Runtime, old: Runtime): void {
    for (const l of this.listeners) {
      const lc = next.config.listeners.find((c) => c.name === l.config.name);
      if (!lc || lc.port !== l.config.port || lc.address !== l.config.address || (lc.tls === undefined) !== !l.tls) {
        this.logger.warn({ listener: l.config.name }, 'listener address, port or protocol changed: takes effect on restart');
        continue;
      }
      if (lc.tls && l.certificates) {
        // Unchanged TLS settings: re-read the files, trust bundles included (SIGHUP is the fallback for missed file
        // events), without rebuilding client authentication or ending resumable sessions when nothing changed.
        if (isDeepStrictEqual(lc.tls, l.config.tls) && next.loaded.baseDir === old.loaded.baseDir) l.certificates.refresh();
        else l.certificates.update(lc.tls, next.loaded.baseDir);
      }
      (l as { config: ListenerConfig }).config = { ...lc, port: l.config.port };
    }
  }

  /**
   * Graceful stop: stop accepting, let in-flight requests finish (up to the drain deadline), close keep-alive
   * connections as their current response ends, then close everything.
   */
  async stop(deadlineMs = this.runtime.config.server.drain_timeout_ms): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    this.configWatcher?.close();
    // A reload that started before the drain finishes first (it installs no runtime once draining is set).
    await this.reloading?.catch(() => undefined);
    this.logger.info({ inflight: this.inflight, deadline_ms: deadlineMs }, 'draining');
    const servers = this.listeners.map((l) => l.server);
    const closed = servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve())));
    for (const s of servers) s.closeIdleConnections();
    if (this.inflight > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, deadlineMs);
        this.drained = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    for (const s of servers) s.closeAllConnections();
    // Relayed WebSocket connections still open at the deadline are cut (the server waits for their sockets).
    for (const t of this.tunnels) t.destroy();
    for (const l of this.listeners) l.certificates?.close();
    await Promise.all(closed);
    if (this.admin) {
      this.admin.server.closeAllConnections();
      await new Promise<void>((resolve) => this.admin!.server.close(() => resolve()));
    }
    await this.runtime.close();
    for (const m of this.modules) await m.close?.().catch(() => undefined);
    await this.vault.close();
    this.logger.info('stopped');
  }
}

/** The request method at the start of the bytes Node could not parse, when it reads as one; else ''. */
function methodOf(raw: Buffer | undefined): string {
  if (raw === undefined) return '';
  const m = /^([A-Z]{1,16}) /.exec(raw.toString('latin1', 0, 17));
  return m === null ? '' : m[1]!;
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

