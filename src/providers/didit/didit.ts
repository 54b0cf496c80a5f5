/**
 * The Didit adapter: creates verification sessions, fetches decisions and verifies webhooks. Calls go through
 * an undici Pool with per-request timeouts and a circuit breaker. Errors are values the KYC gate can act on:
 * ProviderUnavailable (outage, timeout, rate limit, breaker open: try again after `retryAfterSeconds`) or
 * ProviderRejected (Didit refused the request: a configuration problem). Messages never carry the API key or a
 * response body.
 */
import type { IncomingHttpHeaders } from 'node:http';
import {
  ProviderRejected,
  type CreateSessionInput,
  type VerificationProvider,
  type VerificationResult,
  type ProviderSession,
  type WebhookVerification,
} from '../provider.js';
import type { BreakerState } from '../breaker.js';
import {
  ProviderApiClient,
  type ApiClientOptions,
  type ProviderCallOutcome,
  type ProviderOperation,
} from '../api-client.js';
import { decisionFromDidit } from './decision.js';
import { diditStatusToState } from './statuses.js';
import { verifyDiditWebhook, type DiditSignatureKind } from './signature.js';

export { secondsUntil, type ProviderCallOutcome, type ProviderOperation } from '../api-client.js';

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
  timeouts?: { connectMs?: number; headersMs?: number; bodyMs?: number; totalMs?: number };
  breaker?: {
    failureThreshold?: number;
    cooldownMs?: number;
    slowCallMs?: number;
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
  /** The fault armed on this provider for a call, if any (resilience tests). */
  faults?: ApiClientOptions['faults'];
}

const SESSION_ID = /^[A-Za-z0-9_-]{1,128}$/;

export class DiditProvider implements VerificationProvider {
  readonly name: string;
  private readonly api: ProviderApiClient;
  private readonly apiKey: string | undefined;
  private readonly webhookSecret: string;
  private readonly webhook: NonNullable<DiditProviderOptions['webhook']>;

  constructor(options: DiditProviderOptions) {
    this.name = options.name ?? 'didit';
    this.apiKey = options.apiKey;
    this.webhookSecret = options.webhookSecret;
    this.webhook = options.webhook ?? {};
    this.api = new ProviderApiClient({
      vendor: 'Didit',
      baseUrl: options.baseUrl ?? DIDIT_DEFAULT_BASE_URL,
      timeouts: options.timeouts,
      breaker: options.breaker,
      proxy: options.proxy,
      outageRetryAfterSeconds: options.outageRetryAfterSeconds,
      now: options.now,
      onCall: options.onCall,
      faults: options.faults,
    });
  }

  get health(): { state: BreakerState; lastError?: string } {
    return this.api.health;
  }

  async createSession(input: CreateSessionInput): Promise<ProviderSession> {
    const body: Record<string, unknown> = { workflow_id: input.workflowId, vendor_data: input.vendorData };
    if (input.callback !== undefined) body.callback = input.callback;
    if (input.metadata !== undefined) body.metadata = input.metadata;
    const doc = await this.call('POST', '/v3/session/', body, 'create_session', 'POST /v3/session/');
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
    const doc = await this.call(
      'GET',
      `/v3/session/${sessionId}/decision/`,
      undefined,
      'fetch_decision',
      'GET /v3/session/{id}/decision/',
    );
    return decisionFromDidit(doc, Math.floor(this.api.now() / 1000), { sessionId });
  }

  verifyWebhook(rawBody: Buffer, headers: IncomingHttpHeaders, nowSeconds?: number): WebhookVerification {
    return verifyDiditWebhook(rawBody, headers, {
      secret: this.webhookSecret,
      toleranceSeconds: this.webhook.toleranceSeconds,
      maxFutureSkewSeconds: this.webhook.maxFutureSkewSeconds,
      accept: this.webhook.accept,
      nowSeconds: nowSeconds ?? Math.floor(this.api.now() / 1000),
    });
  }

  async close(): Promise<void> {
    await this.api.close();
  }

  private call(
    method: 'GET' | 'POST',
    path: string,
    body: unknown,
    operation: ProviderOperation,
    label: string,
  ): Promise<Record<string, unknown>> {
    if (this.apiKey === undefined)
      return Promise.reject(
        new ProviderRejected(
          `Didit ${label}: no API key is configured for this provider (webhook verification only)`,
          401,
        ),
      );
    return this.api.call({
      method,
      path,
      body: body === undefined ? undefined : JSON.stringify(body),
      headers: { 'x-api-key': this.apiKey },
      operation,
      label,
    });
  }
}
