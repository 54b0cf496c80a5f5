/**
 * Config schemas of the `veriff`, `onfido`, `sumsub` and `persona` provider entries. They share the Didit entry's
 * timeouts, breaker and proxy settings; secrets are references resolved by the KYC subsystem.
 */
import { secretRefSchema } from '../config/secret-ref-schema.js';
import { breakerSchema, diditProviderSchema, providerTimeoutsSchema } from './didit/schema.js';

export const vendorWebhookProperties = {
  tolerance_s: {
    type: 'integer',
    minimum: 1,
    description:
      'Oldest accepted signed delivery timestamp, in seconds (Persona `t`). Default: `kyc.webhook_tolerance_seconds`.',
  },
  max_future_skew_s: {
    type: 'integer',
    minimum: 0,
    default: 60,
    description: 'How far in the future a timestamp may be (clock skew).',
  },
  max_event_age_s: {
    type: 'integer',
    minimum: 60,
    default: 259200,
    description:
      "Oldest accepted event for providers that sign no delivery time (Veriff, Onfido, Sumsub), judged on the event's " +
      "own time (decision time, completion time, `createdAtMs`). Must cover the provider's redelivery period. Default 3 days.",
  },
} as const;

const sumsubAlgorithms = {
  type: 'array',
  items: { enum: ['HMAC_SHA256_HEX', 'HMAC_SHA512_HEX', 'HMAC_SHA1_HEX'] },
  minItems: 1,
  uniqueItems: true,
  default: ['HMAC_SHA256_HEX', 'HMAC_SHA512_HEX', 'HMAC_SHA1_HEX'],
  description:
    'Digest algorithms accepted in `X-Payload-Digest-Alg` (absent means HMAC_SHA256_HEX). Drop HMAC_SHA1_HEX to refuse SHA-1.',
} as const;

interface VendorSchemaSpec {
  type: 'veriff' | 'onfido' | 'sumsub' | 'persona';
  description: string;
  baseUrl: string;
  baseUrlDescription: string;
  apiKey: string;
  webhookSecret: string;
  extra?: Record<string, unknown>;
  webhookExtra?: Record<string, unknown>;
}

function vendorSchema(spec: VendorSchemaSpec) {
  return {
    type: 'object',
    description: spec.description,
    properties: {
      type: { const: spec.type, description: 'Provider type.' },
      base_url: { type: 'string', pattern: '^https?://', default: spec.baseUrl, description: spec.baseUrlDescription },
      api_key: { ...secretRefSchema, description: spec.apiKey },
      webhook_secret: { ...secretRefSchema, description: spec.webhookSecret },
      proxy: diditProviderSchema.properties.proxy,
      timeouts: providerTimeoutsSchema,
      breaker: breakerSchema,
      webhook: {
        type: 'object',
        description: 'How incoming webhooks from this provider are verified.',
        properties: { ...vendorWebhookProperties, ...(spec.webhookExtra ?? {}) },
        additionalProperties: false,
      },
      ...(spec.extra ?? {}),
    },
    required: ['type', 'webhook_secret'],
    additionalProperties: false,
  } as const;
}

export const veriffProviderSchema = vendorSchema({
  type: 'veriff',
  description:
    'Veriff (veriff.com): sessions through its Station API, decisions by signed webhook (X-HMAC-SIGNATURE) and by the decision API.',
  baseUrl: 'https://stationapi.veriff.com',
  baseUrlDescription: 'Veriff Station API base URL.',
  apiKey: 'Veriff API key (sent as `X-AUTH-CLIENT`), as a secret reference. Without it only webhooks are verified.',
  webhookSecret:
    'Veriff shared secret key, as a secret reference: it verifies webhooks and signs decision requests (X-HMAC-SIGNATURE).',
});

export const onfidoProviderSchema = vendorSchema({
  type: 'onfido',
  description:
    'Onfido / Entrust Identity Verification (API v3.6, Studio workflow runs): results by signed webhook (X-SHA2-Signature) and by the workflow run API.',
  baseUrl: 'https://api.eu.onfido.com/v3.6',
  baseUrlDescription: 'Onfido API base URL with its version: api.eu, api.us or api.ca by region.',
  apiKey: 'Onfido API token (sent as `Authorization: Token token=...`), as a secret reference.',
  webhookSecret: "The webhook's token (shown when the webhook is registered), as a secret reference.",
});

export const sumsubProviderSchema = vendorSchema({
  type: 'sumsub',
  description:
    'Sumsub (sumsub.com): WebSDK links per applicant, results by signed webhook (X-Payload-Digest) and by the applicant API. `workflow_id` is the level name.',
  baseUrl: 'https://api.sumsub.com',
  baseUrlDescription: 'Sumsub API base URL.',
  apiKey: 'Sumsub app token (sent as `X-App-Token`), as a secret reference.',
  webhookSecret: 'Sumsub webhook secret key (the one set in the webhook manager), as a secret reference.',
  extra: {
    api_secret: {
      ...secretRefSchema,
      description:
        "The app token's secret key, which signs every API request (X-App-Access-Sig), as a secret reference.",
    },
    link_ttl_s: {
      type: 'integer',
      minimum: 60,
      maximum: 86400,
      default: 1800,
      description: 'Lifetime of a WebSDK link.',
    },
  },
  webhookExtra: { digest_algorithms: sumsubAlgorithms },
});

export const personaProviderSchema = vendorSchema({
  type: 'persona',
  description:
    'Persona (withpersona.com): inquiries from a template (`workflow_id` = itmpl_...), the hosted flow, results by ' +
    'signed webhook (Persona-Signature) and by the inquiry API.',
  baseUrl: 'https://withpersona.com/api/v1',
  baseUrlDescription: 'Persona API base URL.',
  apiKey: 'Persona API key (sent as `Authorization: Bearer ...`), as a secret reference.',
  webhookSecret: 'Persona webhook secret (wbhsec_...), as a secret reference.',
  extra: {
    hosted_url: {
      type: 'string',
      pattern: '^https?://',
      default: 'https://withpersona.com',
      description: 'Origin of the hosted flow the user is sent to (`<hosted_url>/verify?inquiry-id=...`).',
    },
  },
});

/** A vendor entry after validation (defaults applied), secrets still as references. */
export interface VendorProviderEntry {
  type: 'veriff' | 'onfido' | 'sumsub' | 'persona';
  base_url?: string;
  api_key?: unknown;
  webhook_secret: unknown;
  api_secret?: unknown;
  hosted_url?: string;
  link_ttl_s?: number;
  proxy?: { url: string; token?: unknown };
  timeouts?: { connect_ms?: number; headers_ms?: number; body_ms?: number; total_ms?: number };
  breaker?: { failure_threshold?: number; cooldown_ms?: number; slow_call_ms?: number };
  webhook?: {
    tolerance_s?: number;
    max_future_skew_s?: number;
    max_event_age_s?: number;
    digest_algorithms?: Array<'HMAC_SHA256_HEX' | 'HMAC_SHA512_HEX' | 'HMAC_SHA1_HEX'>;
  };
}
