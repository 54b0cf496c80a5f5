/**
 * Config schema of a `didit` provider entry, for the KYC subsystem to embed under its providers. Secrets are
 * references (`{env: NAME}` or `{file: PATH}`), resolved by the subsystem and handed to DiditProvider as strings.
 */
import { secretRefSchema } from '../../config/secret-ref-schema.js';

export const providerTimeoutsSchema = {
  type: 'object',
  description:
    'Timeouts for calls to the provider API. A timeout counts as an outage for the circuit breaker. The defaults answer ' +
    'a new user within 2 s whatever the provider does (a frozen process, a black-holed route): raise them only if the ' +
    'provider\'s own latency needs it (docs/KYC.md, "A slow provider").',
  properties: {
    connect_ms: {
      type: 'integer',
      minimum: 1,
      default: 1000,
      description: 'Time allowed to open the connection (TCP and TLS).',
    },
    headers_ms: {
      type: 'integer',
      minimum: 1,
      default: 1500,
      description: 'Time allowed between sending the request and receiving the response head.',
    },
    body_ms: {
      type: 'integer',
      minimum: 1,
      default: 1500,
      description: 'Longest pause allowed between two chunks of the response body.',
    },
    total_ms: {
      type: 'integer',
      minimum: 1,
      default: 1500,
      description: 'Deadline of a whole call (connect, response head and body): past it the call fails as a timeout.',
    },
  },
  additionalProperties: false,
} as const;

export const breakerSchema = {
  type: 'object',
  description:
    'Circuit breaker around provider calls: after `failure_threshold` consecutive failures (timeouts, network ' +
    'errors, 5xx, and calls slower than `slow_call_ms` even when they succeed) calls fail at once for `cooldown_ms`; ' +
    'then one probe call is let through, which closes it again if the provider answers in time.',
  properties: {
    failure_threshold: {
      type: 'integer',
      minimum: 1,
      default: 5,
      description: 'Consecutive failures that open the breaker.',
    },
    cooldown_ms: {
      type: 'integer',
      minimum: 0,
      default: 10000,
      description: 'How long the breaker stays open before a probe call is allowed.',
    },
    slow_call_ms: {
      type: 'integer',
      minimum: 1,
      default: 1000,
      description: 'A call that takes longer counts as a failure (a provider slowing down opens the breaker too).',
    },
  },
  additionalProperties: false,
} as const;

export const webhookVerificationSchema = {
  type: 'object',
  description: 'How incoming webhooks from this provider are verified.',
  properties: {
    tolerance_s: {
      type: 'integer',
      minimum: 1,
      description:
        'Oldest accepted webhook, in seconds, judged on the body `timestamp` (the X-Timestamp header is not signed). Default: `kyc.webhook_tolerance_seconds`.',
    },
    max_future_skew_s: {
      type: 'integer',
      minimum: 0,
      default: 60,
      description: 'How far in the future a webhook `timestamp` may be (clock skew).',
    },
    signatures: {
      type: 'array',
      items: { enum: ['v2', 'raw', 'simple'] },
      minItems: 1,
      uniqueItems: true,
      default: ['v2', 'raw', 'simple'],
      description:
        'Signatures accepted, tried in the order v2 (X-Signature-V2), raw (X-Signature), simple ' +
        '(X-Signature-Simple). Drop `simple` to require that the whole body be authenticated; events ' +
        'verified by `simple` carry only session id, status, type and timestamp, never a decision.',
    },
  },
  additionalProperties: false,
} as const;

export const diditProviderSchema = {
  type: 'object',
  description:
    'Didit (didit.me) identity verification: sessions are created through its API, results arrive by signed webhook and can be fetched as decisions.',
  properties: {
    type: { const: 'didit', description: 'Provider type.' },
    base_url: {
      type: 'string',
      pattern: '^https?://',
      default: 'https://verification.didit.me',
      description:
        "Didit API base URL. The default is Didit's production API (sandbox applications use the same URL with their own key).",
    },
    api_key: {
      ...secretRefSchema,
      description:
        'Didit API key (sent as `x-api-key`), as a secret reference. Without it the provider only verifies webhooks; starting sessions is refused.',
    },
    webhook_secret: {
      ...secretRefSchema,
      description: 'Didit webhook secret key used to verify webhook signatures, as a secret reference.',
    },
    proxy: {
      type: 'object',
      description: 'Egress proxy for calls to Didit (HTTP CONNECT tunnel; TLS to Didit stays end to end).',
      properties: {
        url: {
          type: 'string',
          pattern: '^https?://[^@/]+(/.*)?$',
          description: 'Proxy URL, e.g. http://proxy.internal:3128 (no credentials in the URL: use `token`).',
        },
        token: {
          ...secretRefSchema,
          description: 'Value of the Proxy-Authorization header (e.g. `Basic dXNlcjpwYXNz`), as a secret reference.',
        },
      },
      required: ['url'],
      additionalProperties: false,
    },
    timeouts: providerTimeoutsSchema,
    breaker: breakerSchema,
    webhook: webhookVerificationSchema,
  },
  required: ['type', 'webhook_secret'],
  additionalProperties: false,
} as const;

/** The entry after validation (defaults applied), secrets still as references. */
export interface DiditProviderEntry {
  type: 'didit';
  base_url?: string;
  api_key?: unknown;
  webhook_secret: unknown;
  proxy?: { url: string; token?: unknown };
  timeouts?: { connect_ms?: number; headers_ms?: number; body_ms?: number; total_ms?: number };
  breaker?: { failure_threshold?: number; cooldown_ms?: number; slow_call_ms?: number };
  webhook?: { tolerance_s?: number; max_future_skew_s?: number; signatures?: Array<'v2' | 'raw' | 'simple'> };
}
