/**
 * The admin listener's TLS and the admin REST API (`admin.tls`, `admin.api`): who may call `/admin/api/v1` and with
 * which role. The API is off unless `admin.api.enabled` is set, and it never answers without a credential.
 */
import { secretRefSchema } from './secret-ref-schema.js';

const ROLE = {
  type: 'string',
  enum: ['viewer', 'operator', 'admin'],
  description:
    '`viewer` reads runtime state, statistics, consumers, key and webhook lists; `operator` also manages consumers, ' +
    'client API keys, subjects (look up, block) and webhooks (replay) and reads audit records; `admin` also erases ' +
    'subjects and manages admin keys. See docs/ADMIN.md.',
} as const;

export const adminTlsSchema = {
  type: 'object',
  description:
    'Serve the admin listener over HTTPS (TLS 1.2 minimum). With `client_ca`, clients may present certificates, ' +
    'which `admin.api.mtls` maps to roles.',
  properties: {
    cert: { type: 'string', minLength: 1, description: 'PEM certificate chain (path, relative to the config file).' },
    key: { type: 'string', minLength: 1, description: 'PEM private key (path, relative to the config file).' },
    client_ca: {
      type: 'string',
      minLength: 1,
      description:
        'PEM bundle of the CAs that issue admin client certificates (path). Client certificates are requested and ' +
        'verified against it; a request without one must carry an admin key.',
    },
  },
  required: ['cert', 'key'],
  additionalProperties: false,
} as const;

