/**
 * The `audit` config section: the tamper-evident journal, the sinks that ship it to a SIEM, Prometheus metrics and
 * OpenTelemetry tracing. Every key is documented here; docs/AUDIT.md explains how they fit together.
 */
import { secretRefSchema } from '../config/secret-ref-schema.js';
import type { SecretRef } from '../config/types.js';

const headerList = {
  type: 'array',
  items: { type: 'string', pattern: "^[A-Za-z0-9!#$%&'*+.^_`|~-]+$" },
  default: [],
} as const;

const sinkSchema = {
  type: 'object',
  description: 'A destination the journal is shipped to, at least once and in order, from a persisted cursor.',
  properties: {
    name: {
      type: 'string',
      pattern: '^[a-z0-9][a-z0-9_-]*$',
      description:
        'Sink name: names its cursor file (audit/cursors/<name>.json) and its metrics label. Renaming a sink re-sends the journal.',
    },
    type: {
      enum: ['file', 'syslog', 'http'],
      description:
        'file: rotating JSON-lines file. syslog: RFC 5424 over TCP (octet counting), optionally TLS. http: batched JSON POST.',
    },
    batch_records: {
      type: 'integer',
      minimum: 1,
      maximum: 10000,
      default: 500,
      description: 'Most records sent in one batch (one POST, one file write, one syslog burst).',
    },
    retry_initial_ms: {
      type: 'integer',
      minimum: 10,
      default: 500,
      description: 'First retry delay after a failed delivery; doubles on every failure (with jitter).',
    },
    retry_max_ms: { type: 'integer', minimum: 10, default: 30000, description: 'Longest delay between retries.' },
    path: { type: 'string', description: 'file: output file (relative paths are under the data directory).' },
    max_bytes: {
      type: 'integer',
      minimum: 1024,
      default: 104857600,
      description: 'file: rotate when the file passes this size.',
    },
    keep_files: {
      type: 'integer',
      minimum: 1,
      default: 10,
      description: 'file: rotated files kept (<path>.1 is the newest).',
    },
    host: { type: 'string', description: 'syslog: collector host.' },
    port: {
      type: 'integer',
      minimum: 1,
      maximum: 65535,
      description: 'syslog: collector port (6514 is usual for TLS, 601 for plain TCP).',
    },
    tls: {
      type: 'object',
      description: 'syslog: use TLS (RFC 5425).',
      properties: {
        ca: {
          type: 'string',
          description: 'PEM file of the CA that signed the collector certificate (default: system CAs).',
        },
        servername: { type: 'string', description: 'Name checked against the collector certificate (default: host).' },
      },
      additionalProperties: false,
    },
    facility: {
      type: 'integer',
      minimum: 0,
      maximum: 23,
      default: 13,
      description: 'syslog: facility number (13 = log audit).',
    },
    app_name: { type: 'string', default: 'kycgate', description: 'syslog: APP-NAME field.' },
    url: {
      type: 'string',
      pattern: '^https?://',
      description: 'http: URL receiving POSTs of a JSON array of records (2xx = delivered).',
    },
    authorization: {
      ...secretRefSchema,
      description: 'http: value of the Authorization header sent with each batch, as a secret reference.',
    },
    timeout_ms: {
      type: 'integer',
      minimum: 1,
      default: 10000,
      description: 'http and syslog: time allowed for one delivery.',
    },
  },
  required: ['name', 'type'],
  allOf: [
    { if: { properties: { type: { const: 'http' } } }, then: { required: ['url'] } },
    { if: { properties: { type: { const: 'file' } } }, then: { required: ['path'] } },
    { if: { properties: { type: { const: 'syslog' } } }, then: { required: ['host', 'port'] } },
  ],
  additionalProperties: false,
} as const;

