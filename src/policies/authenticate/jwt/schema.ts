/** Config of the `jwt` authenticator. */
import { secretRefSchema } from '../../../config/secret-ref-schema.js';
import type { SecretRef } from '../../../config/types.js';

export interface JwtIssuerConfig {
  issuer: string;
  discovery: boolean;
  jwks_url?: string;
  keys_file?: string;
  hmac_secret?: SecretRef;
  audiences: string[];
  algorithms?: string[];
  leeway_s: number;
  consumer_claims: string[];
  scope_claims: string[];
  groups_claim?: string;
}

export interface JwtConfig {
  header: string;
  issuers: JwtIssuerConfig[];
  jwks: { cooldown_s: number; max_age_s: number; timeout_ms: number };
  cache: { max_entries: number };
}

export const ASYMMETRIC_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
] as const;
export const HMAC_ALGORITHMS = ['HS256', 'HS384', 'HS512'] as const;

export const jwtSchema = {
  type: 'object',
  description:
    'JWT access tokens (`Authorization: Bearer eyJ...`) from OIDC / OAuth2 issuers, verified with keys ' +
    'from OIDC discovery, a JWKS URL, a key file or a shared secret.',
  properties: {
    header: {
      type: 'string',
      pattern: '^[A-Za-z0-9-]+$',
      default: 'authorization',
      description:
        'Header carrying the token: `authorization` expects `Bearer <token>`; any other header carries the bare token.',
    },
    issuers: {
      type: 'array',
      minItems: 1,
      description:
        'Trusted issuers. A token is checked against the issuer named by its `iss` claim; tokens from other issuers are refused.',
      items: {
        type: 'object',
        properties: {
          issuer: {
            type: 'string',
            minLength: 1,
            description: 'Expected `iss`, exactly (e.g. `https://login.example.com/realms/bank`).',
          },
          discovery: {
            type: 'boolean',
            default: false,
            description:
              'Find the JWKS through `<issuer>/.well-known/openid-configuration` (its `issuer` must equal ours).',
          },
          jwks_url: {
            type: 'string',
            pattern: '^https?://',
            description: 'JWKS URL (https; http only for loopback addresses).',
          },
          keys_file: {
            type: 'string',
            minLength: 1,
            description:
              'File with a JWKS (JSON) or a PEM public key, for issuers without a JWKS endpoint. Relative to the config file.',
          },
          hmac_secret: {
            ...secretRefSchema,
            description:
              'Shared secret for HS256/384/512 tokens (at least 32 bytes). An issuer with a secret accepts only ' +
              'HMAC algorithms; one with public keys never does.',
          },
          audiences: {
            type: 'array',
            minItems: 1,
            items: { type: 'string', minLength: 1 },
            description: 'Accepted `aud` values (required: a token for another API is refused).',
          },
          algorithms: {
            type: 'array',
            minItems: 1,
            items: { enum: [...ASYMMETRIC_ALGORITHMS, ...HMAC_ALGORITHMS] },
            description:
              'Accepted `alg` values. Default: RS256, PS256, ES256, EdDSA (or HS256 with `hmac_secret`). `none` is never accepted.',
          },
          leeway_s: {
            type: 'integer',
            minimum: 0,
            maximum: 300,
            default: 30,
            description: 'Clock skew tolerated on `exp` and `nbf`, in seconds.',
          },
          consumer_claims: {
            type: 'array',
            items: { type: 'string', minLength: 1 },
            default: ['client_id', 'azp'],
            description: 'Claims naming the consumer, first present wins (`client_id` per RFC 9068, `azp` for OIDC).',
          },
          scope_claims: {
            type: 'array',
            items: { type: 'string', minLength: 1 },
            default: ['scope', 'scp'],
            description: 'Claims holding scopes: a space-separated string (`scope`) or an array (`scp`).',
          },
          groups_claim: {
            type: 'string',
            minLength: 1,
            description: 'Claim holding the groups (array of strings), e.g. `groups`.',
          },
        },
        required: ['issuer', 'audiences'],
        additionalProperties: false,
      },
    },
    jwks: {
      type: 'object',
      default: {},
      description: 'How JWKS are fetched and kept.',
      properties: {
        cooldown_s: {
          type: 'number',
          minimum: 0,
          default: 30,
          description:
            'Least time between two fetches triggered by an unknown `kid` or a failure (protects the IdP from token floods).',
        },
        max_age_s: {
          type: 'number',
          minimum: 1,
          default: 600,
          description:
            'Key sets older than this are refreshed in the background; the last good set keeps serving while the IdP is down.',
        },
        timeout_ms: {
          type: 'integer',
          minimum: 1,
          default: 3000,
          description: 'Timeout of one discovery or JWKS request.',
        },
      },
      additionalProperties: false,
    },
    cache: {
      type: 'object',
      default: {},
      description: 'Verified-token cache (keyed by the SHA-256 of the token, kept until the token expires).',
      properties: {
        max_entries: {
          type: 'integer',
          minimum: 0,
          default: 10000,
          description: 'Tokens kept; 0 turns the cache off.',
        },
      },
      additionalProperties: false,
    },
  },
  required: ['issuers'],
  additionalProperties: false,
} as const;
