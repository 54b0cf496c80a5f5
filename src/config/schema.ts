/**
 * The gateway's configuration schema (JSON Schema draft 2020-12 subset understood by ajv). Every key is documented
 * here, in its `description`; `kycgate schema` prints the assembled schema, and docs/config.schema.json is a copy
 * kept in sync by a test. Policy configs are validated against each policy's own schema (src/policies/<name>/).
 */

import { decisionListenerSchema } from './decision-listener.js';
import { trustDomainNameSchema, trustDomainsSchema } from '../workload-identity/schema.js';
import { ADDRESS_OR_CIDR } from '../shared/address-list.js';

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
const vaultSchema = {
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
      description: 'How the gateway logs in: a token, or AppRole.',
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
      },
      oneOf: [{ required: ['token'] }, { required: ['approle'] }],
      additionalProperties: false,
    },
  },
  required: ['address', 'auth'],
  additionalProperties: false,
} as const;

const timeoutsSchema = {
  type: 'object',
  description: 'Upstream timeouts. Exceeding one answers 504 (or ends a response already under way).',
  properties: {
    connect_ms: { type: 'integer', minimum: 1, description: 'Time allowed to open the upstream connection.' },
    headers_ms: {
      type: 'integer',
      minimum: 1,
      description: 'Time allowed between sending the request and receiving the response head.',
    },
    body_idle_ms: {
      type: 'integer',
      minimum: 1,
      description: 'Longest pause allowed between two chunks of the response body.',
    },
    websocket_idle_ms: {
      type: 'integer',
      minimum: 0,
      description:
        'On a `websocket` route, longest time a relayed connection may carry no bytes either way before both ' +
        "sides are closed (default 300000; 0: no limit). Keep it above the application's ping interval.",
    },
  },
  additionalProperties: false,
} as const;

const policyListSchema = {
  type: 'array',
  description:
    "Policies, each an object with one key: the policy name, whose value is that policy's config (see docs/CONFIG.md, Policies).",
  items: { type: 'object', minProperties: 1, maxProperties: 1 },
} as const;

const tlsListenerSchema = {
  type: 'object',
  description:
    'Makes the listener HTTPS. Certificate and key are reloaded when their files change (after checking that they match).',
  properties: {
    cert: {
      type: 'string',
      minLength: 1,
      description: 'PEM certificate chain file (or use workload_api instead of cert and key).',
    },
    key: { type: 'string', minLength: 1, description: 'PEM private key file (read as a file, never inline).' },
    min_version: {
      enum: ['TLSv1.2', 'TLSv1.3'],
      default: 'TLSv1.2',
      description: 'Lowest TLS version accepted; TLS 1.0 and 1.1 are never accepted.',
    },
    ciphers: {
      type: 'string',
      description: "OpenSSL cipher list for TLS 1.2 (TLS 1.3 suites are fixed by OpenSSL). Default: Node's.",
    },
    session_timeout_s: {
      type: 'integer',
      minimum: 0,
      default: 300,
      description: 'Lifetime of TLS sessions that clients may resume (at most 60 s when client_auth is not none).',
    },
    expiry_warning_s: {
      type: 'integer',
      minimum: 1,
      default: 600,
      description:
        'Warn (log line and `tls.certificate_expiring` event, checked every minute) when the served ' +
        'certificate expires within this many seconds: its rotation has stalled (a healthy SPIFFE agent or ' +
        'cert-manager renews long before).',
    },
    client_auth: {
      enum: ['none', 'optional', 'required'],
      default: 'none',
      description:
        'Client certificates (mTLS): none; optional (requested, routes decide with the client-certificate ' +
        'policy); required (a connection without a valid certificate is closed before any request). See ' +
        'docs/MTLS.md.',
    },
    client_ca: {
      type: 'array',
      items: { type: 'string', minLength: 1 },
      description: 'PEM files of CAs that issue plain (non-SPIFFE) client certificates. Reloaded when they change.',
    },
    trust_domains: trustDomainsSchema(
      "SPIFFE trust domains whose X509-SVIDs are accepted (several for federation), each with its own bundle. An SVID must chain to its own domain's bundle.",
      {
        name: 'Trust domain name, e.g. example.org.',
        bundle: 'Bundle file: PEM CA certificates or a SPIFFE bundle (JWK Set). Reloaded when it changes.',
      },
    ),
    workload_api: {
      type: 'object',
      description:
        'Serve the X509-SVID fetched from the SPIFFE Workload API instead of cert/key files; rotated in place as the agent pushes new SVIDs. See docs/MTLS.md.',
      properties: {
        socket: {
          type: 'string',
          pattern: '^(unix:///|tcp://)',
          description:
            'Workload API endpoint: unix:///path or tcp://IP:port. Default: the SPIFFE_ENDPOINT_SOCKET environment variable.',
        },
        spiffe_id: {
          type: 'string',
          pattern: '^spiffe://',
          description: 'Which SVID to serve when the workload has several. Default: the first (the default identity).',
        },
        ready_timeout_ms: {
          type: 'integer',
          minimum: 1,
          default: 10000,
          description: 'How long start-up waits for the first SVID.',
        },
        client_trust: {
          type: 'boolean',
          default: false,
          description:
            'Also accept client X509-SVIDs of the trust domains whose bundles the Workload API sends (own and ' +
            'federated), kept up to date as it pushes them. Bundle files in trust_domains win for the same ' +
            'domain.',
        },
      },
      additionalProperties: false,
    },
  },
  oneOf: [
    { required: ['cert', 'key'], not: { required: ['workload_api'] } },
    { required: ['workload_api'], not: { anyOf: [{ required: ['cert'] }, { required: ['key'] }] } },
  ],
  additionalProperties: false,
} as const;

