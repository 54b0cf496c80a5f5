/**
 * The verification-provider interface. The KYC gate talks to providers only through it; Didit is the first
 * implementation (src/providers/didit/), and the embedded sandbox (src/providers/sandbox/) serves Didit's API so
 * the same adapter runs the demo and the tests.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Logger } from 'pino';
import type { Services } from '../pipeline/services.js';

/** Provider statuses normalised for policy decisions. Only `approved` grants claims. */
export type VerificationState = 'unverified' | 'pending' | 'in_review' | 'approved' | 'declined' | 'expired';

export interface CreateSessionInput {
  workflowId: string;
  /** Pseudonymous subject id (keyed HMAC): never raw PII. */
  vendorData: string;
  /** Where the user's browser returns after verifying. */
  callback?: string;
  metadata?: Record<string, unknown>;
}

export interface ProviderSession {
  sessionId: string;
  /** Hosted verification page the user must open. */
  url: string;
  /** Provider's own status string, exactly as sent (e.g. "Not Started"). */
  status: string;
  state: VerificationState;
  workflowId: string;
  vendorData: string;
}

/** A decision with everything that must not be stored (images, presigned URLs) already removed. */
export interface VerificationResult {
  sessionId: string;
  status: string;
  state: VerificationState;
  workflowId: string;
  vendorData: string | undefined;
  /** Flat facts the claim mapping evaluates, e.g. { status: 'Approved', id_verification: 'Approved', aml: 'Approved', age: 34 }. */
  facts: Record<string, string | number | boolean>;
  /** Personal data a claim may need (encrypted at rest by the caller); empty unless present in the decision. */
  personal: { firstName?: string; lastName?: string; dateOfBirth?: string };
}

export interface WebhookEvent {
  eventId: string;
  sessionId: string;
  status: string;
  state: VerificationState;
  webhookType: string;
  /** Body `timestamp`, unix seconds: when this delivery was sent (a retried delivery is stamped again). */
  timestamp: number;
  /**
   * When the event itself happened (body `created_at`, unix seconds), present only when the whole body was
   * authenticated. Events are ordered by it: a retried delivery of an older event must not pass a newer one.
   */
  createdAt?: number;
  /**
   * Which signature authenticated it: Didit's `v2`, `raw` or `simple` (on `simple`, only sessionId, status,
   * webhookType and timestamp are trusted), or the scheme of another provider (`hmac-sha256`, `hmac_sha512_hex`,
   * Persona's `v1`), each over the whole raw body.
   */
  signature: string;
  workflowId?: string;
  vendorData?: string;
  /** Present only when the whole body was authenticated (v2 or raw) and the event carries a decision. */
  decision?: VerificationResult;
}

export type WebhookVerification =
  | { ok: true; event: WebhookEvent }
  | { ok: false; reason: 'missing_signature' | 'invalid_signature' | 'stale' | 'malformed' };

/** The provider could not be used: down, timing out, rate limiting us, or its breaker is open. */
export class ProviderUnavailable extends Error {
  constructor(
    message: string,
    /** Seconds after which trying again makes sense. */
    readonly retryAfterSeconds: number,
    readonly reason: 'timeout' | 'unreachable' | 'server_error' | 'rate_limited' | 'breaker_open',
  ) {
    super(message);
    this.name = 'ProviderUnavailable';
  }
}

/** The provider refused the request itself (bad workflow id, bad key): a configuration problem, not an outage. */
export class ProviderRejected extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
    this.name = 'ProviderRejected';
  }
}

export interface VerificationProvider {
  /** Name used in config and in `POST /webhooks/{name}`. */
  readonly name: string;
  createSession(input: CreateSessionInput): Promise<ProviderSession>;
  fetchDecision(sessionId: string): Promise<VerificationResult>;
  /** Verifies a webhook on its raw body before anything in it is trusted. `nowSeconds` is for tests. */
  verifyWebhook(rawBody: Buffer, headers: IncomingHttpHeaders, nowSeconds?: number): WebhookVerification;
  /** Breaker state, for readiness and metrics. */
  readonly health: { state: 'closed' | 'open' | 'half_open'; lastError?: string };
  /** For a provider the gateway runs itself (the sandbox): where its pages are served, named at start-up. */
  readonly pageUrl?: string;
  close?(): Promise<void>;
}

/** What a provider type gets to create one configured provider (`kyc.providers.<name>`). */
export interface ProviderFactoryContext {
  /** Provider name from config (also the `:provider` of `POST /webhooks/:provider`). */
  readonly name: string;
  /** The provider's config entry, `type` included, defaults of the type's schema filled in. */
  readonly config: Record<string, unknown>;
  /** Resolves a secret reference (`{env}` / `{file}` / `{vault}`); the value must never be logged. */
  resolveSecret(ref: unknown): string;
  /** Largest age, in seconds, of a webhook the provider may accept (`kyc.webhook_tolerance_seconds`). */
  readonly webhookToleranceSeconds: number;
  /** Base URL clients reach the gateway at; webhooks arrive at `${publicBaseUrl}/webhooks/${name}`. */
  readonly publicBaseUrl: string;
  readonly dataDir: string;
  readonly logger: Logger;
  readonly services: Services;
}

/**
 * A kind of verification provider `kyc.providers.<name>.type` may name (`didit`, `sandbox` ...). The KYC subsystem is given
 * the list of types it knows (src/bundled.ts), as the `authenticate` policy is given its authenticators.
 */
export interface ProviderType {
  readonly type: string;
  /** JSON Schema of a whole config entry, `type` included: validated, defaults filled in, before `create`. */
  readonly schema?: Record<string, unknown>;
  create(ctx: ProviderFactoryContext): VerificationProvider | Promise<VerificationProvider>;
}
