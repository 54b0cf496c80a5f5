/**
 * The HTTP side every provider adapter shares: an undici Pool (or a ProxyAgent through an egress proxy) with
 * per-request timeouts, a circuit breaker, honouring 429 (Retry-After / X-RateLimit-Reset, then failing fast until
 * then) and mapping answers to ProviderUnavailable (outage, timeout, rate limit, breaker open) or ProviderRejected
 * (the vendor refused the request: a configuration problem). Messages never carry a key or a response body.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool, ProxyAgent, errors as undiciErrors, type Dispatcher } from 'undici';
import { ProviderRejected, ProviderUnavailable } from './provider.js';
import { CircuitBreaker, type BreakerState } from './breaker.js';
import { readBounded } from '../shared/bounded-body.js';

/** How one HTTP exchange with a provider ended: answered 2xx, timed out, or anything else (refusal, 5xx, network). */
export type ProviderCallOutcome = 'ok' | 'error' | 'timeout';
export type ProviderOperation = 'create_session' | 'fetch_decision';

/**
 * A fault a resilience test injects into one provider call (`kycgate faults arm --provider`): a delay before the
 * call goes out (bounded by the call's deadline, as a slow provider would be), then possibly a failure as the outage
 * it stands for. The breaker, the timeouts and the metrics see it exactly as they would see the real thing.
 */
export interface ProviderFaultEffect {
  delayMs?: number;
  fail?: 'server_error' | 'unreachable';
}

/** Defaults that answer a new user within 2 s whatever the provider does (docs/KYC.md, "A slow provider"). */
export const PROVIDER_CALL_DEFAULTS = {
  connectMs: 1000,
  headersMs: 1500,
  bodyMs: 1500,
  totalMs: 1500,
  slowCallMs: 1000,
  failureThreshold: 5,
  cooldownMs: 10_000,
} as const;

export interface ApiClientOptions {
  /** Vendor name in messages ("Didit", "Veriff" ...). */
  vendor: string;
  baseUrl: string;
  timeouts?:
    | {
        connectMs?: number | undefined;
        headersMs?: number | undefined;
        bodyMs?: number | undefined;
        totalMs?: number | undefined;
      }
    | undefined;
  breaker?:
    | {
        failureThreshold?: number | undefined;
        cooldownMs?: number | undefined;
        /** A call that takes longer, even one that succeeds, counts as a failure. */
        slowCallMs?: number | undefined;
        onStateChange?: ((state: BreakerState, lastError: string | undefined) => void) | undefined;
      }
    | undefined;
  /** Egress HTTP(S) proxy reached with CONNECT; `token` is the resolved Proxy-Authorization value. */
  proxy?: { url: string; token?: string | undefined } | undefined;
  /** Retry-after advised for outages without a Retry-After header, in seconds. Default 5. */
  outageRetryAfterSeconds?: number | undefined;
  /** Clock in milliseconds (tests). */
  now?: (() => number) | undefined;
  /** Called once per HTTP exchange (not for calls refused before sending), for metrics and traces. */
  onCall?: ((outcome: ProviderCallOutcome, latencyMs: number, operation: ProviderOperation) => void) | undefined;
  /** The fault armed on this provider for a call, if any (resilience tests). */
  faults?: ((operation: ProviderOperation) => ProviderFaultEffect | undefined) | undefined;
}

export interface ApiRequest {
  method: 'GET' | 'POST' | 'PATCH';
  /** Path below the base URL, query included. */
  path: string;
  /** Serialised body (sent as is, so a signature over it stays valid). */
  body?: string | undefined;
  headers: Record<string, string>;
  operation: ProviderOperation;
  /** The request as named in messages, without ids (e.g. "GET /v1/sessions/{id}/decision"). */
  label: string;
}

/** Largest response body read from a provider (decision documents stay far below). */
const MAX_RESPONSE_BYTES = 4 * 1024 * 1024;

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

export class ProviderApiClient {
  readonly vendor: string;
  private readonly dispatcher: Dispatcher;
  private readonly origin: string;
  /** Path of the base URL (without a trailing slash), prefixed to every request path. */
  readonly basePath: string;
  private readonly breaker: CircuitBreaker;
  private readonly headersMs: number;
  private readonly bodyMs: number;
  private readonly totalMs: number;
  private readonly slowCallMs: number;
  private readonly faults: ApiClientOptions['faults'];
  private readonly outageRetryAfter: number;
  readonly now: () => number;
  /** Set by a 429: calls fail fast until then instead of adding to the provider's load. */
  private rateLimitedUntilMs = 0;
  private readonly onCall: ApiClientOptions['onCall'];