export const coreSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'https://kycgate.dev/schemas/config.json',
  title: 'kycgate configuration',
  type: 'object',
  properties: {
    listeners: {
      type: 'array',
      minItems: 1,
      description: 'Where the gateway accepts client traffic.',
      items: {
        type: 'object',
        properties: {
          name: {
            type: 'string',
            pattern: '^[a-z0-9][a-z0-9_-]*$',
            description: 'Listener name, used in logs, metrics and audit records.',
          },
          address: {
            type: 'string',
            default: '127.0.0.1',
            description: 'Address to bind (use 0.0.0.0 or :: to accept from the network).',
          },
          port: { type: 'integer', minimum: 0, maximum: 65535, description: 'TCP port; 0 picks a free one.' },
          tls: tlsListenerSchema,
          plain: {
            enum: ['serve', 'redirect', 'refuse'],
            default: 'serve',
            description:
              'For a plain-HTTP listener: serve routes, redirect to HTTPS (308, to `https_port`), or refuse with 403 problem+json.',
          },
          https_port: {
            type: 'integer',
            minimum: 1,
            maximum: 65535,
            description: 'Port used in HTTPS redirects from this listener (default 443).',
          },
          health: { type: 'boolean', default: true, description: 'Answer /healthz and /readyz on this listener too.' },
          decision: decisionListenerSchema,
        },
        required: ['name', 'port'],
        additionalProperties: false,
      },
    },
    admin: {
      type: 'object',
      description: 'Admin listener: /healthz, /readyz and /metrics. Bind it to a private address.',
      properties: {
        enabled: { type: 'boolean', default: true, description: 'Start the admin listener.' },
        address: { type: 'string', default: '127.0.0.1', description: 'Address to bind.' },
        port: {
          type: 'integer',
          minimum: 0,
          maximum: 65535,
          default: 9901,
          description: 'TCP port; 0 picks a free one.',
        },
      },
      additionalProperties: false,
      default: {},
    },
    server: {
      type: 'object',
      description: 'Client-side HTTP limits and behaviour, for every listener.',
      properties: {
        max_header_bytes: {
          type: 'integer',
          minimum: 1024,
          maximum: 1048576,
          default: 16384,
          description: 'Largest request head accepted; larger answers 431.',
        },
        headers_timeout_ms: {
          type: 'integer',
          minimum: 100,
          default: 10000,
          description: 'Time a client has to send the complete request head (slow-client protection); then 408.',
        },
        request_timeout_ms: {
          type: 'integer',
          minimum: 100,
          default: 60000,
          description: 'Time a client has to send the complete request, body included; then 408.',
        },
        keep_alive_timeout_ms: {
          type: 'integer',
          minimum: 0,
          default: 5000,
          description: 'How long an idle client connection is kept open.',
        },
        drain_timeout_ms: {
          type: 'integer',
          minimum: 0,
          default: 20000,
          description: 'On SIGTERM, how long in-flight requests may take to finish before connections are closed.',
        },
        trusted_proxies: {
          type: 'array',
          items: { type: 'string', pattern: ADDRESS_OR_CIDR },
          default: [],
          description:
            'Addresses or CIDR ranges of proxies in front of the gateway. Only from these are X-Forwarded-For/Proto/Host and Forwarded trusted.',
        },
        health_paths: {
          type: 'boolean',
          default: true,
          description: 'Reserve /healthz and /readyz on listeners that enable `health`.',
        },
        path_semicolons: {
          enum: ['allow', 'refuse'],
          default: 'allow',
          description:
            'Whether a `;` (raw or `%3B`) may appear in a request path. Whatever the setting, a dot-segment ' +
            'carrying path parameters (`/..;x/`, `/.;x/`, `%2e%2e%3b`) is refused with 400 `ambiguous-path`. ' +
            '`refuse` refuses every `;`: choose it in front of Java servlet containers (Tomcat, Jetty, Spring), ' +
            'which read `;` as the start of path parameters and drop them before resolving the path.',
        },
        underscored_headers: {
          enum: ['drop', 'refuse', 'allow'],
          default: 'drop',
          description:
            'Request headers whose name equals a header the gateway sets or strips (X-Forwarded-*, Forwarded, ' +
            'X-Request-Id, hop-by-hop headers, and every header a policy injects such as x-kyc-status or ' +
            'x-consumer) once `_` is read as `-` (`x_kyc_status`, `X_Forwarded_For`): WSGI, CGI, Rack and PHP ' +
            "read both spellings as one name, so the client's copy could win. `drop` removes them before " +
            'forwarding; `refuse` answers 400 `ambiguous-request`; `allow` forwards them. In decision mode the ' +
            'gateway cannot remove a header from what the front proxy forwards, so `drop` refuses there too.',
        },
      },
      additionalProperties: false,
      default: {},
    },
    log: {
      type: 'object',
      description: 'Structured JSON logs on standard output.',
      properties: {
        level: {
          enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
          default: 'info',
          description: 'Lowest level written.',
        },
        access: {
          type: 'boolean',
          default: false,
          description:
            'Write one line per request (request id, route, status, latency; never headers or bodies). Off by ' +
            'default, as in Envoy, Caddy and Traefik: every request is already counted in the metrics and, with ' +
            '`audit.enabled`, recorded in the tamper-evident journal; the line costs about a fifth of a bare ' +
            "route's throughput.",
        },
      },
      additionalProperties: false,
      default: {},
    },
    defaults: {
      type: 'object',
      description: 'Values every route inherits unless it sets its own.',
      properties: {
        max_body_bytes: {
          type: 'integer',
          minimum: 0,
          default: 10485760,
          description: 'Largest request body accepted; larger answers 413.',
        },
        timeouts: { ...timeoutsSchema, default: {} },
        policies: {
          ...policyListSchema,
          default: [],
          description:
            "Policies applied to every route (before the route's own in the same phase). A route lists a policy " +
            'name in `disable_default_policies` to opt out, or configures the same policy itself to override it.',
        },
      },
      additionalProperties: false,
      default: {},
    },
    upstreams: {
      type: 'object',
      description: 'Named upstream groups that routes forward to.',
      additionalProperties: {
        type: 'object',
        properties: {
          targets: {
            type: 'array',
            minItems: 1,
            description: 'Target servers of this group.',
            items: {
              type: 'object',
              properties: {
                url: {
                  type: 'string',
                  pattern: '^(https?://[^/?#]+(/[^?#]*)?|builtin:echo)$',
                  description:
                    'Base URL (`http://host:port[/base]`, `https://...`), or `builtin:echo` for the embedded echo service.',
                },
                weight: {
                  type: 'integer',
                  minimum: 1,
                  maximum: 100,
                  default: 1,
                  description: 'Relative share of requests.',
                },
              },
              required: ['url'],
              additionalProperties: false,
            },
          },
          balance: {
            enum: ['round_robin', 'least_outstanding'],
            default: 'round_robin',
            description: 'How a target is chosen for each request.',
          },
          connections: {
            type: 'integer',
            minimum: 1,
            default: 128,
            description: 'Keep-alive connections per target, at most.',
          },
          keep_alive_timeout_ms: {
            type: 'integer',
            minimum: 1,
            default: 4000,
            description: "How long an idle upstream connection is kept (keep below the upstream's own idle timeout).",
          },
          passive_health: {
            type: 'object',
            description:
              'Passive health checks (groups of several targets): a target whose exchanges fail several times in a ' +
              'row (connection refused, unreachable or reset, TLS handshake failed, no response head within ' +
              '`timeouts.headers_ms`) is taken out of rotation, then let back in on probation, where one more ' +
              'failure takes it out again. Any response, whatever its status, counts as healthy. When every target ' +
              'is out, all of them take traffic again. Ejections are `upstream.ejected` and `upstream.restored` ' +
              'events (log lines, `kycgate_events_total`, the audit trail when on). State is per process and ' +
              'starts afresh on a config reload.',
            properties: {
              consecutive_failures: {
                type: 'integer',
                minimum: 0,
                maximum: 1000,
                default: 3,
                description:
                  'Failed exchanges in a row that take a target out of rotation; 0 turns passive health off.',
              },
              eject_ms: {
                type: 'integer',
                minimum: 100,
                maximum: 3600000,
                default: 10000,
                description: 'How long a target stays out of rotation before it gets traffic again.',
              },
            },
            additionalProperties: false,
            default: {},
          },
          active_health: {
            type: 'object',
            description:
              'Active health checks (groups of several targets): every target is probed with `GET <path>` on a ' +
              'timer; a probe passes with a complete answer of status below 400 within `timeout_ms`. A target that ' +
              'fails `unhealthy_after` probes in a row is out of rotation until it passes `healthy_after` in a ' +
              'row. Targets start in rotation. Changes are `upstream.unhealthy` and `upstream.healthy` events. ' +
              'Works alongside `passive_health`: a target is chosen only when neither keeps it out, and when every ' +
              'target is out, all of them take traffic again.',
            properties: {
              path: {
                type: 'string',
                pattern: '^/',
                description: 'Path probed on each target, as is (not prefixed with a base path in the target URL).',
              },
              interval_ms: {
                type: 'integer',
                minimum: 100,
                maximum: 3600000,
                default: 5000,
                description: 'Time between probes of a target.',
              },
              timeout_ms: {
                type: 'integer',
                minimum: 10,
                maximum: 60000,
                default: 2000,
                description: 'A probe without a complete answer in this time failed.',
              },
              unhealthy_after: {
                type: 'integer',
                minimum: 1,
                maximum: 100,
                default: 2,
                description: 'Failed probes in a row that take a target out of rotation.',
              },
              healthy_after: {
                type: 'integer',
                minimum: 1,
                maximum: 100,
                default: 2,
                description: 'Passed probes in a row that bring it back.',
              },
            },
            required: ['path'],
            additionalProperties: false,
          },
          idempotent_retries: {
            type: 'integer',
            minimum: 0,
            maximum: 5,
            default: 1,
            description:
              'How many times an idempotent request (GET, HEAD, OPTIONS, TRACE, PUT, DELETE) without a body, or ' +
              'with its body read into memory by a policy, is sent again when the upstream connection was reset or ' +
              'closed after the request went out and before any response head (typically a keep-alive connection ' +
              'the upstream closed at that moment; RFC 9110 9.2.2). It goes to another target in rotation when ' +
              'there is one, else to the same target on another connection. Timeouts are never retried. 0 turns it ' +
              'off.',
          },
          connect_retries: {
            type: 'integer',
            minimum: 0,
            maximum: 10,
            default: 1,
            description:
              'When no connection to the chosen target can be made (refused, unreachable, TLS handshake failed, ' +
              'connect timeout), the request was never sent: try it on up to this many other targets in rotation ' +
              'before answering 502 or 504. A request that reached a target is not retried by this (see ' +
              '`idempotent_retries`). 0 turns it off; no effect with a single target.',
          },
          tls: {
            type: 'object',
            description: 'TLS towards https targets.',
            properties: {
              ca: { type: 'string', description: 'PEM file of CA certificates to trust instead of the system roots.' },
              servername: {
                type: 'string',
                description: 'SNI and certificate name to check (default: the target host).',
              },
              reject_unauthorized: {
                type: 'boolean',
                default: true,
                description: 'Verify the upstream certificate. Turn off only for local testing.',
              },
              spiffe: {
                type: 'object',
                description:
                  "The upstream presents an X509-SVID: validated with the SPIFFE rules against its trust domain's " +
                  'bundle and pinned to an ID or trust domain on every connection, resumed ones included (replaces ca ' +
                  'and host name checks). See docs/MTLS.md.',
                properties: {
                  trust_domains: trustDomainsSchema(
                    "Trust domains (with bundle files) the upstream's SVID may chain to.",
                    {
                      name: 'Trust domain name.',
                      bundle: 'Bundle file (PEM or SPIFFE bundle); reloaded when it changes.',
                    },
                    1,
                  ),
                  id: {
                    type: 'string',
                    pattern: '^spiffe://',
                    description: 'Exact SPIFFE ID the upstream must present.',
                  },
                  trust_domain: {
                    ...trustDomainNameSchema,
                    description: "Trust domain the upstream's SPIFFE ID must belong to.",
                  },
                  client_svid: {
                    type: 'object',
                    description:
                      "Present the gateway's own X509-SVID from the Workload API as client certificate (mTLS).",
                    properties: {
                      socket: {
                        type: 'string',
                        pattern: '^(unix:///|tcp://)',
                        description: 'Workload API endpoint; default SPIFFE_ENDPOINT_SOCKET.',
                      },
                      spiffe_id: {
                        type: 'string',
                        pattern: '^spiffe://',
                        description: 'Which SVID to present; default the first.',
                      },
                    },
                    additionalProperties: false,
                  },
                },
                required: ['trust_domains'],
                anyOf: [{ required: ['id'] }, { required: ['trust_domain'] }],
                additionalProperties: false,
              },
            },
            additionalProperties: false,
          },
        },
        required: ['targets'],
        additionalProperties: false,
      },
      default: {},
    },
    vault: vaultSchema,
    routes: {
      type: 'array',
      description: 'Routes, matched by host, method and path. The most specific match wins.',
      items: {
        type: 'object',
        properties: {
          name: {
            type: 'string',
            pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$',
            description: 'Route name, used in logs, metrics and audit records.',
          },
          match: {
            type: 'object',
            description: 'What requests this route takes. Give `path` or `prefix`.',
            properties: {
              hosts: {
                type: 'array',
                items: { type: 'string', pattern: '^(\\*\\.)?[A-Za-z0-9.-]+$' },
                description: 'Host names (without port); `*.example.com` matches one label. Empty: any host.',
              },
              methods: {
                type: 'array',
                items: { type: 'string', pattern: '^[A-Z]+$' },
                description: 'HTTP methods. Empty: any method.',
              },
              path: {
                type: 'string',
                pattern: '^/',
                description:
                  'Exact path (`/health`), with parameters (`/users/:id`), or ending in a wildcard (`/static/*`).',
              },
              prefix: {
                type: 'string',
                pattern: '^/',
                description: 'Path prefix: matches the prefix and everything below it, on segment boundaries.',
              },
            },
            anyOf: [{ required: ['path'] }, { required: ['prefix'] }],
            additionalProperties: false,
          },
          upstream: {
            type: 'string',
            description: 'Upstream group to forward to. Omit for routes answered by a policy (e.g. static-response).',
          },
          strip_prefix: { type: 'string', pattern: '^/', description: 'Path prefix removed before forwarding.' },
          preserve_host: {
            type: 'boolean',
            default: false,
            description:
              "Forward the client's Host header instead of the target's host (the original is always in X-Forwarded-Host).",
          },
          websocket: {
            type: 'boolean',
            default: false,
            description:
              'Let WebSocket handshakes (RFC 6455: GET, `Upgrade: websocket`, `Connection: upgrade`, a valid ' +
              "`Sec-WebSocket-Key`, version 13) through to the upstream once the route's policies allowed the " +
              "handshake, and relay the connection both ways after the upstream's 101. Off: the handshake is an " +
              'ordinary request without its Upgrade header. Other upgrades (h2c ...) are never passed on.',
          },
          max_body_bytes: { type: 'integer', minimum: 0, description: 'Overrides defaults.max_body_bytes.' },
          timeouts: timeoutsSchema,
          policies: { ...policyListSchema, default: [] },
          disable_default_policies: {
            type: 'array',
            items: { type: 'string' },
            default: [],
            description: 'Names of default policies not applied to this route.',
          },
        },
        required: ['name', 'match'],
        additionalProperties: false,
      },
      default: [],
    },
  },
  required: ['listeners'],
  additionalProperties: false,
} as const;
