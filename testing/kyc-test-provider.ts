/**
 * A small identity provider for tests, spoken to over real HTTP: `TestProviderServer` is the provider's API (it
 * counts session creations, serves decisions, can be taken down) and signs webhooks with a plain HMAC header;
 * `TestProvider` is the gateway-side adapter implementing VerificationProvider against it. The test harness's gateways
 * know the type (TEST_PROVIDER_TYPE); a gateway child process loads it as a plugin
 * (`kycgate start --plugin dist/testing/kyc-test-provider-plugin.js`); config: `{type: test, url, webhook_secret}`.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import {
  ProviderRejected,
  ProviderUnavailable,
  type CreateSessionInput,
  type VerificationProvider,
  type VerificationResult,
  type ProviderSession,
  type VerificationState,
  type ProviderType,
  type WebhookVerification,
} from '../src/providers/provider.js';

export function stateOf(status: string): VerificationState {
  switch (status) {
    case 'Approved':
      return 'approved';
    case 'Declined':
      return 'declined';
    case 'In Review':
      return 'in_review';
    case 'Expired':
    case 'Abandoned':
    case 'Kyc Expired':
      return 'expired';
    default:
      return 'pending';
  }
}

export interface TestDecision {
  status: string;
  facts: Record<string, string | number | boolean>;
  personal?: { firstName?: string; lastName?: string; dateOfBirth?: string };
}

export interface TestWebhookBody {
  event_id: string;
  session_id: string;
  status: string;
  webhook_type: string;
  timestamp: number;
  /** When the event happened (unix seconds); deliveries are stamped with `timestamp`. */
  created_at?: number;
  vendor_data?: string;
  workflow_id?: string;
  decision?: TestDecision;
}

export function signTestWebhook(secret: string, body: string | Buffer): string {
  return createHmac('sha256', secret).update(body).digest('hex');
}

/** The provider's side: sessions API, decisions, webhook sender. */
export class TestProviderServer {
  readonly server: http.Server;
  url = '';
  /** Sessions created (POST /sessions answered 201). */
  created = 0;
  /** Sessions by id, with the vendor_data they were created for. */
  readonly sessions = new Map<string, { vendorData: string; workflowId: string }>();
  readonly decisions = new Map<string, TestDecision>();
  /** Delay before answering a session creation (widens race windows in tests). */
  createDelayMs = 0;
  /** When set, every API call answers this status (e.g. 503). */
  failWith: number | undefined;
  /** Runs after a session exists at the provider but before the gateway hears of it (early webhooks). */
  beforeAnswer: ((sessionId: string) => Promise<void>) | undefined;

  constructor(readonly webhookSecret: string) {
    this.server = http.createServer((req, res) => this.handle(req, res));
  }

