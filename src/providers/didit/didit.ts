/**
 * The Didit adapter: creates verification sessions, fetches decisions and verifies webhooks. Calls go through
 * an undici Pool with per-request timeouts and a circuit breaker. Errors are values the KYC gate can act on:
 * ProviderUnavailable (outage, timeout, rate limit, breaker open: try again after `retryAfterSeconds`) or
 * ProviderRejected (Didit refused the request: a configuration problem). Messages never carry the API key or a
 * response body.
 */
import { Pool, ProxyAgent, errors as undiciErrors, type Dispatcher } from 'undici';
import type { IncomingHttpHeaders } from 'node:http';
import {
  ProviderRejected,
  ProviderUnavailable,
  type CreateSessionInput,
  type VerificationProvider,
  type VerificationResult,
  type ProviderSession,
  type WebhookVerification,
} from '../provider.js';
import { CircuitBreaker, type BreakerState } from '../breaker.js';
import { decisionFromDidit } from './decision.js';
import { diditStatusToState } from './statuses.js';
import { verifyDiditWebhook, type DiditSignatureKind } from './signature.js';
import { readBounded } from '../../shared/bounded-body.js';

export const DIDIT_DEFAULT_BASE_URL = 'https://verification.didit.me';

export interface DiditProviderOptions {
  /** Name in config and in `POST /webhooks/{name}`. Default "didit". */
  name?: string;
  baseUrl?: string;
  /** Resolved API key. */
  /** Didit API key; without one the provider only verifies webhooks (session calls are refused). */
  apiKey: string | undefined;
  /** Resolved webhook secret. */
  webhookSecret: string;
  timeouts?: { connectMs?: number; headersMs?: number; bodyMs?: number };
  breaker?: {
    failureThreshold?: number;
    cooldownMs?: number;
    onStateChange?: (state: BreakerState, lastError: string | undefined) => void;
  };
  webhook?: { toleranceSeconds?: number; maxFutureSkewSeconds?: number; accept?: readonly DiditSignatureKind[] };
  /** Egress HTTP(S) proxy reached with CONNECT; `token` is the resolved Proxy-Authorization value. */
  proxy?: { url: string; token?: string };
  /** Retry-after advised for outages without a Retry-After header, in seconds. Default 5. */
  outageRetryAfterSeconds?: number;
  /** Clock in milliseconds (tests). */
  now?: () => number;
  /** Called once per HTTP exchange with Didit (not for calls refused before sending), for metrics and traces. */
  onCall?: (outcome: ProviderCallOutcome, latencyMs: number, operation: ProviderOperation) => void;
}

/** How one HTTP exchange with Didit ended: answered 2xx, timed out, or anything else (refusal, 5xx, network). */
export type ProviderCallOutcome = 'ok' | 'error' | 'timeout';
export type ProviderOperation = 'create_session' | 'fetch_decision';

/** Largest response body read from Didit (decision documents with many features stay far below). */
const MAX_RESPONSE_BYTES = 4 * 1024 * 1024;
const SESSION_ID = /^[A-Za-z0-9_-]{1,128}$/;

/** Seconds until a Retry-After value (delta seconds or HTTP date) or an X-RateLimit-Reset value (delta or epoch). */
export function secondsUntil(
  value: string | string[] | undefined,
  nowMs: number,
  kind: 'retry-after' | 'reset',
): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined || v.trim() === '') return undefined;
  const t = v.trim();
  if (/^\d+(\.\d+)?$/.test(t)) {
    const n = Number(t);
    // X-RateLimit-Reset is sometimes an epoch timestamp rather than a delta: anything past 2001 is taken as one.
    if (kind === 'reset' && n > 1e9) return Math.max(0, Math.ceil(n - nowMs / 1000));
    return Math.ceil(n);
  }
  if (kind === 'retry-after') {
    const date = Date.parse(t);
    if (!Number.isNaN(date)) return Math.max(0, Math.ceil((date - nowMs) / 1000));
  }
  return undefined;
}

function isOutage(err: unknown): boolean {
  return err instanceof ProviderUnavailable && err.reason !== 'rate_limited' && err.reason !== 'breaker_open';
}

