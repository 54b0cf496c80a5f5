/**
 * Every operation of the admin API: method, path, the role it needs, its parameters and bodies (schemas.ts). The
 * router, the request validation, the OpenAPI document and the `kycgate admin` commands are all made from this list,
 * so they cannot disagree. Handlers are in handlers/ (by operation id).
 */
import type { AdminRole } from '../config/admin-api-schema.js';
import { DURATION, page, ref, type JsonSchema } from './schemas.js';

export const API_PREFIX = '/admin/api/v1';
export const OPENAPI_PATH = '/admin/api/openapi.json';

export interface Parameter {
  name: string;
  schema: JsonSchema;
  description: string;
  required?: boolean;
}

export interface Operation {
  id: string;
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  /** Below API_PREFIX, OpenAPI style: `/consumers/{name}`. */
  path: string;
  role: AdminRole;
  tag: string;
  summary: string;
  params?: Parameter[];
  query?: Parameter[];
  body?: { schema: JsonSchema; required: boolean };
  /** Success status and body schema; `contentType` for non-JSON answers (audit export). */
  response: { status: number; schema?: JsonSchema; contentType?: string; description: string };
  /** `kycgate admin <group> <command>`. */
  cli: readonly [string, string];
  /** Changes state: audited as an `admin.<tag>.<verb>` event naming the actor. */
  audit?: string;
}

const s = (description: string, extra: JsonSchema = {}): JsonSchema => ({ type: 'string', description, ...extra });
const LIMIT: Parameter = {
  name: 'limit',
  schema: { type: 'integer', minimum: 1, maximum: 500, default: 50 },
  description: 'Items per page (1-500, default 50).',
};
const CURSOR: Parameter = {
  name: 'cursor',
  schema: s('`next_cursor` of the previous page.', { maxLength: 1000 }),
  description: 'Where to continue.',
};
const WINDOW: Parameter = {
  name: 'window',
  schema: s('How far back, e.g. `1h`, `24h` (at most 24 h).', { pattern: DURATION, default: '1h' }),
  description: 'Window ending now.',
};
const NAME_PARAM: Parameter = { name: 'name', schema: s('Consumer name.'), description: 'Consumer name.' };
const KEY_ID: Parameter = { name: 'id', schema: s('Key id.', { pattern: '^[0-9A-Za-z]{8}$' }), description: 'Key id.' };
const SUBJECT: Parameter = {
  name: 'subject',
  schema: s('Pseudonym.', { pattern: '^sub_[A-Za-z0-9_-]{1,100}$' }),
  description: 'Pseudonymous subject (`sub_…`).',
};
const json = (schema: JsonSchema, description: string, status = 200) => ({ status, schema, description });

