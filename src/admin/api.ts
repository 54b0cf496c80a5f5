/**
 * The admin REST API: `/admin/api/v1/*` and `/admin/api/openapi.json` on the admin listener (never on a traffic
 * listener). Each call is authenticated (admin key, config key or mapped client certificate), checked against the
 * operation's role, validated against its schemas, answered as JSON or problem+json, and, when it changes state,
 * recorded as an audit event naming the actor. With `admin.api.enabled` off every path answers 404
 * `admin-api-disabled`.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import findMyWay, { type HTTPVersion, type Instance } from 'find-my-way';
import type { AdminApiConfig } from '../config/admin-api-schema.js';
import { Problem, problem, problemBody } from '../pipeline/problem.js';
import type { Store } from '../store/store.js';
import { AdminKeys } from './admin-keys.js';
import { authenticate, checkConfigKeys, ensureKeyFile, type KeyFileResult } from './authenticate.js';
import { ConfigError } from '../config/load.js';
import { type AdminApiSources, type ApiContext, type Call, type Handler, type Principal, problemOf } from './call.js';
import { HANDLERS } from './handlers/index.js';
import { Instances } from './instances.js';
import { openApiDocument } from './openapi.js';
import { API_PREFIX, OPENAPI_PATH, OPERATIONS } from './operations.js';
import {
  ADMIN_API_DISABLED,
  ADMIN_FORBIDDEN,
  ADMIN_INVALID_REQUEST,
  ADMIN_NOT_FOUND,
  ADMIN_UNAUTHENTICATED,
} from './problems.js';
import { Dashboard } from './dashboard.js';
import { OIDC_PREFIX, OidcLogin } from './oidc.js';
import { OidcSessions } from './oidc-sessions.js';
import { DecisionStats } from './stats.js';
import { registerAdminMetrics } from './metrics.js';
import { compileOperations, errorsOf, type CompiledOperation } from './validation.js';

const RANK = { viewer: 0, operator: 1, admin: 2 } as const;

interface Route {
  compiled: CompiledOperation;
  handler: Handler;
}

/** What a call had established when it was refused: for its audit event and log line. */
interface CallSoFar {
  principal: Principal | undefined;
  operation: string | undefined;
}

export class AdminApi {
  private readonly router: Instance<HTTPVersion.V1>;
  private context: ApiContext | undefined;
  private openApiBody: string | undefined;
  /** The key file the API made or kept at start (the demo's admin key). */
  keyFile: KeyFileResult | undefined;
  /** The dashboard's files, read at start when `admin.api.dashboard` is on. */
  private dashboard: Dashboard | undefined;
  private oidc: OidcLogin | undefined;
  private stopMetrics: (() => void) | undefined;