export class DiditProvider implements VerificationProvider {
  readonly name: string;
  private readonly dispatcher: Dispatcher;
  private readonly origin: string;
  private readonly basePath: string;
  private readonly apiKey: string | undefined;
  private readonly webhookSecret: string;
  private readonly breaker: CircuitBreaker;
  private readonly headersMs: number;
  private readonly bodyMs: number;
  private readonly webhook: NonNullable<DiditProviderOptions['webhook']>;
  private readonly outageRetryAfter: number;
  private readonly now: () => number;
  /** Set by a 429: calls fail fast until then instead of adding to the provider's load. */
  private rateLimitedUntilMs = 0;
  private readonly onCall: DiditProviderOptions['onCall'];

  constructor(options: DiditProviderOptions) {
    this.name = options.name ?? 'didit';
    const base = new URL(options.baseUrl ?? DIDIT_DEFAULT_BASE_URL);
    if (base.protocol !== 'https:' && base.protocol !== 'http:') throw new TypeError('Didit base_url must be http(s)');
    this.basePath = base.pathname.replace(/\/+$/, '');
    this.apiKey = options.apiKey;
    this.webhookSecret = options.webhookSecret;
    this.headersMs = options.timeouts?.headersMs ?? 5000;
    this.bodyMs = options.timeouts?.bodyMs ?? 5000;
    this.origin = base.origin;
    const connection = {
      connectTimeout: options.timeouts?.connectMs ?? 3000,
      headersTimeout: this.headersMs,
      bodyTimeout: this.bodyMs,
      keepAliveTimeout: 4000,
    };
    this.dispatcher = options.proxy
      ? new ProxyAgent({
          uri: options.proxy.url,
          ...(options.proxy.token ? { token: options.proxy.token } : {}),
          proxyTunnel: true,
          ...connection,
        })
      : new Pool(base.origin, { connections: 16, ...connection });
    this.webhook = options.webhook ?? {};
    this.outageRetryAfter = options.outageRetryAfterSeconds ?? 5;
    this.now = options.now ?? Date.now;
    this.onCall = options.onCall;
    this.breaker = new CircuitBreaker({
      failureThreshold: options.breaker?.failureThreshold,
      cooldownMs: options.breaker?.cooldownMs,
      now: this.now,
      onStateChange: options.breaker?.onStateChange,
    });
  }

  get health(): { state: BreakerState; lastError?: string } {
    const lastError = this.breaker.lastError;
    return lastError === undefined ? { state: this.breaker.state } : { state: this.breaker.state, lastError };
  }

  async createSession(input: CreateSessionInput): Promise<ProviderSession> {
    const body: Record<string, unknown> = { workflow_id: input.workflowId, vendor_data: input.vendorData };
    if (input.callback !== undefined) body.callback = input.callback;
    if (input.metadata !== undefined) body.metadata = input.metadata;
    const doc = await this.call('POST', '/v3/session/', body, 'create_session');
    const sessionId = doc.session_id;
    const url = doc.url;
    const status = typeof doc.status === 'string' ? doc.status : 'Not Started';
    if (typeof sessionId !== 'string' || typeof url !== 'string')
      throw new ProviderRejected('Didit POST /v3/session/ answered without session_id or url', 502);
    return {
      sessionId,
      url,
      status,
      state: diditStatusToState(status),
      workflowId: typeof doc.workflow_id === 'string' ? doc.workflow_id : input.workflowId,
      vendorData: typeof doc.vendor_data === 'string' ? doc.vendor_data : input.vendorData,
    };
  }

  async fetchDecision(sessionId: string): Promise<VerificationResult> {
    if (!SESSION_ID.test(sessionId)) throw new ProviderRejected('invalid Didit session id', 400);
    const doc = await this.call('GET', `/v3/session/${sessionId}/decision/`, undefined, 'fetch_decision');
    return decisionFromDidit(doc, Math.floor(this.now() / 1000), { sessionId });
  }

  verifyWebhook(rawBody: Buffer, headers: IncomingHttpHeaders, nowSeconds?: number): WebhookVerification {
    return verifyDiditWebhook(rawBody, headers, {
      secret: this.webhookSecret,
      toleranceSeconds: this.webhook.toleranceSeconds,
      maxFutureSkewSeconds: this.webhook.maxFutureSkewSeconds,
      accept: this.webhook.accept,
      nowSeconds: nowSeconds ?? Math.floor(this.now() / 1000),
    });
  }

  async close(): Promise<void> {
    await this.dispatcher.close();
  }

