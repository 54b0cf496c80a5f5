/**
 * Config schema of a `sandbox` provider entry: the embedded Didit stand-in, started inside the gateway process,
 * with the Didit adapter pointed at it. For demos, development and tests; never for production decisions.
 */
import { secretRefSchema } from '../../config/secret-ref-schema.js';
import { breakerSchema, providerTimeoutsSchema, webhookVerificationSchema } from '../didit/schema.js';
import { vendorWebhookProperties } from '../vendor-schema.js';

export const sandboxProviderSchema = {
  type: 'object',
  description:
    "Embedded sandbox verification provider: serves Didit's API (or Veriff's, Onfido's, Sumsub's, Persona's: " +
    '`dialect`), a hosted verification page with Approve ' +
    '/ Decline / Send to review buttons, and signed webhooks, from inside the gateway process. Nothing ' +
    'leaves the machine.',
  properties: {
    type: { const: 'sandbox', description: 'Provider type.' },
    dialect: {
      enum: ['didit', 'veriff', 'onfido', 'sumsub', 'persona'],
      default: 'didit',
      description:
        "Whose API and webhook signing the sandbox speaks; the matching adapter is pointed at it, so that provider's " +
        'whole loop (session, hosted page, signed webhook, result fetch) runs offline.',
    },
    host: {
      type: 'string',
      default: '127.0.0.1',
      description:
        'Address the sandbox listens on. Browsers of the people verifying must reach it (through `public_base_url` if proxied).',
    },
    port: {
      type: 'integer',
      minimum: 0,
      maximum: 65535,
      default: 0,
      description: 'Port of the sandbox; 0 picks a free one at start (fine for tests, set one for a stable demo URL).',
    },
    public_base_url: {
      type: 'string',
      pattern: '^https?://',
      description: "Base URL browsers use to reach the sandbox's hosted pages (default: its listening address).",
    },
    webhook_url: {
      type: 'string',
      pattern: '^https?://',
      description:
        "Where the sandbox delivers webhooks. Default: the gateway's own `/webhooks/<provider name>` on its first listener.",
    },
    retry_delays_ms: {
      type: 'array',
      items: { type: 'integer', minimum: 0 },
      maxItems: 10,
      default: [60000, 240000],
      description:
        'Delays before each webhook redelivery after a network error, 5xx or 404 (Didit: 1 min, then 4 min). Each retry is the same event_id.',
    },
    persist: {
      type: 'boolean',
      default: true,
      description: 'Keep sandbox sessions and undelivered webhooks in the gateway store, so a restart resumes them.',
    },
    api_key: {
      ...secretRefSchema,
      description:
        'API key the sandbox requires (secret reference). Default: a random key generated at start and shared with the adapter in-process.',
    },
    webhook_secret: {
      ...secretRefSchema,
      description:
        'Webhook signing secret (secret reference). Default: a random secret generated at start and shared with the adapter in-process.',
    },
    timeouts: providerTimeoutsSchema,
    breaker: breakerSchema,
    webhook: {
      ...webhookVerificationSchema,
      properties: { ...webhookVerificationSchema.properties, max_event_age_s: vendorWebhookProperties.max_event_age_s },
    },
  },
  required: ['type'],
  additionalProperties: false,
} as const;

export interface SandboxProviderEntry {
  type: 'sandbox';
  dialect?: 'didit' | 'veriff' | 'onfido' | 'sumsub' | 'persona';
  host?: string;
  port?: number;
  public_base_url?: string;
  webhook_url?: string;
  retry_delays_ms?: number[];
  persist?: boolean;
  api_key?: unknown;
  webhook_secret?: unknown;
  timeouts?: { connect_ms?: number; headers_ms?: number; body_ms?: number; total_ms?: number };
  breaker?: { failure_threshold?: number; cooldown_ms?: number; slow_call_ms?: number };
  webhook?: {
    tolerance_s?: number;
    max_future_skew_s?: number;
    max_event_age_s?: number;
    signatures?: Array<'v2' | 'raw' | 'simple'>;
  };
}