export const adminApiSchema = {
  type: 'object',
  description:
    'The admin REST API under `/admin/api/v1` on the admin listener, described by the OpenAPI document at ' +
    '`/admin/api/openapi.json` (docs/ADMIN.md). Off by default; when on, every call needs an admin key or a mapped ' +
    'client certificate.',
  properties: {
    enabled: {
      type: 'boolean',
      default: false,
      description: 'Serve the admin API. Off: `/admin/api/*` answers 404 `admin-api-disabled`.',
    },
    keys: {
      type: 'array',
      default: [],
      description:
        'Admin keys declared in config (for bootstrapping and automation): each a name, a role and the key as a ' +
        'secret reference. The key is any string of at least 32 characters; keys made by kycgate look like ' +
        '`kga_<8>_<38>`. Presented as `Authorization: Bearer <key>` or `x-admin-key: <key>`.',
      items: {
        type: 'object',
        properties: {
          name: {
            type: 'string',
            pattern: '^[A-Za-z0-9][A-Za-z0-9_.@:-]{0,63}$',
            description: 'Names the key in audit records (`actor`: `config-key:<name>`).',
          },
          role: ROLE,
          key: secretRefSchema,
        },
        required: ['name', 'role', 'key'],
        additionalProperties: false,
      },
    },
    store_keys: {
      type: 'boolean',
      default: true,
      description:
        'Accept admin keys kept (hashed) in the store: created through the API (`POST /admin/api/v1/admin-keys`), ' +
        'with `kycgate admin-keys create`, or by `key_file`. Shared by every instance using the same store.',
    },
    key_file: {
      type: 'object',
      description:
        'Create an admin key in the store on first start and write it to this file (mode 0600), for single-instance ' +
        'and demo setups. Kept across restarts while the key is valid; a revoked or unknown key is replaced.',
      properties: {
        path: {
          type: 'string',
          minLength: 1,
          description: 'File for the key; relative paths are resolved against the data directory.',
        },
        role: { ...ROLE, default: 'admin' },
      },
      required: ['path'],
      additionalProperties: false,
    },
    mtls: {
      type: 'array',
      default: [],
      description:
        'Client certificates mapped to roles (needs `admin.tls.client_ca`). A certificate verified against the CA ' +
        'whose SPIFFE ID (URI SAN) matches `spiffe_id` gets `role`; the actor in audit records is the SPIFFE ID.',
      items: {
        type: 'object',
        properties: {
          spiffe_id: {
            type: 'string',
            pattern: '^spiffe://[^/?#]+(/[^?#]*)?$',
            description: 'Exact SPIFFE ID of the client certificate.',
          },
          role: ROLE,
        },
        required: ['spiffe_id', 'role'],
        additionalProperties: false,
      },
    },
    max_body_bytes: {
      type: 'integer',
      minimum: 1024,
      maximum: 16777216,
      default: 1048576,
      description: 'Largest request body the API reads; larger answers 413.',
    },
    dashboard: {
      type: 'boolean',
      default: true,
      description:
        'Serve the dashboard at `/` of the admin listener while the API is on (docs/ADMIN.md, "Dashboard"): ' +
        'static files built with the package; it signs in with an admin key and reads this API.',
    },
    oidc: {
      type: 'object',
      description:
        'Dashboard sign-in through an OpenID Connect issuer (authorization code flow with PKCE, state and nonce). ' +
        'The id_token is verified (issuer, audience, nonce, expiry); its `role_claim` maps the user to a role; the ' +
        'dashboard then holds a short-lived session cookie (HttpOnly, SameSite=Strict, Secure over TLS) that the API ' +
        'accepts only with the header `x-kycgate-dashboard: 1`. Every sign-in and refusal is audited.',
      properties: {
        issuer: { type: 'string', pattern: '^https?://', description: 'Issuer URL (discovery document under it).' },
        name: { type: 'string', minLength: 1, maxLength: 60, description: 'Shown as "Sign in with <name>".' },
        client_id: { type: 'string', minLength: 1, description: 'The client registered at the issuer.' },
        client_secret: { ...secretRefSchema, description: 'Its secret (client_secret_basic), by reference.' },
        redirect_url: {
          type: 'string',
          pattern: '^https?://[^/]+/admin/api/oidc/callback$',
          description: "This admin listener's `/admin/api/oidc/callback` as the browser reaches it (registered).",
        },
        scopes: {
          type: 'array',
          items: { type: 'string', pattern: '^[!#-\\[\\]-~]+$' },
          default: ['openid', 'profile', 'email'],
          description: 'Scopes asked for (`openid` is always added).',
        },
        role_claim: {
          type: 'string',
          minLength: 1,
          default: 'groups',
          description: 'The id_token claim (a string or an array of strings) matched against `roles`.',
        },
        roles: {
          type: 'array',
          minItems: 1,
          description: 'Claim values mapped to roles; a user matching several gets the highest, none is refused.',
          items: {
            type: 'object',
            properties: { value: { type: 'string', minLength: 1 }, role: ROLE },
            required: ['value', 'role'],
            additionalProperties: false,
          },
        },
        allowed_subjects: {
          type: 'array',
          items: { type: 'string', minLength: 1 },
          default: [],
          description: 'When not empty, only these `sub` values may sign in (whatever their claims).',
        },
        session_ttl_s: {
          type: 'integer',
          minimum: 60,
          maximum: 43200,
          default: 900,
          description: 'Lifetime of the dashboard session; the user signs in again after it.',
        },
      },
      required: ['issuer', 'client_id', 'client_secret', 'redirect_url', 'roles'],
      additionalProperties: false,
    },
    public_url: {
      type: 'string',
      pattern: '^https?://[^/]+',
      description:
        "URL other instances and the start-up line name this instance's admin API by (default: the admin address).",
    },
  },
  additionalProperties: false,
  default: {},
} as const;

export type AdminRole = 'viewer' | 'operator' | 'admin';

export interface AdminApiConfig {
  enabled: boolean;
  keys: Array<{ name: string; role: AdminRole; key: unknown }>;
  store_keys: boolean;
  key_file?: { path: string; role: AdminRole };
  mtls: Array<{ spiffe_id: string; role: AdminRole }>;
  max_body_bytes: number;
  dashboard: boolean;
  public_url?: string;
  oidc?: AdminOidcConfig;
}

export interface AdminOidcConfig {
  issuer: string;
  name?: string;
  client_id: string;
  client_secret: unknown;
  redirect_url: string;
  scopes: string[];
  role_claim: string;
  roles: Array<{ value: string; role: AdminRole }>;
  allowed_subjects: string[];
  session_ttl_s: number;
}

export interface AdminTlsConfig {
  cert: string;
  key: string;
  client_ca?: string;
}
