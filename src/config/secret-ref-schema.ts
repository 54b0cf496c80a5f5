/**
 * Secret references (`{env}`, `{file}`, `{vault}`) and the `vault` section that resolves the last kind: the schema every
 * key that holds a secret uses, so a secret is never written into a config file.
 */

const envRefSchema = {
  type: 'object',
  properties: {
    env: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]*$', description: 'Environment variable name.' },
  },
  required: ['env'],
  additionalProperties: false,
} as const;

const fileRefSchema = {
  type: 'object',
  properties: {
    file: {
      type: 'string',
      minLength: 1,
      description: 'Path of a file holding the secret; relative paths are resolved against the config file.',
    },
  },
  required: ['file'],
  additionalProperties: false,
} as const;

/** A reference to a secret that can be read locally (the credentials the gateway uses to reach Vault itself). */
export const localSecretRefSchema = {
  description: 'A local secret reference: `{env: NAME}` or `{file: PATH}` (trailing newline removed).',
  oneOf: [envRefSchema, fileRefSchema],
} as const;

/** A reference to a secret. Secrets are never written inline in config. */
export const secretRefSchema = {
  description:
    'A secret reference: `{env: NAME}` reads an environment variable, `{file: PATH}` reads a file ' +
    '(trailing newline removed), `{vault: {path, key}}` reads one key of a HashiCorp Vault KV secret ' +
    '(needs the top-level `vault` section; see docs/SECRETS.md). Secrets are never written inline.',
  oneOf: [
    envRefSchema,
    fileRefSchema,
    {
      type: 'object',
      properties: {
        vault: {
          type: 'object',
          description:
            'A key of a Vault KV secret, kept fresh in the background; a changed value reloads the configuration.',
          properties: {
            path: {
              type: 'string',
              pattern: '^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.@=+-]+)+$',
              not: { pattern: '(^|/)\\.{1,2}(/|$)' },
              description:
                'API path of the secret below /v1/, e.g. `secret/data/kycgate/didit` (KV v2: mount, `data`, secret path) or `kv1/kycgate/didit` (KV v1).',
            },
            key: { type: 'string', minLength: 1, description: "Key inside the secret's data, e.g. `api_key`." },
          },
          required: ['path', 'key'],
          additionalProperties: false,
        },
      },
      required: ['vault'],
      additionalProperties: false,
    },
  ],
} as const;

/** Where `{vault: ...}` secret references are read from. */
export const vaultSchema = {
  type: 'object',
  description:
    'HashiCorp Vault, the source of `{vault: {path, key}}` secret references. Every reference is read ' +
    'before a configuration is applied and refreshed in the background. See docs/SECRETS.md.',
  properties: {
    address: {
      type: 'string',
      pattern: '^https?://',
      description: 'Vault address, e.g. `https://vault.internal:8200`.',
    },
    namespace: { type: 'string', minLength: 1, description: 'Vault Enterprise namespace (sent as X-Vault-Namespace).' },
    ca_file: {
      type: 'string',
      minLength: 1,
      description: "PEM CA certificate(s) to verify Vault's TLS certificate; default: the system CAs.",
    },
    timeout_ms: {
      type: 'integer',
      minimum: 100,
      default: 5000,
      description: 'Time allowed for one Vault request (connect and response).',
    },
    refresh_interval_s: {
      type: 'integer',
      minimum: 1,
      default: 300,
      description:
        "How often each secret is read again. A shorter lease (`lease_duration`) in Vault's answer shortens it for that secret.",
    },
    retry_interval_s: {
      type: 'integer',
      minimum: 1,
      default: 10,
      description: 'How soon a failed refresh is tried again (the last good value keeps serving meanwhile).',
    },
    auth: {
      type: 'object',
      description: 'How the gateway logs in: a token, AppRole, or its own SPIFFE identity (JWT-SVID).',
      properties: {
        token: {
          ...localSecretRefSchema,
          description:
            'Vault token, as a local secret reference (read again on every request, so a token file rotated by an agent is used).',
        },
        approle: {
          type: 'object',
          description:
            'AppRole login (POST /v1/auth/<mount>/login); the token is renewed by logging in again before its lease ends.',
          properties: {
            mount: {
              type: 'string',
              pattern: '^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$',
              default: 'approle',
              description: 'Mount path of the AppRole auth method.',
            },
            role_id: { ...localSecretRefSchema, description: 'Role ID, as a local secret reference.' },
            secret_id: { ...localSecretRefSchema, description: 'Secret ID, as a local secret reference.' },
          },
          required: ['role_id', 'secret_id'],
          additionalProperties: false,
        },
        jwt_svid: {
          type: 'object',
          description:
            'Login without a static secret: the gateway fetches its own JWT-SVID from the SPIFFE Workload API and ' +
            "presents it to Vault's JWT auth method (POST /v1/auth/<mount>/login {role, jwt}); the Vault token is " +
            'replaced by logging in again (with a fresh JWT-SVID) before its lease ends, and at once if Vault refuses it.',
          properties: {
            mount: {
              type: 'string',
              pattern: '^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$',
              default: 'jwt',
              description: "Mount path of the JWT auth method (configured with the trust domain's JWT bundle).",
            },
            role: { type: 'string', minLength: 1, description: 'Vault role (its bound_audiences and bound_subject).' },
            audience: {
              type: 'string',
              minLength: 1,
              default: 'vault',
              description: "Audience of the JWT-SVID requested (must be in the role's bound_audiences).",
            },
            socket: {
              type: 'string',
              description: 'Workload API address (unix:///path). Default: SPIFFE_ENDPOINT_SOCKET.',
            },
          },
          required: ['role'],
          additionalProperties: false,
        },
        x509_svid: {
          type: 'object',
          description:
            "Login without a static secret: the gateway's current X509-SVID (from the SPIFFE Workload API) is the TLS " +
            "client certificate of a login to Vault's cert auth method (POST /v1/auth/<mount>/login {name}); later reads " +
            'use the token. Renewed like the other logins, each time with the SVID current then.',
          properties: {
            mount: {
              type: 'string',
              pattern: '^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$',
              default: 'cert',
              description: "Mount path of the cert auth method (its CA: the trust domain's bundle).",
            },
            role: { type: 'string', minLength: 1, description: 'Certificate role name (its allowed_uri_sans).' },
            socket: {
              type: 'string',
              description: 'Workload API address (unix:///path). Default: SPIFFE_ENDPOINT_SOCKET.',
            },
          },
          required: ['role'],
          additionalProperties: false,
        },
      },
      oneOf: [
        { required: ['token'] },
        { required: ['approle'] },
        { required: ['jwt_svid'] },
        { required: ['x509_svid'] },
      ],
      additionalProperties: false,
    },
  },
  required: ['address', 'auth'],
  additionalProperties: false,
} as const;
