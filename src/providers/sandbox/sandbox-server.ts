/**
 * The embedded sandbox provider: an in-process HTTP server that speaks Didit's API (sessions, decisions, status
 * updates), serves a real hosted verification page, and delivers webhooks signed exactly as Didit signs them.
 * The Didit adapter runs against it unchanged, which is how the demo and the tests exercise the whole KYC flow
 * without reaching Didit.
 */
import http from 'node:http';
import type net from 'node:net';
import { randomUUID } from 'node:crypto';
import { safeEqual } from '../../config/secrets.js';
import type { Store } from '../../store/store.js';
import { DECISION_STATUSES, UNFINISHED_STATUSES } from '../didit/statuses.js';
import { PAGE_HEADERS, notFoundPage, resultPage, verificationPage } from './pages.js';
import { memoryPersistence, storePersistence, type SandboxPersistence } from './persistence.js';
import {
  DEFAULT_PERSON,
  decisionDocument,
  newSession,
  sessionCreatedDocument,
  sessionUrl,
  type SandboxPerson,
  type SandboxSession,
} from './sessions.js';
import { WebhookDeliverer, type DeliveryOutcome } from './webhooks.js';
import { isPlainObject, validDate, validateCreate } from './didit-validation.js';
import { DIALECTS } from './dialects/index.js';
import type { DialectContext, DialectName, SandboxDialect } from './dialects/dialect.js';

export interface SandboxStartOptions {
  host?: string;
  /** 0 (default) picks a free port. */
  port?: number;
  /** The API key clients must send as `x-api-key`. */
  apiKey: string;
  /** Key webhooks are signed with. */
  webhookSecret: string;
  /** Where `status.updated` webhooks are delivered; none are sent without one. */
  webhookUrl?: string;
  /** Persists sessions and pending deliveries (migrations under module "sandbox"); memory only without. */
  store?: Store;
  /** Delays before each delivery retry. Default Didit's: 1 min, 4 min. */
  retryDelaysMs?: readonly number[];
  /** Base URL browsers reach the sandbox at (behind a proxy or port mapping). Default: the listening address. */
  publicBaseUrl?: string;
  /** Reported as `application_id` in webhooks. */
  applicationId?: string;
  /** Told about every delivery attempt (logs, tests). */
  onDelivery?: (outcome: DeliveryOutcome) => void;
  /** Whose API and webhooks the sandbox speaks. Default Didit's. */
  dialect?: DialectName;
  /** Key API requests must be signed with, where the dialect signs them (Sumsub). Default: the webhook secret. */
  apiSecret?: string;
}

export interface RunningSandbox {
  /** Public base URL (hosted pages, session `url`s). */
  url: string;
  /** The listening address, for clients in the same process or host (the adapter). */
  localUrl: string;
  /** Test hook: the next `count` API calls are answered 429 with these rate-limit headers. */
  rateLimitNext(count: number, retryAfterSeconds: number): void;
  /** Sessions known, for tests and the demo. */
  readonly sessions: ReadonlyMap<string, SandboxSession>;
  /** Deliveries in flight or waiting for a retry. */
  readonly pendingDeliveries: number;
  close(): Promise<void>;
}

const MAX_API_BODY = 2 * 1024 * 1024;
const MAX_FORM_BODY = 16 * 1024;

class BodyTooLarge extends Error {}

