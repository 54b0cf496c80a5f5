/**
 * The gateway's configuration schema (JSON Schema draft 2020-12 subset understood by ajv). Every key is documented
 * here, in its `description`; `kycgate schema` prints the assembled schema, and docs/config.schema.json is a copy
 * kept in sync by a test. Policy configs are validated against each policy's own schema (src/policies/<name>/).
 */

import { decisionListenerSchema } from './decision-listener.js';
import { vaultSchema } from './secret-ref-schema.js';
import { upstreamsSchema } from './upstream-schema.js';
import { listenerHttp2Schema, serverHttp2Schema } from './http2-schema.js';
import { trustDomainsSchema } from '../workload-identity/schema.js';
import { ADDRESS_OR_CIDR } from '../shared/address-list.js';
import { adminApiSchema, adminTlsSchema } from './admin-api-schema.js';

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
    data_dir: {
      type: 'string',
      minLength: 1,
      description:
        'Directory for what the gateway writes: the embedded SQLite store, the audit journal, generated keys, the ' +
        "admin key file. Relative paths are resolved against the config file's directory (default `.kycgate` " +
        'next to the file; the built-in demo: `./.kycgate`). KYCGATE_DATA_DIR overrides it. Every command given ' +
        'the same config (`start`, `keys`, `audit`, `admin`, `faults`, `drill`) uses it. Read at start only.',
    },
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
          http2: listenerHttp2Schema,
          decision: decisionListenerSchema,
        },
        required: ['name', 'port'],
        additionalProperties: false,
      },
    },
    admin: {
      type: 'object',
      description:
        'Admin listener: /healthz, /readyz, /metrics and the admin API (`api`). Bind it to a private address.',
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
        tls: adminTlsSchema,
        api: adminApiSchema,
      },
      additionalProperties: false,
      default: {},
    },
    server: {
      type: 'object',
      description: 'Client-side HTTP limits and behaviour, for every listener.',
      properties: {
        workers: {
          anyOf: [
            { const: 'auto', description: 'One worker per CPU the process may use (os.availableParallelism()).' },
            { type: 'integer', minimum: 1, maximum: 256 },
          ],
          default: 1,
          description:
            'Worker processes serving the listeners (node:cluster): `auto` or a number. With more than one, a ' +
            'supervisor process owns the listening sockets and hands connections to workers in turn, restarts a ' +
            'worker that dies (backoff up to 10 s), forwards SIGHUP and drains every worker on SIGTERM. Local rate ' +
            'limits stay exact (the counters live in the supervisor), cache invalidations reach every worker, each ' +
            'worker writes its own audit chain under `audit/worker-<n>/` (`kycgate audit verify` and `export` read ' +
            'them as one), and the admin listener and the embedded sandbox run once, in worker 0, with /metrics ' +
            'summed over workers. Read at start: a change takes effect on restart.',
        },
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
        http2: serverHttp2Schema,
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
      description: 'Logs on standard output: JSON lines (ISO 8601 `time`), or readable lines on a terminal.',
      properties: {
        format: {
          enum: ['auto', 'json', 'pretty'],
          default: 'auto',
          description:
            'auto: readable, coloured lines when standard output is a terminal, JSON lines otherwise (a file, a ' +
            'pipe, a container log). json or pretty: always that. JSON lines carry `time` as ISO 8601 (UTC).',
        },
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
    upstreams: upstreamsSchema,
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
          critical: {
            type: 'boolean',
            default: false,
            description:
              'The route supports a critical or important function (DORA Art. 3(22)): no fault is ever injected on it ' +
              'unless the fault sets `allow_critical`, and its downtime counts as downtime of a critical service when ' +
              'incidents are classified (docs/DORA.md).',
          },
          function: {
            type: 'string',
            pattern: '^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$',
            description: 'The business function the route supports (e.g. `payments`), named in incident reports.',
          },
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
