/** The `upstreams` section: named groups of targets, their balancing, pools, health checks, retries and TLS. */
import { upstreamHttp2Schema } from './http2-schema.js';

import { trustDomainNameSchema, trustDomainsSchema } from '../workload-identity/schema.js';
export const upstreamsSchema = {
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
            description: 'Failed exchanges in a row that take a target out of rotation; 0 turns passive health off.',
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
      http2: upstreamHttp2Schema,
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
                description: "Present the gateway's own X509-SVID from the Workload API as client certificate (mTLS).",
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
};