function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(new BodyTooLarge());
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function sendJson(res: http.ServerResponse, status: number, doc: unknown, headers: Record<string, string> = {}): void {
  const body = JSON.stringify(doc);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

function sendHtml(res: http.ServerResponse, status: number, html: string): void {
  res.writeHead(status, { ...PAGE_HEADERS, 'content-length': Buffer.byteLength(html) });
  res.end(html);
}

export class SandboxServer {
  private server: http.Server | undefined;
  private options!: SandboxStartOptions;
  private baseUrl = '';
  private localUrl = '';
  private persistence: SandboxPersistence = memoryPersistence;
  private deliverer!: WebhookDeliverer;
  private readonly byId = new Map<string, SandboxSession>();
  private readonly byToken = new Map<string, SandboxSession>();
  private nextNumber = 1;
  private rateLimited = { count: 0, retryAfterSeconds: 0 };
  private applicationId = '';
  private dialect: SandboxDialect | undefined;
  private dialectContext!: DialectContext;

  async start(options: SandboxStartOptions): Promise<RunningSandbox> {
    if (this.server) throw new Error('the sandbox is already started');
    if (!options.apiKey || !options.webhookSecret) throw new Error('the sandbox needs an API key and a webhook secret');
    this.options = options;
    this.applicationId = options.applicationId ?? randomUUID();
    const dialect =
      options.dialect === undefined || options.dialect === 'didit' ? undefined : DIALECTS[options.dialect];
    this.dialect = dialect;
    this.dialectContext = {
      apiKey: options.apiKey,
      apiSecret: options.apiSecret ?? options.webhookSecret,
      webhookSecret: options.webhookSecret,
      now: nowSeconds,
      create: async (fields) => {
        const s = newSession({ sessionNumber: this.nextNumber++, workflowVersion: 1, ...fields }, nowSeconds());
        await this.save(s);
        return s;
      },
      session: (id) => this.byId.get(id),
      pageUrl: (s) => sessionUrl(this.baseUrl, s),
    };
    if (options.store) this.persistence = await storePersistence(options.store);
    for (const s of await this.persistence.loadSessions()) this.remember(s);
    this.nextNumber = Math.max(0, ...[...this.byId.values()].map((s) => s.sessionNumber)) + 1;
    this.deliverer = new WebhookDeliverer({
      url: options.webhookUrl,
      secret: options.webhookSecret,
      retryDelaysMs: options.retryDelaysMs ?? [60_000, 240_000],
      persistence: this.persistence,
      ...(options.onDelivery ? { onOutcome: options.onDelivery } : {}),
      ...(dialect
        ? {
            sign: (envelope: Record<string, unknown>, now: number) =>
              dialect.sign(envelope.payload as Record<string, unknown>, now, this.dialectContext),
          }
        : {}),
    });

    const server = http.createServer((req, res) => {
      this.handle(req, res).catch(() => {
        if (!res.headersSent) sendJson(res, 500, { detail: 'A server error occurred.' });
        else res.destroy();
      });
    });
    server.headersTimeout = 10_000;
    server.requestTimeout = 30_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
    });
    this.server = server;
    const address = server.address() as net.AddressInfo;
    // A wildcard bind is reached locally through loopback.
    const local = address.address === '0.0.0.0' ? '127.0.0.1' : address.address === '::' ? '::1' : address.address;
    const host = address.family === 'IPv6' ? `[${local}]` : local;
    this.localUrl = `http://${host}:${address.port}`;
    this.baseUrl = (options.publicBaseUrl ?? this.localUrl).replace(/\/+$/, '');
    if (options.webhookUrl) this.deliverer.resume(await this.persistence.loadPendingDeliveries());

    const self = this;
    return {
      url: this.baseUrl,
      localUrl: this.localUrl,
      rateLimitNext: (count, retryAfterSeconds) => {
        this.rateLimited = { count, retryAfterSeconds };
      },
      get sessions() {
        return self.byId;
      },
      get pendingDeliveries() {
        return self.deliverer.pending;
      },
      close: () => this.close(),
    };
  }

  private async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    await this.deliverer.close();
    if (server) {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    }
  }

  private remember(s: SandboxSession): void {
    this.byId.set(s.sessionId, s);
    this.byToken.set(s.sessionToken, s);
  }

  private async save(s: SandboxSession): Promise<void> {
    this.remember(s);
    await this.persistence.saveSession(s);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://sandbox');
    const path = url.pathname;
    const method = req.method ?? 'GET';

    const page = /^\/verify\/([A-Za-z0-9_-]{1,64})\/?$/.exec(path);
    if (page) {
      const session = this.byToken.get(page[1]!);
      if (!session) return sendHtml(res, 404, notFoundPage());
      if (method === 'GET' || method === 'HEAD') return this.showPage(session, res, method === 'GET');
      if (method === 'POST') return this.submitPage(session, req, res);
      res.setHeader('allow', 'GET, HEAD, POST');
      return sendJson(res, 405, { detail: `Method "${method}" not allowed.` });
    }

    if (path === '/verify' && (method === 'GET' || method === 'HEAD')) {
      // Persona's hosted flow is addressed by inquiry id.
      const session = this.byId.get(url.searchParams.get('inquiry-id') ?? '');
      if (!session) return sendHtml(res, 404, notFoundPage());
      res.writeHead(303, { location: `/verify/${session.sessionToken}`, 'cache-control': 'no-store' }).end();
      return;
    }
    if (this.dialect) return this.handleDialect(this.dialect, req, res, url);
    if (!path.startsWith('/v3/') && !path.startsWith('/v2/')) return sendJson(res, 404, { detail: 'Not found.' });
    if (!this.apiKeyValid(req)) return sendJson(res, 401, { detail: 'Invalid or missing API key' });
    if (this.rateLimited.count > 0) return this.throttle(res);

    const route = path.replace(/^\/v[23]/, '');
    if (route === '/session/' || route === '/session') {
      if (method !== 'POST') return sendJson(res, 405, { detail: `Method "${method}" not allowed.` });
      return this.createSession(req, res);
    }
    const decision = /^\/session\/([^/]+)\/decision\/?$/.exec(route);
    if (decision) {
      if (method !== 'GET') return sendJson(res, 405, { detail: `Method "${method}" not allowed.` });
      const s = this.byId.get(decision[1]!);
      if (!s) return sendJson(res, 404, { detail: 'Not found.' });
      return sendJson(res, 200, decisionDocument(this.baseUrl, s, nowSeconds()));
    }
    const update = /^\/session\/([^/]+)\/update-status\/?$/.exec(route);
    if (update) {
      if (method !== 'PATCH') return sendJson(res, 405, { detail: `Method "${method}" not allowed.` });
      return this.updateStatus(update[1]!, req, res);
    }
    return sendJson(res, 404, { detail: 'Not found.' });
  }

  private throttle(res: http.ServerResponse): void {
    this.rateLimited.count--;
    const seconds = this.rateLimited.retryAfterSeconds;
    sendJson(
      res,
      429,
      { detail: `Request was throttled. Expected available in ${seconds} seconds.` },
      {
        'retry-after': String(seconds),
        'x-ratelimit-limit': '600',
        'x-ratelimit-remaining': '0',
        'x-ratelimit-reset': String(seconds),
      },
    );
  }

  /** An API request in another provider's dialect: its paths, authentication and documents. */
  private async handleDialect(
    dialect: SandboxDialect,
    req: http.IncomingMessage,
    res: http.ServerResponse,
    url: URL,
  ): Promise<void> {
    let body: Buffer;
    try {
      body = await readBody(req, MAX_API_BODY);
    } catch (err) {
      if (err instanceof BodyTooLarge)
        sendJson(res, 413, { detail: 'Request body too large.' }, { connection: 'close' });
      return;
    }
    if (this.rateLimited.count > 0) return this.throttle(res);
    const answer = await dialect.handle(
      {
        method: req.method ?? 'GET',
        pathWithQuery: req.url ?? '/',
        path: url.pathname,
        query: url.searchParams,
        headers: req.headers,
        body,
      },
      this.dialectContext,
    );
    if (!answer) return sendJson(res, 404, { detail: 'Not found.' });
    sendJson(res, answer.status, answer.doc, answer.headers);
  }

  private apiKeyValid(req: http.IncomingMessage): boolean {
    const key = req.headers['x-api-key'];
    return typeof key === 'string' && key !== '' && safeEqual(key, this.options.apiKey);
  }

  private async readJson(
    req: http.IncomingMessage,
    res: http.ServerResponse,
  ): Promise<{ ok: true; value: unknown } | { ok: false }> {
    let raw: Buffer;
    try {
      raw = await readBody(req, MAX_API_BODY);
    } catch (err) {
      if (err instanceof BodyTooLarge)
        sendJson(res, 413, { detail: 'Request body too large.' }, { connection: 'close' });
      return { ok: false };
    }
    try {
      return { ok: true, value: JSON.parse(raw.toString('utf8')) as unknown };
    } catch {
      sendJson(res, 400, { detail: 'JSON parse error.' });
      return { ok: false };
    }
  }

  private async createSession(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const body = await this.readJson(req, res);
    if (!body.ok) return;
    const checked = validateCreate(body.value);
    if ('errors' in checked) return sendJson(res, 400, checked.errors);
    const f = checked.fields;
    const workflowId = (f.workflow_id as string).toLowerCase();
    const vendorData = typeof f.vendor_data === 'string' ? f.vendor_data : undefined;
    const callback = typeof f.callback === 'string' ? f.callback : undefined;
    const metadata = isPlainObject(f.metadata) ? f.metadata : undefined;

    // Didit hands back an unfinished session for the same user and workflow, with callback and metadata updated.
    if (vendorData !== undefined) {
      for (const s of this.byId.values()) {
        if (s.vendorData === vendorData && s.workflowId === workflowId && UNFINISHED_STATUSES.has(s.status)) {
          if (callback !== undefined) s.callback = callback;
          if (metadata !== undefined) s.metadata = metadata;
          await this.save(s);
          return sendJson(res, 201, sessionCreatedDocument(this.baseUrl, s));
        }
      }
    }
    const session = newSession(
      {
        sessionNumber: this.nextNumber++,
        workflowId,
        workflowVersion: 1,
        ...(vendorData !== undefined ? { vendorData } : {}),
        ...(metadata !== undefined ? { metadata } : {}),
        ...(callback !== undefined ? { callback } : {}),
        ...(typeof f.callback_method === 'string' ? { callbackMethod: f.callback_method } : {}),
        ...(typeof f.language === 'string' ? { language: f.language } : {}),
        ...(isPlainObject(f.contact_details) ? { contactDetails: f.contact_details } : {}),
        ...(isPlainObject(f.expected_details) ? { expectedDetails: f.expected_details } : {}),
      },
      nowSeconds(),
    );
    await this.save(session);
    sendJson(res, 201, sessionCreatedDocument(this.baseUrl, session));
  }

  private async updateStatus(sessionId: string, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const s = this.byId.get(sessionId);
    if (!s) return sendJson(res, 404, { detail: 'Not found.' });
    const body = await this.readJson(req, res);
    if (!body.ok) return;
    const value = body.value;
    const newStatus = isPlainObject(value) ? value.new_status : undefined;
    if (newStatus !== 'Approved' && newStatus !== 'Declined' && newStatus !== 'Resubmitted') {
      return sendJson(res, 400, { new_status: [`"${String(newStatus)}" is not a valid choice.`] });
    }
    const comment = isPlainObject(value) && typeof value.comment === 'string' ? value.comment : null;
    s.reviews.push({ user: 'api', new_status: newStatus, comment, created_at: new Date().toISOString() });
    if (newStatus !== 'Resubmitted') {
      s.person ??= { ...DEFAULT_PERSON };
      s.outcome = newStatus;
    }
    await this.transition(s, newStatus);
    sendJson(res, 200, { session_id: s.sessionId, status: s.status });
  }

  /** Changes a session's status and announces it with a `status.updated` webhook. */
  private async transition(s: SandboxSession, status: string): Promise<void> {
    const now = nowSeconds();
    s.status = status;
    if (status !== 'In Progress') s.decidedAt = now;
    await this.save(s);
    if (this.dialect) {
      const payload = this.dialect.event(s, now, this.dialectContext);
      if (payload) await this.deliverer.enqueue({ event_id: randomUUID(), session_id: s.sessionId, payload });
      return;
    }
    const envelope: Record<string, unknown> = {
      event_id: randomUUID(),
      webhook_type: 'status.updated',
      timestamp: now,
      created_at: now,
      application_id: this.applicationId,
      environment: 'sandbox',
      session_id: s.sessionId,
      status: s.status,
      workflow_id: s.workflowId,
      workflow_version: s.workflowVersion,
    };
    if (s.vendorData !== undefined) envelope.vendor_data = s.vendorData;
    if (s.metadata !== undefined) envelope.metadata = s.metadata;
    if (DECISION_STATUSES.has(s.status)) envelope.decision = decisionDocument(this.baseUrl, s, now);
    await this.deliverer.enqueue(envelope);
  }

  private async showPage(s: SandboxSession, res: http.ServerResponse, opened: boolean): Promise<void> {
    if (!UNFINISHED_STATUSES.has(s.status)) return sendHtml(res, 200, resultPage(s, this.callbackUrl(s)));
    // Like Didit, opening the page starts the verification and says so by webhook.
    if (opened && s.status === 'Not Started') await this.transition(s, 'In Progress');
    sendHtml(res, 200, verificationPage(s, s.person ?? DEFAULT_PERSON));
  }

  private async submitPage(s: SandboxSession, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/x-www-form-urlencoded')
      return sendHtml(
        res,
        415,
        verificationPage(s, DEFAULT_PERSON, 'The form must be sent as application/x-www-form-urlencoded.'),
      );
    let raw: Buffer;
    try {
      raw = await readBody(req, MAX_FORM_BODY);
    } catch {
      if (!res.headersSent) sendHtml(res, 413, verificationPage(s, DEFAULT_PERSON, 'The form is too large.'));
      return;
    }
    if (!UNFINISHED_STATUSES.has(s.status)) return sendHtml(res, 409, resultPage(s, this.callbackUrl(s)));
    const form = new URLSearchParams(raw.toString('utf8'));
    const person: SandboxPerson = {
      firstName: (form.get('first_name') ?? DEFAULT_PERSON.firstName).trim(),
      lastName: (form.get('last_name') ?? DEFAULT_PERSON.lastName).trim(),
      dateOfBirth: (form.get('date_of_birth') ?? DEFAULT_PERSON.dateOfBirth).trim(),
    };
    const outcome = { approved: 'Approved', declined: 'Declined', in_review: 'In Review' }[
      form.get('decision') ?? ''
    ] as SandboxSession['outcome'];
    let error: string | undefined;
    if (!outcome) error = 'Choose Approve, Decline or Send to review.';
    else if (!person.firstName || !person.lastName || person.firstName.length > 100 || person.lastName.length > 100)
      error = 'First and last name are required (at most 100 characters).';
    else if (!validDate(person.dateOfBirth) || person.dateOfBirth > new Date().toISOString().slice(0, 10))
      error = 'The date of birth must be a past date (YYYY-MM-DD).';
    if (error || !outcome) return sendHtml(res, 400, verificationPage(s, person, error));
    s.person = person;
    s.outcome = outcome;
    await this.transition(s, outcome);
    sendHtml(res, 200, resultPage(s, this.callbackUrl(s)));
  }

  /** The session's callback with Didit's `verificationSessionId` and `status` query parameters. */
  private callbackUrl(s: SandboxSession): string | undefined {
    if (!s.callback) return undefined;
    const u = new URL(s.callback);
    u.searchParams.set('verificationSessionId', s.sessionId);
    u.searchParams.set('status', s.status);
    return u.toString();
  }
}

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}