  constructor(options: ApiClientOptions) {
    this.vendor = options.vendor;
    const base = new URL(options.baseUrl);
    if (base.protocol !== 'https:' && base.protocol !== 'http:')
      throw new TypeError(`${options.vendor} base_url must be http(s)`);
    this.basePath = base.pathname.replace(/\/+$/, '');
    this.origin = base.origin;
    const d = PROVIDER_CALL_DEFAULTS;
    this.headersMs = options.timeouts?.headersMs ?? d.headersMs;
    this.bodyMs = options.timeouts?.bodyMs ?? d.bodyMs;
    this.totalMs = options.timeouts?.totalMs ?? d.totalMs;
    this.slowCallMs = options.breaker?.slowCallMs ?? d.slowCallMs;
    this.faults = options.faults;
    const connection = {
      connectTimeout: options.timeouts?.connectMs ?? d.connectMs,
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
    this.outageRetryAfter = options.outageRetryAfterSeconds ?? 5;
    this.now = options.now ?? Date.now;
    this.onCall = options.onCall;
    this.breaker = new CircuitBreaker({
      failureThreshold: options.breaker?.failureThreshold ?? d.failureThreshold,
      cooldownMs: options.breaker?.cooldownMs ?? d.cooldownMs,
      now: this.now,
      onStateChange: options.breaker?.onStateChange,
    });
  }

  get health(): { state: BreakerState; lastError?: string } {
    const lastError = this.breaker.lastError;
    return lastError === undefined ? { state: this.breaker.state } : { state: this.breaker.state, lastError };
  }

  /** One API call through the rate-limit gate and the breaker; resolves with the JSON object answered. */
  call(request: ApiRequest): Promise<Record<string, unknown>> {
    const label = `${this.vendor} ${request.label}`;
    const wait = this.rateLimitedUntilMs - this.now();
    if (wait > 0)
      return Promise.reject(
        new ProviderUnavailable(`${label}: rate limited by ${this.vendor}`, Math.ceil(wait / 1000), 'rate_limited'),
      );
    return this.breaker.run(() => this.send(request, label), isOutage, this.slowCallMs);
  }

  async close(): Promise<void> {
    await this.dispatcher.close();
  }

  private async send(request: ApiRequest, label: string): Promise<Record<string, unknown>> {
    if (this.onCall === undefined) return this.exchange(request, label);
    const started = performance.now();
    let outcome: ProviderCallOutcome = 'error';
    try {
      const doc = await this.exchange(request, label);
      outcome = 'ok';
      return doc;
    } catch (err) {
      if (err instanceof ProviderUnavailable && err.reason === 'timeout') outcome = 'timeout';
      throw err;
    } finally {
      this.onCall(outcome, performance.now() - started, request.operation);
    }
  }

  private async exchange(request: ApiRequest, label: string): Promise<Record<string, unknown>> {
    const headers: Record<string, string> = { accept: 'application/json', ...request.headers };
    if (request.body !== undefined) headers['content-type'] ??= 'application/json';
    // One deadline for the whole call (connect, head, body): a provider that accepts connections and never
    // answers costs the caller at most this long.
    const deadline = AbortSignal.timeout(this.totalMs);
    const fault = this.faults?.(request.operation);
    if (fault !== undefined) await this.inject(fault, deadline, label);
    let response: Dispatcher.ResponseData;
    try {
      response = await this.dispatcher.request({
        signal: deadline,
        origin: this.origin,
        method: request.method,
        path: this.basePath + request.path,
        headers,
        body: request.body,
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
      throw this.transportError(deadline.aborted ? deadline.reason : err, label);
    }
    const vendor = this.vendor;
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
      throw new ProviderUnavailable(`${label}: rate limited by ${vendor} (429)`, seconds, 'rate_limited');
    }
    if (statusCode >= 500) {
      const retryAfter = secondsUntil(response.headers['retry-after'], this.now(), 'retry-after');
      throw new ProviderUnavailable(
        `${label}: ${vendor} answered ${statusCode}`,
        Math.max(1, retryAfter ?? this.outageRetryAfter),
        'server_error',
      );
    }
    if (statusCode < 200 || statusCode >= 300)
      throw new ProviderRejected(`${label}: ${vendor} refused the request (${statusCode})`, statusCode);
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch {
      throw new ProviderUnavailable(
        `${label}: ${vendor} answered ${statusCode} with a body that is not JSON`,
        this.outageRetryAfter,
        'server_error',
      );
    }
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
      throw new ProviderUnavailable(
        `${label}: ${vendor} answered ${statusCode} with a body that is not a JSON object`,
        this.outageRetryAfter,
        'server_error',
      );
    }
    return doc as Record<string, unknown>;
  }

  /** Applies an injected fault: waits (never past the deadline, which then times the call out), then fails. */
  private async inject(fault: ProviderFaultEffect, deadline: AbortSignal, label: string): Promise<void> {
    if (fault.delayMs !== undefined) {
      try {
        await sleep(fault.delayMs, undefined, { signal: deadline });
      } catch {
        throw this.transportError(deadline.reason, label);
      }
    }
    if (fault.fail === 'server_error') {
      throw new ProviderUnavailable(
        `${label}: ${this.vendor} answered 503 (fault injected)`,
        this.outageRetryAfter,
        'server_error',
      );
    }
    if (fault.fail === 'unreachable') {
      throw new ProviderUnavailable(
        `${label}: unreachable (ECONNRESET, fault injected)`,
        this.outageRetryAfter,
        'unreachable',
      );
    }
  }

  private transportError(err: unknown, label: string): ProviderUnavailable {
    if (err instanceof ProviderUnavailable) return err;
    if ((err as Error | undefined)?.name === 'TimeoutError') {
      return new ProviderUnavailable(
        `${label}: timed out (deadline ${this.totalMs} ms)`,
        this.outageRetryAfter,
        'timeout',
      );
    }
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