export const OPERATIONS: readonly Operation[] = [
  {
    id: 'whoami',
    method: 'GET',
    path: '/me',
    role: 'viewer',
    tag: 'session',
    summary: 'Who the credential is and its role (a dashboard checks a login with it).',
    response: json(ref('Principal'), 'The caller.'),
    cli: ['me', 'show'],
  },
  // Consumers
  {
    id: 'listConsumers',
    method: 'GET',
    path: '/consumers',
    role: 'viewer',
    tag: 'consumers',
    summary: 'List consumers, from the config file (read-only) and the store, by name.',
    query: [LIMIT, CURSOR],
    response: json(page('Consumer'), 'A page of consumers.'),
    cli: ['consumers', 'list'],
  },
  {
    id: 'createConsumer',
    method: 'POST',
    path: '/consumers',
    role: 'operator',
    tag: 'consumers',
    summary: 'Create a consumer in the store; every instance knows it within a second.',
    body: { schema: ref('ConsumerCreate'), required: true },
    response: json(ref('Consumer'), 'Created.', 201),
    cli: ['consumers', 'create'],
    audit: 'admin.consumer.created',
  },
  {
    id: 'getConsumer',
    method: 'GET',
    path: '/consumers/{name}',
    role: 'viewer',
    tag: 'consumers',
    summary: 'One consumer.',
    params: [NAME_PARAM],
    response: json(ref('Consumer'), 'The consumer.'),
    cli: ['consumers', 'get'],
  },
  {
    id: 'updateConsumer',
    method: 'PATCH',
    path: '/consumers/{name}',
    role: 'operator',
    tag: 'consumers',
    summary: "Change a store consumer's scopes, groups, plan, metadata or disabled flag (config consumers: 409).",
    params: [NAME_PARAM],
    body: { schema: ref('ConsumerUpdate'), required: true },
    response: json(ref('Consumer'), 'Updated.'),
    cli: ['consumers', 'update'],
    audit: 'admin.consumer.updated',
  },
  {
    id: 'deleteConsumer',
    method: 'DELETE',
    path: '/consumers/{name}',
    role: 'operator',
    tag: 'consumers',
    summary: 'Delete a store consumer and revoke its API keys.',
    params: [NAME_PARAM],
    response: json(ref('ConsumerDeleted'), 'Deleted.'),
    cli: ['consumers', 'delete'],
    audit: 'admin.consumer.deleted',
  },
  // API keys
  {
    id: 'listKeys',
    method: 'GET',
    path: '/keys',
    role: 'viewer',
    tag: 'keys',
    summary: 'List client API keys (never the keys themselves), oldest first.',
    query: [{ name: 'consumer', schema: s('Consumer.'), description: "Only this consumer's keys." }, LIMIT, CURSOR],
    response: json(page('ApiKey'), 'A page of keys.'),
    cli: ['keys', 'list'],
  },
  {
    id: 'createKey',
    method: 'POST',
    path: '/keys',
    role: 'operator',
    tag: 'keys',
    summary: 'Create a client API key; the answer shows the key once.',
    body: { schema: ref('ApiKeyCreate'), required: true },
    response: json(ref('ApiKeyCreated'), 'Created.', 201),
    cli: ['keys', 'create'],
    audit: 'admin.key.created',
  },
  {
    id: 'getKey',
    method: 'GET',
    path: '/keys/{id}',
    role: 'viewer',
    tag: 'keys',
    summary: 'One key.',
    params: [KEY_ID],
    response: json(ref('ApiKey'), 'The key.'),
    cli: ['keys', 'get'],
  },
  {
    id: 'rotateKey',
    method: 'POST',
    path: '/keys/{id}/rotate',
    role: 'operator',
    tag: 'keys',
    summary: 'Issue a replacement; the old key works for the overlap, then stops.',
    params: [KEY_ID],
    body: { schema: ref('ApiKeyRotate'), required: false },
    response: json(ref('ApiKeyRotated'), 'Rotated.', 201),
    cli: ['keys', 'rotate'],
    audit: 'admin.key.rotated',
  },
  {
    id: 'revokeKey',
    method: 'POST',
    path: '/keys/{id}/revoke',
    role: 'operator',
    tag: 'keys',
    summary: 'Revoke a key: refused from the next request on every instance.',
    params: [KEY_ID],
    response: json(ref('ApiKey'), 'Revoked.'),
    cli: ['keys', 'revoke'],
    audit: 'admin.key.revoked',
  },
  // Subjects
  {
    id: 'listBlockedSubjects',
    method: 'GET',
    path: '/subjects/blocked',
    role: 'operator',
    tag: 'subjects',
    summary: 'Blocked subjects.',
    query: [LIMIT, CURSOR],
    response: json(page('SubjectBlock'), 'A page of blocks.'),
    cli: ['subjects', 'blocked'],
  },
  {
    id: 'lookupSubject',
    method: 'POST',
    path: '/subjects/lookup',
    role: 'operator',
    tag: 'subjects',
    summary: 'Find a subject by the end user id, pseudonymised as the gate does (the id is in the body, never a URL).',
    body: { schema: ref('SubjectLookup'), required: true },
    response: json(ref('Subject'), 'The subject (an unknown one is `unverified` with no rows).'),
    cli: ['subjects', 'lookup'],
  },
  {
    id: 'getSubject',
    method: 'GET',
    path: '/subjects/{subject}',
    role: 'operator',
    tag: 'subjects',
    summary: 'A subject by pseudonym: status, claims and expiry, sessions, history, block.',
    params: [SUBJECT],
    response: json(ref('Subject'), 'The subject.'),
    cli: ['subjects', 'get'],
  },
  {
    id: 'blockSubject',
    method: 'POST',
    path: '/subjects/{subject}/block',
    role: 'operator',
    tag: 'subjects',
    summary: 'Block a subject: every kyc-gate answers 403 subject-blocked.',
    params: [SUBJECT],
    body: { schema: ref('Block'), required: false },
    response: json(ref('SubjectBlock'), 'Blocked.'),
    cli: ['subjects', 'block'],
    audit: 'admin.subject.blocked',
  },
  {
    id: 'unblockSubject',
    method: 'POST',
    path: '/subjects/{subject}/unblock',
    role: 'operator',
    tag: 'subjects',
    summary: 'Lift a block.',
    params: [SUBJECT],
    response: json(ref('Subject'), 'The subject, unblocked.'),
    cli: ['subjects', 'unblock'],
    audit: 'admin.subject.unblocked',
  },
  {
    id: 'eraseSubject',
    method: 'DELETE',
    path: '/subjects/{subject}',
    role: 'admin',
    tag: 'subjects',
    summary: "Erase a subject's verification records, sessions, webhook events and history (GDPR art. 17).",
    params: [SUBJECT],
    response: json(ref('SubjectErased'), 'Erased.'),
    cli: ['subjects', 'erase'],
    audit: 'admin.subject.erased',
  },
  // Webhooks
  {
    id: 'listWebhookEvents',
    method: 'GET',
    path: '/webhooks/events',
    role: 'viewer',
    tag: 'webhooks',
    summary: 'Stored webhook events that need attention: unmatched, failed (parked) or still retrying; newest first.',
    query: [
      {
        name: 'status',
        schema: { type: 'string', enum: ['unmatched', 'failed', 'retrying', 'all'], default: 'all' },
        description: 'Which ones.',
      },
      LIMIT,
      CURSOR,
    ],
    response: json(page('WebhookEvent'), 'A page of events.'),
    cli: ['webhooks', 'list'],
  },
  {
    id: 'replayWebhookEvent',
    method: 'POST',
    path: '/webhooks/events/{provider}/{event_id}/replay',
    role: 'operator',
    tag: 'webhooks',
    summary: 'Apply a stored event again now.',
    params: [
      { name: 'provider', schema: s('Provider.'), description: 'Provider name.' },
      { name: 'event_id', schema: s('Event id.'), description: 'Event id.' },
    ],
    response: json(ref('WebhookReplayed'), 'Applied (see outcome).'),
    cli: ['webhooks', 'replay'],
    audit: 'admin.webhook.replayed',
  },
  // Audit
  {
    id: 'queryAudit',
    method: 'GET',
    path: '/audit/records',
    role: 'operator',
    tag: 'audit',
    summary: "Query this instance's audit journal; a page stops after 50,000 records scanned (`complete: false`).",
    query: [
      { name: 'since', schema: s('From (inclusive).', { format: 'date-time' }), description: 'ISO time.' },
      { name: 'until', schema: s('Until (exclusive).', { format: 'date-time' }), description: 'ISO time.' },
      { name: 'request_id', schema: s('Request id.'), description: 'Records of this request.' },
      { name: 'consumer', schema: s('Consumer.'), description: 'Consumer.' },
      { name: 'subject', schema: s('Subject pseudonym.'), description: 'Subject.' },
      { name: 'outcome', schema: s('Decision outcome or event outcome.'), description: 'e.g. `deny`, `challenge`.' },
      { name: 'type', schema: s('Record type.'), description: 'e.g. `http.request`, `auth.failure`.' },
      { name: 'route', schema: s('Route.'), description: 'Route name.' },
      {
        name: 'order',
        schema: { type: 'string', enum: ['asc', 'desc'], default: 'desc' },
        description: '`desc`: newest first.',
      },
      LIMIT,
      CURSOR,
    ],
    response: json(
      page(
        'AuditRecord',
        {
          scanned: { type: 'integer', minimum: 0, description: 'Records read for this page.' },
          complete: { type: 'boolean', description: 'False when the scan stopped at its bound: follow next_cursor.' },
        },
        ['scanned', 'complete'],
      ),
      'A page of records.',
    ),
    cli: ['audit', 'query'],
  },
  {
    id: 'verifyAudit',
    method: 'GET',
    path: '/audit/verify',
    role: 'viewer',
    tag: 'audit',
    summary: "Verify this instance's journal (hashes, chain, signed checkpoints), off the event loop.",
    response: json(ref('AuditVerify'), 'The result (ok false names the first problem).'),
    cli: ['audit', 'verify'],
  },
  {
    id: 'exportAudit',
    method: 'GET',
    path: '/audit/export',
    role: 'operator',
    tag: 'audit',
    summary: 'Export records of a time window as JSON lines (as stored) or CEF.',
    query: [
      { name: 'since', schema: s('From.', { format: 'date-time' }), description: 'ISO time.' },
      { name: 'until', schema: s('Until.', { format: 'date-time' }), description: 'ISO time.' },
      {
        name: 'format',
        schema: { type: 'string', enum: ['jsonl', 'cef'], default: 'jsonl' },
        description: 'Output format.',
      },
    ],
    response: {
      status: 200,
      contentType: 'application/x-ndjson',
      description: 'One record per line (CEF: text/plain).',
    },
    cli: ['audit', 'export'],
  },
  // Runtime
  {
    id: 'getConfig',
    method: 'GET',
    path: '/runtime/config',
    role: 'operator',
    tag: 'runtime',
    summary: 'The effective configuration, secrets redacted.',
    response: json(ref('EffectiveConfig'), 'The config.'),
    cli: ['runtime', 'config'],
  },
  {
    id: 'getRuntimeState',
    method: 'GET',
    path: '/runtime/state',
    role: 'viewer',
    tag: 'runtime',
    summary: 'Store, Redis, rate-limit counters, readiness.',
    response: json(ref('RuntimeState'), 'State.'),
    cli: ['runtime', 'state'],
  },
  {
    id: 'listUpstreams',
    method: 'GET',
    path: '/runtime/upstreams',
    role: 'viewer',
    tag: 'runtime',
    summary: 'Upstream targets and whether each takes traffic.',
    response: json(
      {
        type: 'object',
        properties: { items: { type: 'array', items: ref('UpstreamTarget') } },
        required: ['items'],
        additionalProperties: false,
      },
      'Targets.',
    ),
    cli: ['runtime', 'upstreams'],
  },
  {
    id: 'listProviders',
    method: 'GET',
    path: '/runtime/providers',
    role: 'viewer',
    tag: 'runtime',
    summary: 'Verification providers and their circuit breakers.',
    response: json(
      {
        type: 'object',
        properties: { items: { type: 'array', items: ref('Provider') } },
        required: ['items'],
        additionalProperties: false,
      },
      'Providers.',
    ),
    cli: ['runtime', 'providers'],
  },
  {
    id: 'listCertificates',
    method: 'GET',
    path: '/runtime/certificates',
    role: 'viewer',
    tag: 'runtime',
    summary: 'Certificates and SVIDs served by TLS listeners (the admin listener too), with their expiry.',
    response: json(
      {
        type: 'object',
        properties: { items: { type: 'array', items: ref('Certificate') } },
        required: ['items'],
        additionalProperties: false,
      },
      'Certificates.',
    ),
    cli: ['runtime', 'certificates'],
  },
  {
    id: 'listInstances',
    method: 'GET',
    path: '/runtime/instances',
    role: 'viewer',
    tag: 'runtime',
    summary: 'Gateway instances sharing this store (heartbeat every 10 s; those gone for over a day are dropped).',
    response: json(
      {
        type: 'object',
        properties: { items: { type: 'array', items: ref('Instance') } },
        required: ['items'],
        additionalProperties: false,
      },
      'Instances.',
    ),
    cli: ['runtime', 'instances'],
  },
  // Statistics
  {
    id: 'decisionStats',
    method: 'GET',
    path: '/stats/decisions',
    role: 'viewer',
    tag: 'stats',
    summary: 'Decisions over time (this instance, per minute, up to 24 h), by route and consumer.',
    query: [
      WINDOW,
      {
        name: 'step',
        schema: s('Bucket width, a multiple of 1m.', { pattern: DURATION, default: '1m' }),
        description: 'Bucket.',
      },
      { name: 'route', schema: s('Route.'), description: 'Only this route.' },
      { name: 'consumer', schema: s('Consumer (`-`: none).'), description: 'Only this consumer.' },
    ],
    response: json(ref('DecisionSeries'), 'The series.'),
    cli: ['stats', 'decisions'],
  },
  {
    id: 'refusalStats',
    method: 'GET',
    path: '/stats/refusals',
    role: 'viewer',
    tag: 'stats',
    summary: 'Top refusal reasons: problem types answered and authentication failure reasons (this instance).',
    query: [WINDOW],
    response: json(ref('Refusals'), 'Counts.'),
    cli: ['stats', 'refusals'],
  },
  {
    id: 'kycFunnel',
    method: 'GET',
    path: '/stats/kyc-funnel',
    role: 'viewer',
    tag: 'stats',
    summary:
      'The KYC funnel: challenged, sessions started, approved, declined, expired; conversion and time to verify.',
    query: [{ ...WINDOW, schema: s('How far back, e.g. `24h`, `30d`.', { pattern: DURATION, default: '24h' }) }],
    response: json(ref('KycFunnel'), 'The funnel.'),
    cli: ['stats', 'kyc-funnel'],
  },
  // Admin keys
  {
    id: 'listAdminKeys',
    method: 'GET',
    path: '/admin-keys',
    role: 'admin',
    tag: 'admin-keys',
    summary: 'Admin keys in the store (never the keys).',
    query: [LIMIT, CURSOR],
    response: json(page('AdminKey'), 'A page of admin keys.'),
    cli: ['admin-keys', 'list'],
  },
  {
    id: 'createAdminKey',
    method: 'POST',
    path: '/admin-keys',
    role: 'admin',
    tag: 'admin-keys',
    summary: 'Create an admin key; the answer shows it once.',
    body: { schema: ref('AdminKeyCreate'), required: true },
    response: json(ref('AdminKeyCreated'), 'Created.', 201),
    cli: ['admin-keys', 'create'],
    audit: 'admin.admin_key.created',
  },
  {
    id: 'revokeAdminKey',
    method: 'POST',
    path: '/admin-keys/{id}/revoke',
    role: 'admin',
    tag: 'admin-keys',
    summary: 'Revoke an admin key (at once, on every instance).',
    params: [KEY_ID],
    response: json(ref('AdminKey'), 'Revoked.'),
    cli: ['admin-keys', 'revoke'],
    audit: 'admin.admin_key.revoked',
  },
];