export const auditSchema = {
  type: 'object',
  description:
    'Audit trail (hash-chained, signed journal shipped to SIEM sinks), Prometheus metrics and OpenTelemetry tracing.',
  properties: {
    enabled: {
      type: 'boolean',
      default: false,
      description: 'Write the audit journal (one record per request and per security event) under <data dir>/audit/.',
    },
    durability: {
      enum: ['group', 'sync'],
      default: 'group',
      description:
        'group: records are written and fsynced in batches every group_commit_ms (a crash loses at most that ' +
        'window). sync: events that change state (key.*, secret.rotated, config.reloaded, config.refused, ' +
        'kyc.status.changed, kyc.session.created, webhook.accepted) are written and fsynced before the ' +
        'emitter continues (so before the answer is sent); other events, such as refusals of single ' +
        'requests, are group-committed; every write is synchronous.',
    },
    separate_request_events: {
      type: 'boolean',
      default: false,
      description:
        "Also write a request's auth.success and kyc.decision events as records of their own. Off: the request's " +
        'record carries their facts (consumer, auth_method, credential_id, spiffe_id, subject, and the KYC ' +
        'decision as `decision`, or as `kyc` when a later policy refused), one record per request.',
    },
    group_commit_ms: {
      type: 'integer',
      minimum: 1,
      maximum: 5000,
      default: 50,
      description:
        'Group-commit period: pending records are written and fsynced together this often (one write and one ' +
        'fsync per period under load). A crash loses at most the records of about this window; shorter ' +
        'windows cost more CPU and disk operations.',
    },
    segment_bytes: {
      type: 'integer',
      minimum: 4096,
      default: 67108864,
      description: 'Start a new journal segment file when the current one passes this size.',
    },
    checkpoint_records: {
      type: 'integer',
      minimum: 1,
      default: 10000,
      description:
        'Write a signed checkpoint after this many records (checked at each group commit). Each checkpoint ' +
        'is one more signed and synchronous write; checkpoint_seconds bounds the time between checkpoints ' +
        'whatever the load.',
    },
    checkpoint_seconds: {
      type: 'integer',
      minimum: 1,
      default: 60,
      description: 'Write a signed checkpoint at least this often when records were added.',
    },
    signing_key: {
      ...secretRefSchema,
      description:
        'Ed25519 private key (PEM, PKCS#8) signing checkpoints. Default: generated once and kept in <data ' +
        'dir>/audit/signing-key.pem, with the public key beside it.',
    },
    retention_days: {
      type: 'integer',
      minimum: 0,
      default: 0,
      description:
        'Delete journal segments older than this many days, once every sink has delivered them. 0 keeps everything.',
    },
    disk_alarm_bytes: {
      type: 'integer',
      minimum: 0,
      default: 1073741824,
      description:
        'Raise the disk alarm (metric kycgate_audit_disk_alarm and an error log) when the journal passes this size. 0 disables.',
    },
    max_pending_records: {
      type: 'integer',
      minimum: 100,
      default: 100000,
      description:
        'Records held in memory while the journal cannot be written. Past this, records are counted in the ' +
        'kycgate_audit_records_dropped_total metric and logged as an error, never dropped silently.',
    },
    request_headers: {
      ...headerList,
      description:
        'Request headers copied into request records. Authorization, Cookie, Proxy-Authorization, X-Api-Key ' +
        'and redact_headers are recorded as "[redacted]" even when listed.',
    },
    response_headers: {
      ...headerList,
      description:
        'Response headers set by the gateway\'s policies copied into request records. Set-Cookie and redact_headers are recorded as "[redacted]".',
    },
    redact_headers: { ...headerList, description: 'Further header names whose values never appear in records.' },
    sinks: {
      type: 'array',
      items: sinkSchema,
      default: [],
      description: 'Where the journal is shipped (SIEM). Each reads the journal from disk with its own cursor.',
    },
    metrics: {
      type: 'object',
      default: {},
      properties: {
        enabled: {
          type: 'boolean',
          default: true,
          description: 'Serve Prometheus metrics at /metrics on the admin listener.',
        },
      },
      additionalProperties: false,
    },
    tracing: {
      type: 'object',
      default: {},
      description:
        'OpenTelemetry spans for requests and provider calls, exported over OTLP/HTTP. Off by default; when off no span is created.',
      properties: {
        enabled: { type: 'boolean', default: false, description: 'Create and export spans.' },
        endpoint: {
          type: 'string',
          pattern: '^https?://',
          default: 'http://127.0.0.1:4318/v1/traces',
          description: 'OTLP/HTTP traces endpoint.',
        },
        service_name: { type: 'string', default: 'kycgate', description: 'service.name resource attribute.' },
        sample_ratio: {
          type: 'number',
          minimum: 0,
          maximum: 1,
          default: 1,
          description: 'Share of new traces sampled (a sampled incoming traceparent is always followed).',
        },
      },
      additionalProperties: false,
    },
  },
  additionalProperties: false,
  default: {},
} as const;

export interface SinkConfig {
  name: string;
  type: 'file' | 'syslog' | 'http';
  batch_records: number;
  retry_initial_ms: number;
  retry_max_ms: number;
  path?: string;
  max_bytes: number;
  keep_files: number;
  host?: string;
  port?: number;
  tls?: { ca?: string; servername?: string };
  facility: number;
  app_name: string;
  url?: string;
  authorization?: SecretRef;
  timeout_ms: number;
}

export interface AuditConfig {
  enabled: boolean;
  durability: 'group' | 'sync';
  separate_request_events: boolean;
  group_commit_ms: number;
  segment_bytes: number;
  checkpoint_records: number;
  checkpoint_seconds: number;
  signing_key?: SecretRef;
  retention_days: number;
  disk_alarm_bytes: number;
  max_pending_records: number;
  request_headers: string[];
  response_headers: string[];
  redact_headers: string[];
  sinks: SinkConfig[];
  metrics: { enabled: boolean };
  tracing: { enabled: boolean; endpoint: string; service_name: string; sample_ratio: number };
}
