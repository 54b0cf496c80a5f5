/**
 * What the Veriff, Onfido, Sumsub and Persona adapters share: one ProviderApiClient each (pool, deadlines, breaker,
 * 429 handling, fault hook), the resolved secrets, the webhook freshness settings, and the refusal of session calls
 * when no API key is configured (such a provider only verifies webhooks).
 */
import type { IncomingHttpHeaders } from 'node:http';
import {
  ProviderRejected,
  type CreateSessionInput,
  type ProviderSession,
  type VerificationProvider,
  type VerificationResult,
  type WebhookVerification,
} from './provider.js';
import { ProviderApiClient, type ApiClientOptions, type ApiRequest } from './api-client.js';
import type { BreakerState } from './breaker.js';

export interface VendorAdapterOptions {
  /** Name in config and in `POST /webhooks/{name}`. Default: the vendor's type name. */
  name?: string | undefined;
  baseUrl?: string | undefined;
  /** Resolved API key (or token); without one the provider only verifies webhooks. */
  apiKey: string | undefined;
  /** Resolved webhook secret (Veriff: the shared secret key, which also signs API requests). */
  webhookSecret: string;
  timeouts?: ApiClientOptions['timeouts'];
  breaker?: ApiClientOptions['breaker'];
  proxy?: ApiClientOptions['proxy'];
  outageRetryAfterSeconds?: number | undefined;
  /** Clock in milliseconds (tests). */
  now?: (() => number) | undefined;
  onCall?: ApiClientOptions['onCall'];
  faults?: ApiClientOptions['faults'];
  webhook?: VendorWebhookOptions | undefined;
}

export interface VendorWebhookOptions {
  /** Oldest accepted signed delivery timestamp (Persona's `t`), in seconds. Default 300. */
  toleranceSeconds?: number | undefined;
  /** How far in the future a timestamp may be (clock skew), in seconds. Default 60. */
  maxFutureSkewSeconds?: number | undefined;
  /** Oldest accepted event, judged on the event's own time where no delivery timestamp is signed. Default 3 days. */
  maxEventAgeSeconds?: number | undefined;
}

export const DEFAULT_MAX_EVENT_AGE_SECONDS = 3 * 86_400;

export abstract class VendorProvider implements VerificationProvider {
  readonly name: string;
  protected readonly api: ProviderApiClient;
  protected readonly apiKey: string | undefined;
  protected readonly webhookSecret: string;
  protected readonly toleranceSeconds: number;
  protected readonly maxFutureSkewSeconds: number;
  protected readonly maxEventAgeSeconds: number;

  constructor(
    protected readonly vendor: string,
    defaultName: string,
    defaultBaseUrl: string,
    options: VendorAdapterOptions,
  ) {
    this.name = options.name ?? defaultName;
    this.apiKey = options.apiKey;
    this.webhookSecret = options.webhookSecret;
    this.toleranceSeconds = options.webhook?.toleranceSeconds ?? 300;
    this.maxFutureSkewSeconds = options.webhook?.maxFutureSkewSeconds ?? 60;
    this.maxEventAgeSeconds = options.webhook?.maxEventAgeSeconds ?? DEFAULT_MAX_EVENT_AGE_SECONDS;
    this.api = new ProviderApiClient({
      vendor,
      baseUrl: options.baseUrl ?? defaultBaseUrl,
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

  abstract createSession(input: CreateSessionInput): Promise<ProviderSession>;
  abstract fetchDecision(sessionId: string): Promise<VerificationResult>;
  abstract verifyWebhook(rawBody: Buffer, headers: IncomingHttpHeaders, nowSeconds?: number): WebhookVerification;

  async close(): Promise<void> {
    await this.api.close();
  }

  protected nowSeconds(): number {
    return Math.floor(this.api.now() / 1000);
  }

  /** Path of the base URL, for schemes that sign the request path (Sumsub). */
  protected get basePath(): string {
    return this.api.basePath;
  }

  /** One API call; `auth` gives the headers that authenticate it (they may depend on the body and path). */
  protected send(
    request: Omit<ApiRequest, 'headers' | 'body'> & { body?: unknown },
    auth: (apiKey: string, body: string | undefined) => Record<string, string>,
  ): Promise<Record<string, unknown>> {
    const apiKey = this.apiKey;
    if (apiKey === undefined)
      return Promise.reject(
        new ProviderRejected(
          `${this.vendor} ${request.label}: no API key is configured for this provider (webhook verification only)`,
          401,
        ),
      );
    const body = request.body === undefined ? undefined : JSON.stringify(request.body);
    return this.api.call({ ...request, body, headers: auth(apiKey, body) });
  }
}

/** Refuses an id that could change the request path before it is put into one. */
export function checkedId(vendor: string, id: string, pattern = /^[A-Za-z0-9_.:-]{1,160}$/): string {
  if (!pattern.test(id)) throw new ProviderRejected(`invalid ${vendor} session id`, 400);
  return id;
}