  /** One API call through the rate-limit gate and the breaker; resolves with the JSON object answered. */
  private async call(
    method: 'GET' | 'POST',
    path: string,
    body: unknown,
    operation: ProviderOperation,
  ): Promise<Record<string, unknown>> {
    const label = `Didit ${method} ${path.replace(/\/session\/[^/]+\/decision\//, '/session/{id}/decision/')}`;
    if (this.apiKey === undefined)
      throw new ProviderRejected(
        `${label}: no API key is configured for this provider (webhook verification only)`,
        401,
      );
    const wait = this.rateLimitedUntilMs - this.now();
    if (wait > 0)
      throw new ProviderUnavailable(`${label}: rate limited by Didit`, Math.ceil(wait / 1000), 'rate_limited');
    return this.breaker.run(() => this.send(method, path, body, label, operation), isOutage);
  }

  /** One HTTP exchange, reported to `onCall` with its outcome and latency. */
  private async send(
    method: 'GET' | 'POST',
    path: string,
    body: unknown,
    label: string,
    operation: ProviderOperation,
  ): Promise<Record<string, unknown>> {
    if (this.onCall === undefined) return this.exchange(method, path, body, label);
    const started = performance.now();
    let outcome: ProviderCallOutcome = 'error';
    try {
      const doc = await this.exchange(method, path, body, label);
      outcome = 'ok';
      return doc;
    } catch (err) {
      if (err instanceof ProviderUnavailable && err.reason === 'timeout') outcome = 'timeout';
      throw err;
    } finally {
      this.onCall(outcome, performance.now() - started, operation);
    }
  }

  private async exchange(
    method: 'GET' | 'POST',
    path: string,
    body: unknown,
    label: string,
  ): Promise<Record<string, unknown>> {
    const headers: Record<string, string> = { 'x-api-key': this.apiKey!, accept: 'application/json' };
    let payload: string | undefined;
    if (body !== undefined) {
      payload = JSON.stringify(body);
      headers['content-type'] = 'application/json';
    }
    let response: Dispatcher.ResponseData;
    try {
      response = await this.dispatcher.request({
        origin: this.origin,
        method,
        path: this.basePath + path,
        headers,
        body: payload,
        headersTimeout: this.headersMs,
        bodyTimeout: this.bodyMs,
      });
    } catch (err) {
      throw this.transportError(err, label);
    }
    const { statusCode } = response;
    let text: string;
    try {
      text = await readBounded(response.body, MAX_RESPONSE_BYTES);
    } catch (err) {
      throw this.transportError(err, label);
    }
    if (statusCode === 429) {
      const now = this.now();
      const retryAfter = secondsUntil(response.headers['retry-after'], now, 'retry-after');
      const reset = secondsUntil(response.headers['x-ratelimit-reset'], now, 'reset');
      const seconds = Math.max(
        1,
        retryAfter ?? 0,
        reset ?? 0,
        retryAfter === undefined && reset === undefined ? 60 : 0,
      );
      this.rateLimitedUntilMs = now + seconds * 1000;
      throw new ProviderUnavailable(`${label}: rate limited by Didit (429)`, seconds, 'rate_limited');
    }
    if (statusCode >= 500) {
      const retryAfter = secondsUntil(response.headers['retry-after'], this.now(), 'retry-after');
      throw new ProviderUnavailable(
        `${label}: Didit answered ${statusCode}`,
        Math.max(1, retryAfter ?? this.outageRetryAfter),
        'server_error',
      );
    }
    if (statusCode < 200 || statusCode >= 300)
      throw new ProviderRejected(`${label}: Didit refused the request (${statusCode})`, statusCode);
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch {
      throw new ProviderUnavailable(
        `${label}: Didit answered ${statusCode} with a body that is not JSON`,
        this.outageRetryAfter,
        'server_error',
      );
    }
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
      throw new ProviderUnavailable(
        `${label}: Didit answered ${statusCode} with a body that is not a JSON object`,
        this.outageRetryAfter,
        'server_error',
      );
    }
    return doc as Record<string, unknown>;
  }

  private transportError(err: unknown, label: string): ProviderUnavailable {
    if (err instanceof ProviderUnavailable) return err;
    if (
      err instanceof undiciErrors.ConnectTimeoutError ||
      err instanceof undiciErrors.HeadersTimeoutError ||
      err instanceof undiciErrors.BodyTimeoutError
    ) {
      return new ProviderUnavailable(`${label}: timed out (${(err as Error).name})`, this.outageRetryAfter, 'timeout');
    }
    const code = (err as NodeJS.ErrnoException | undefined)?.code;
    return new ProviderUnavailable(
      `${label}: unreachable (${typeof code === 'string' ? code : 'network error'})`,
      this.outageRetryAfter,
      'unreachable',
    );
  }
}