  constructor(private readonly sources: AdminApiSources) {
    this.router = findMyWay({ ignoreTrailingSlash: true, caseSensitive: true });
    const compiled = compileOperations(OPERATIONS);
    for (const op of OPERATIONS) {
      const handler = HANDLERS[op.id];
      if (handler === undefined) throw new Error(`admin API: no handler for ${op.id}`);
      const route: Route = { compiled: compiled.get(op.id)!, handler };
      const path = API_PREFIX + op.path.replace(/\{([^}]+)\}/g, ':$1');
      this.router.on(op.method, path, () => undefined, route);
    }
  }

  private get settings(): AdminApiConfig {
    return this.sources.config().admin.api;
  }

  /** Migrates the API's tables, starts the heartbeat and the statistics, and makes the key file. */
  async start(adminUrl: () => string | undefined): Promise<void> {
    const settings = this.settings;
    if (!settings.enabled) return;
    if (!settings.store_keys && settings.keys.length === 0 && settings.mtls.length === 0 && !settings.oidc)
      throw new ConfigError(['admin.api: enabled with no way to authenticate (keys, store_keys, mtls or oidc)']);
    if (settings.mtls.length > 0 && !this.sources.config().admin.tls?.client_ca)
      throw new ConfigError(['admin.api.mtls: needs admin.tls with client_ca']);
    this.stopMetrics = registerAdminMetrics(this.sources.services);
    const store = this.sources.services.get<Store>('store');
    const keys = new AdminKeys(store);
    await keys.migrate();
    const sessions = new OidcSessions(store);
    await sessions.migrate();
    const instances = new Instances(
      store,
      this.sources.logger,
      this.sources.version,
      () => this.settings.public_url ?? adminUrl(),
    );
    await instances.start();
    this.context = {
      sources: this.sources,
      services: this.sources.services,
      logger: this.sources.logger,
      keys,
      instances,
      stats: new DecisionStats(this.sources.services.events),
      config: () => this.settings,
    };
    checkConfigKeys(this.context);
    const oidc = new OidcLogin(this.context, sessions);
    this.oidc = oidc;
    this.context.session = (req) => oidc.principal(req);
    if (settings.oidc) this.sources.resolveSecret(settings.oidc.client_secret);
    if (settings.dashboard) {
      this.dashboard = new Dashboard();
      if (!this.dashboard.available)
        this.sources.logger.warn('admin.api.dashboard: the dashboard is not built (npm run build); `/` answers 404');
    }
    if (settings.key_file) {
      this.keyFile = await ensureKeyFile(keys, settings.key_file, this.sources.services.dataDir);
      if (this.keyFile.created)
        this.sources.services.events.emit({
          type: 'admin.admin_key.created',
          outcome: 'ok',
          data: { actor: 'key-file', admin_key_id: this.keyFile.id, role: settings.key_file.role },
        });
    }
  }

  /** The start-up line naming the API and, when the API made or kept one, the key file. */
  announce(adminUrl: string): void {
    if (this.context === undefined) return;
    const url = this.settings.public_url ?? adminUrl;
    const dashboard = this.dashboard?.available ? `${url}/` : undefined;
    this.sources.logger.info(
      {
        admin_api: `${url}${API_PREFIX}`,
        openapi: `${url}${OPENAPI_PATH}`,
        ...(dashboard ? { dashboard } : {}),
        ...(this.keyFile ? { admin_key_file: this.keyFile.path, admin_key_id: this.keyFile.id } : {}),
      },
      (dashboard ? `dashboard at ${dashboard}, ` : '') +
        (this.keyFile
          ? `admin API at ${url}${API_PREFIX}; admin key in ${this.keyFile.path} (curl -H "x-admin-key: $(cat ${this.keyFile.path})" ${url}${API_PREFIX}/me)`
          : `admin API at ${url}${API_PREFIX}`),
    );
  }

  /** The dashboard's files (`/`, `/assets/*`) while the API and `admin.api.dashboard` are on; false: not ours. */
  serveDashboard(req: IncomingMessage, res: ServerResponse, path: string): boolean {
    if (this.dashboard === undefined || !this.settings.enabled || !this.settings.dashboard) return false;
    return this.dashboard.serve(req, res, path);
  }

  async close(): Promise<void> {
    this.stopMetrics?.();
    this.context?.stats.close();
    await this.context?.instances.close();
  }

  handle(req: IncomingMessage, res: ServerResponse): void {
    const requestId = 'adm_' + randomBytes(9).toString('base64url');
    const call: CallSoFar = { principal: undefined, operation: undefined };
    void this.serve(req, res, requestId, call).catch((err: unknown) => {
      const p = problemOf(err);
      if (p === undefined) this.sources.logger.error({ err, req_id: requestId }, 'admin API call failed');
      this.refuse(
        req,
        res,
        p ?? problem('internal-error', { detail: 'The call failed; see the gateway log.' }),
        requestId,
        call,
      );
    });
  }

  /**
   * Answers `p` and puts the refusal on record: an `admin.refused` audit event (actor and operation when known),
   * hence the `kycgate_admin_refusals_total` metric, and a log line. A missing or wrong credential is on record as
   * `admin.auth.failure` instead, where it is refused.
   */
  private refuse(req: IncomingMessage, res: ServerResponse, p: Problem, requestId: string, call: CallSoFar): void {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const principal = call.principal;
    const data: Record<string, unknown> = {
      ...(principal ? { actor: principal.actor, actor_role: principal.role } : {}),
      ...(call.operation ? { operation: call.operation } : {}),
      method: req.method,
      path: q === -1 ? url : url.slice(0, q),
      status: p.status,
      client_ip: req.socket.remoteAddress,
    };
    this.sources.services.events.emit({ type: 'admin.refused', requestId, outcome: p.kind, data });
    this.sources.logger[p.status >= 500 ? 'warn' : 'info'](
      { req_id: requestId, problem: p.kind, ...data },
      'admin call refused',
    );
    send(res, p, requestId);
  }

  private async serve(req: IncomingMessage, res: ServerResponse, requestId: string, soFar: CallSoFar): Promise<void> {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    const context = this.context;
    if (context === undefined || !this.settings.enabled) {
      return this.refuse(
        req,
        res,
        problem(ADMIN_API_DISABLED, { detail: 'The admin API is off here: set admin.api.enabled and a credential.' }),
        requestId,
        soFar,
      );
    }
    // The description of the API is no secret (docs/admin-openapi.json is the same document).
    if (path === OPENAPI_PATH && (req.method === 'GET' || req.method === 'HEAD')) {
      this.openApiBody ??= JSON.stringify(openApiDocument(this.sources.version));
      return sendJson(res, 200, this.openApiBody, requestId);
    }
    if (path.startsWith(OIDC_PREFIX) && this.oidc !== undefined) {
      if (await this.oidc.serve(req, res, path, requestId)) return;
      return this.refuse(
        req,
        res,
        problem(ADMIN_NOT_FOUND, { detail: `No operation ${req.method} ${path}.` }),
        requestId,
        soFar,
      );
    }
    const principal = await authenticate(req, context);
    soFar.principal = principal;
    if (principal === undefined) {
      const data = { client_ip: req.socket.remoteAddress, path };
      this.sources.services.events.emit({ type: 'admin.auth.failure', requestId, outcome: 'invalid_credential', data });
      this.sources.logger.info(
        { req_id: requestId, reason: 'invalid_credential', ...data },
        'admin call refused: no valid credential',
      );
      return send(
        res,
        problem(ADMIN_UNAUTHENTICATED, {
          detail: 'Present an admin key (Authorization: Bearer or x-admin-key) or a mapped client certificate.',
          headers: { 'www-authenticate': 'Bearer realm="kycgate-admin"' },
        }),
        requestId,
      );
    }
    const found = this.router.find(req.method as 'GET', path);
    if (found === null) {
      const methods = OPERATIONS.length > 0 && this.router.find('GET', path) !== null;
      return this.refuse(
        req,
        res,
        problem(methods ? 'method-not-allowed' : ADMIN_NOT_FOUND, { detail: `No operation ${req.method} ${path}.` }),
        requestId,
        soFar,
      );
    }
    const route = found.store as Route;
    const op = route.compiled.op;
    soFar.operation = op.id;
    if (RANK[principal.role] < RANK[op.role]) {
      return this.refuse(
        req,
        res,
        problem(ADMIN_FORBIDDEN, {
          detail: `${op.id} needs the ${op.role} role; this credential has ${principal.role}.`,
          extensions: { required_role: op.role },
        }),
        requestId,
        soFar,
      );
    }
    const params: Record<string, string> = { ...(found.params as Record<string, string>) };
    const query = queryObject(q === -1 ? '' : url.slice(q + 1));
    const errors = [];
    if (!route.compiled.params(params)) errors.push(...errorsOf(route.compiled.params.errors, 'path'));
    if (!route.compiled.query(query)) errors.push(...errorsOf(route.compiled.query.errors, 'query'));
    let body: unknown;
    const raw = await readBody(req, this.settings.max_body_bytes);
    if (raw instanceof Problem) return this.refuse(req, res, raw, requestId, soFar);
    if (raw.length > 0) {
      if (!route.compiled.body) errors.push({ where: 'body', message: 'this operation takes no body' });
      else {
        try {
          body = JSON.parse(raw.toString('utf8'));
        } catch {
          errors.push({ where: 'body', message: 'is not JSON' });
        }
      }
    } else if (op.body?.required) errors.push({ where: 'body', message: 'is required' });
    if (route.compiled.body && body !== undefined && !route.compiled.body(body))
      errors.push(...errorsOf(route.compiled.body.errors, 'body'));
    if (errors.length > 0) {
      return this.refuse(
        req,
        res,
        problem(ADMIN_INVALID_REQUEST, { detail: 'The request does not match the operation.', extensions: { errors } }),
        requestId,
        soFar,
      );
    }
    const call: Call = {
      principal,
      params,
      query,
      body,
      requestId,
      api: context,
      audit: (data, outcome = 'ok') => this.audit(op.audit, principal, requestId, data, outcome),
    };
    const reply = await route.handler(call);
    const status = reply.status ?? op.response.status;
    if ('stream' in reply) {
      res.writeHead(status, {
        'content-type': reply.contentType,
        'cache-control': 'no-store',
        'x-request-id': requestId,
      });
      for await (const chunk of reply.stream) if (!res.write(chunk)) await waitDrain(res);
      res.end();
      return;
    }
    sendJson(res, status, JSON.stringify(reply.body), requestId);
  }

  private audit(
    type: string | undefined,
    principal: Principal,
    requestId: string,
    data: Record<string, unknown>,
    outcome: string,
  ): void {
    if (type === undefined) return;
    this.sources.services.events.emit({
      type,
      requestId,
      outcome,
      data: { actor: principal.actor, actor_role: principal.role, ...data },
    });
  }
}

function queryObject(search: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of new URLSearchParams(search)) out[k] = v;
  return out;
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer | Problem> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        resolve(problem('payload-too-large', { detail: `The admin API reads at most ${limit} bytes.` }));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.once('end', () => resolve(Buffer.concat(chunks)));
    req.once('error', () => resolve(problem('bad-request', { detail: 'The body could not be read.' })));
  });
}

function waitDrain(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    res.once('drain', resolve);
    res.once('close', resolve);
  });
}

function sendJson(res: ServerResponse, status: number, body: string, requestId: string): void {
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    'x-request-id': requestId,
  });
  res.end(body);
}

function send(res: ServerResponse, p: Problem, requestId: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = problemBody(p, requestId);
  res.writeHead(p.status, {
    'content-type': 'application/problem+json',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    'x-request-id': requestId,
    ...(p.headers as Record<string, string>),
  });
  res.end(body);
}
