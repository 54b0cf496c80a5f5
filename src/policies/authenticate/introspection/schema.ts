/** Config of the `introspection` authenticator. */
import { secretRefSchema } from '../../../config/secret-ref-schema.js';
import type { SecretRef } from '../../../config/types.js';

export interface IntrospectionConfig {
  endpoint: string;
  client_id: string;
  client_secret: SecretRef;
  auth_method: 'client_secret_basic' | 'client_secret_post';
  timeout_ms: number;
  cache_ttl_s: number;
  negative_cache_ttl_s: number;
  cache_max_entries: number;
  issuer?: string;
  audiences?: string[];
  consumer_claims: string[];
  scope_claims: string[];
  groups_claim?: string;
  skip_jwts: boolean;
}

export const introspectionSchema = {
  type: 'object',
  description:
    "Opaque OAuth2 access tokens checked with the authorization server's token introspection endpoint (RFC 7662).",
  properties: {
    endpoint: {
      type: 'string',
      pattern: '^https?://',
      description: 'Introspection endpoint (https; http only for loopback addresses).',
    },
    client_id: {
      type: 'string',
      minLength: 1,
      description: 'Client id the gateway authenticates to the endpoint with.',
    },
    client_secret: { ...secretRefSchema, description: 'Client secret, as a secret reference.' },
    auth_method: {
      enum: ['client_secret_basic', 'client_secret_post'],
      default: 'client_secret_basic',
      description: 'How the client credentials are sent.',
    },
    timeout_ms: {
      type: 'integer',
      minimum: 1,
      default: 2000,
      description: 'Timeout of one introspection request; a timeout answers 503, not 401.',
    },
    cache_ttl_s: {
      type: 'integer',
      minimum: 0,
      default: 60,
      description:
        'How long an active token is trusted without asking again (never beyond its `exp`). 0: ask every time.',
    },
    negative_cache_ttl_s: {
      type: 'integer',
      minimum: 0,
      default: 5,
      description:
        'How long an inactive token is remembered as such (short: it might be a token just issued elsewhere).',
    },
    cache_max_entries: { type: 'integer', minimum: 0, default: 10000, description: 'Tokens cached at most.' },
    issuer: { type: 'string', minLength: 1, description: "When set, the response's `iss` must equal it." },
    audiences: {
      type: 'array',
      items: { type: 'string', minLength: 1 },
      minItems: 1,
      description: "When set, the response's `aud` must contain one of these.",
    },
    consumer_claims: {
      type: 'array',
      items: { type: 'string', minLength: 1 },
      default: ['client_id'],
      description: 'Response members naming the consumer, first present wins.',
    },
    scope_claims: {
      type: 'array',
      items: { type: 'string', minLength: 1 },
      default: ['scope'],
      description: 'Response members holding scopes (space-separated string or array).',
    },
    groups_claim: { type: 'string', minLength: 1, description: 'Response member holding groups (array).' },
    skip_jwts: {
      type: 'boolean',
      default: true,
      description: 'Leave tokens that look like JWTs to a `jwt` method (listed before or after this one).',
    },
  },
  required: ['endpoint', 'client_id', 'client_secret'],
  additionalProperties: false,
} as const;