  async start(port = 0): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(port, '127.0.0.1', () => resolve()));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (this.failWith !== undefined) {
        res.writeHead(this.failWith, { 'content-type': 'application/json' }).end('{"detail":"unavailable"}');
        return;
      }
      const url = req.url ?? '/';
      if (req.method === 'POST' && url === '/sessions') {
        const input = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
          workflow_id: string;
          vendor_data: string;
        };
        if (input.workflow_id === 'rejected-workflow') {
          res.writeHead(400, { 'content-type': 'application/json' }).end('{"detail":"unknown workflow"}');
          return;
        }
        const answer = async () => {
          this.created++;
          const id = randomUUID();
          this.sessions.set(id, { vendorData: input.vendor_data, workflowId: input.workflow_id });
          if (this.beforeAnswer) await this.beforeAnswer(id);
          res.writeHead(201, { 'content-type': 'application/json' }).end(
            JSON.stringify({
              session_id: id,
              url: `${this.url}/verify/${id}`,
              status: 'Not Started',
              workflow_id: input.workflow_id,
              vendor_data: input.vendor_data,
            }),
          );
        };
        if (this.createDelayMs > 0) setTimeout(() => void answer(), this.createDelayMs);
        else void answer();
        return;
      }
      const m = /^\/sessions\/([^/]+)\/decision$/.exec(url);
      if (req.method === 'GET' && m) {
        const decision = this.decisions.get(m[1]!);
        const session = this.sessions.get(m[1]!);
        if (!decision || !session) {
          res.writeHead(404, { 'content-type': 'application/json' }).end('{"detail":"not found"}');
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end(
          JSON.stringify({
            session_id: m[1],
            vendor_data: session.vendorData,
            workflow_id: session.workflowId,
            ...decision,
          }),
        );
        return;
      }
      res.writeHead(404).end();
    });
  }

  /** The session created for a pseudonymous subject (vendor_data). */
  sessionOf(vendorData: string): string | undefined {
    for (const [id, s] of this.sessions) if (s.vendorData === vendorData) return id;
    return undefined;
  }

  /** A signed webhook for `sessionId` (body and headers), ready to post. */
  webhook(
    sessionId: string,
    status: string,
    options: {
      eventId?: string;
      timestamp?: number;
      createdAt?: number;
      withDecision?: boolean;
      facts?: TestDecision['facts'];
      personal?: TestDecision['personal'];
    } = {},
  ): { body: string; headers: Record<string, string> } {
    const facts = options.facts ?? { status, document: 'P' };
    const decision: TestDecision = { status, facts, ...(options.personal ? { personal: options.personal } : {}) };
    this.decisions.set(sessionId, decision);
    const session = this.sessions.get(sessionId);
    const payload: TestWebhookBody = {
      event_id: options.eventId ?? randomUUID(),
      session_id: sessionId,
      status,
      webhook_type: 'status.updated',
      timestamp: options.timestamp ?? Math.floor(Date.now() / 1000),
      ...(options.createdAt !== undefined ? { created_at: options.createdAt } : {}),
      ...(session ? { vendor_data: session.vendorData, workflow_id: session.workflowId } : {}),
      ...(options.withDecision === false ? {} : { decision }),
    };
    const body = JSON.stringify(payload);
    return {
      body,
      headers: { 'content-type': 'application/json', 'x-test-signature': signTestWebhook(this.webhookSecret, body) },
    };
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** The gateway's side: an VerificationProvider over HTTP to a TestProviderServer. */
export class TestProvider implements VerificationProvider {
  readonly health: { state: 'closed' | 'open' | 'half_open'; lastError?: string } = { state: 'closed' };

  constructor(
    readonly name: string,
    private readonly url: string,
    private readonly secret: string,
    private readonly toleranceSeconds: number,
  ) {}

  private async call(method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
    let res: Response;
    try {
      res = await fetch(this.url + path, {
        method,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(2000),
      });
    } catch (err) {
      this.health.state = 'open';
      this.health.lastError = (err as Error).message;
      throw new ProviderUnavailable('test provider unreachable', 3, 'unreachable');
    }
    const text = await res.text();
    if (res.status >= 500 || res.status === 429) {
      this.health.state = 'open';
      throw new ProviderUnavailable(
        `test provider answered ${res.status}`,
        3,
        res.status === 429 ? 'rate_limited' : 'server_error',
      );
    }
    this.health.state = 'closed';
    if (res.status >= 400) throw new ProviderRejected(`test provider refused: ${res.status}`, res.status);
    return JSON.parse(text) as Record<string, unknown>;
  }

  async createSession(input: CreateSessionInput): Promise<ProviderSession> {
    const r = await this.call('POST', '/sessions', {
      workflow_id: input.workflowId,
      vendor_data: input.vendorData,
      callback: input.callback,
    });
    const status = String(r.status);
    return {
      sessionId: String(r.session_id),
      url: String(r.url),
      status,
      state: stateOf(status),
      workflowId: String(r.workflow_id),
      vendorData: String(r.vendor_data),
    };
  }

  async fetchDecision(sessionId: string): Promise<VerificationResult> {
    const r = await this.call('GET', `/sessions/${encodeURIComponent(sessionId)}/decision`);
    const status = String(r.status);
    return {
      sessionId,
      status,
      state: stateOf(status),
      workflowId: String(r.workflow_id),
      vendorData: r.vendor_data === undefined ? undefined : String(r.vendor_data),
      facts: (r.facts ?? {}) as VerificationResult['facts'],
      personal: (r.personal ?? {}) as VerificationResult['personal'],
    };
  }

  verifyWebhook(
    rawBody: Buffer,
    headers: IncomingHttpHeaders,
    nowSeconds = Math.floor(Date.now() / 1000),
  ): WebhookVerification {
    const signature = headers['x-test-signature'];
    if (typeof signature !== 'string' || signature === '') return { ok: false, reason: 'missing_signature' };
    const expected = Buffer.from(signTestWebhook(this.secret, rawBody), 'utf8');
    const given = Buffer.from(signature, 'utf8');
    if (given.length !== expected.length || !timingSafeEqual(given, expected))
      return { ok: false, reason: 'invalid_signature' };
    let body: TestWebhookBody;
    try {
      body = JSON.parse(rawBody.toString('utf8')) as TestWebhookBody;
    } catch {
      return { ok: false, reason: 'malformed' };
    }
    if (typeof body.event_id !== 'string' || typeof body.session_id !== 'string' || typeof body.timestamp !== 'number')
      return { ok: false, reason: 'malformed' };
    if (Math.abs(nowSeconds - body.timestamp) > this.toleranceSeconds) return { ok: false, reason: 'stale' };
    const state = stateOf(body.status);
    return {
      ok: true,
      event: {
        eventId: body.event_id,
        sessionId: body.session_id,
        status: body.status,
        state,
        webhookType: body.webhook_type,
        timestamp: body.timestamp,
        ...(typeof body.created_at === 'number' ? { createdAt: body.created_at } : {}),
        signature: 'raw',
        ...(body.workflow_id ? { workflowId: body.workflow_id } : {}),
        ...(body.vendor_data ? { vendorData: body.vendor_data } : {}),
        ...(body.decision
          ? {
              decision: {
                sessionId: body.session_id,
                status: body.decision.status,
                state: stateOf(body.decision.status),
                workflowId: body.workflow_id ?? '',
                vendorData: body.vendor_data,
                facts: body.decision.facts,
                personal: body.decision.personal ?? {},
              },
            }
          : {}),
      },
    };
  }
}

/** The provider type `test` (config: `{type: test, url, webhook_secret: <secret ref>}`). */
export const TEST_PROVIDER_TYPE: ProviderType = {
  type: 'test',
  schema: {
    type: 'object',
    properties: { type: { const: 'test' }, url: { type: 'string' }, webhook_secret: { type: 'object' } },
    required: ['type', 'url', 'webhook_secret'],
    additionalProperties: false,
  },
  create: (ctx) =>
    new TestProvider(
      ctx.name,
      String(ctx.config.url),
      ctx.resolveSecret(ctx.config.webhook_secret),
      ctx.webhookToleranceSeconds,
    ),
};
