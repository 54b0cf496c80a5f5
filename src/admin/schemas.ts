/**
 * JSON Schemas of the admin API's bodies (draft 2020-12, as OpenAPI 3.1 uses). The same objects validate requests
 * at run time, are checked against responses in the tests, and make the OpenAPI document (openapi.ts).
 */
import { RUNTIME_COMPONENTS } from './schemas-runtime.js';
import { INCIDENT_COMPONENTS } from './schemas-incidents.js';
import {
  COUNT,
  DURATION,
  GROUPS,
  int,
  list,
  NAME,
  nullable,
  obj,
  ref,
  ROLE,
  SCOPES,
  str,
  time,
  type JsonSchema,
} from './schema-helpers.js';

export { DURATION, page, ref, type JsonSchema } from './schema-helpers.js';

export const COMPONENTS: Record<string, JsonSchema> = {
  Problem: {
    type: 'object',
    description: 'RFC 9457 problem details; `type` is stable (docs/ADMIN.md, "Errors").',
    properties: {
      type: str('Problem type URI.'),
      title: str('Short summary of the type.'),
      status: int('HTTP status.'),
      detail: str('What went wrong, for a person.'),
      instance: str('`urn:kycgate:request:<request id>`.'),
      errors: list(
        obj({ where: str('Parameter or body path.'), message: str('What is wrong.') }, ['where', 'message']),
        'Validation errors.',
      ),
      required_role: ROLE,
    },
    required: ['type', 'title', 'status'],
  },
  Principal: obj(
    {
      actor: str('Who is calling, as audit records name it: `admin-key:<id>`, `config-key:<name>` or the SPIFFE ID.'),
      role: ROLE,
      method: { type: 'string', enum: ['admin-key', 'config-key', 'mtls'] },
    },
    ['actor', 'role', 'method'],
  ),
  Consumer: obj(
    {
      name: str('Consumer name.'),
      scopes: SCOPES,
      groups: GROUPS,
      plan: nullable(str('Plan, for rate limits per plan.')),
      metadata: { type: 'object', description: 'Free-form notes (never secrets).' },
      disabled: { type: 'boolean', description: "A disabled consumer's API keys are refused (`consumer_disabled`)." },
      source: { type: 'string', enum: ['config', 'store'], description: '`config`: declared in the config file.' },
      read_only: { type: 'boolean', description: 'True for config consumers: change them in the file.' },
      created_at: time('When it was first stored.'),
      updated_at: time('Last change.'),
    },
    ['name', 'scopes', 'groups', 'plan', 'metadata', 'disabled', 'source', 'read_only', 'created_at', 'updated_at'],
  ),
  ConsumerCreate: obj(
    {
      name: str('Consumer name.', { pattern: NAME }),
      scopes: SCOPES,
      groups: GROUPS,
      plan: str('Plan.', { minLength: 1, maxLength: 200 }),
      metadata: { type: 'object', description: 'Free-form notes (never secrets).' },
      disabled: { type: 'boolean', default: false },
    },
    ['name'],
  ),
  ConsumerUpdate: {
    ...obj(
      {
        scopes: SCOPES,
        groups: GROUPS,
        plan: nullable(str('Plan; null removes it.', { minLength: 1, maxLength: 200 })),
        metadata: { type: 'object' },
        disabled: { type: 'boolean' },
      },
      [],
    ),
    minProperties: 1,
  },
  ConsumerDeleted: obj(
    { name: str('Deleted consumer.'), revoked_keys: list({ type: 'string' }, 'Keys revoked with it.') },
    ['name', 'revoked_keys'],
  ),
  ApiKey: obj(
    {
      id: str('Lookup id (the 8 characters after `kg_`).'),
      consumer: str('Consumer.'),
      status: { type: 'string', enum: ['active', 'rotating', 'expired', 'revoked'] },
      scopes: list({ type: 'string' }, "The key's own scopes; empty: the consumer's."),
      label: nullable(str('Label.')),
      created_at: time('Creation.'),
      expires_at: nullable(time('Expiry; null: none.')),
      revoked_at: nullable(time('Revocation.')),
      rotated_from: nullable(str('Key this one replaced.')),
      rotated_to: nullable(str('Key that replaces this one.')),
    },
    [
      'id',
      'consumer',
      'status',
      'scopes',
      'label',
      'created_at',
      'expires_at',
      'revoked_at',
      'rotated_from',
      'rotated_to',
    ],
  ),
  ApiKeyCreated: obj({ key: str('The full key: shown this once, never again.'), api_key: ref('ApiKey') }, [
    'key',
    'api_key',
  ]),
  ApiKeyRotated: obj(
    {
      key: str('The new key: shown this once.'),
      api_key: ref('ApiKey'),
      previous: ref('ApiKey'),
    },
    ['key', 'api_key', 'previous'],
  ),
  ApiKeyCreate: obj(
    {
      consumer: str('Consumer the key belongs to.', { pattern: NAME }),
      scopes: SCOPES,
      expires_in: str('Lifetime, e.g. `90d`; absent: no expiry.', { pattern: DURATION }),
      label: str('A note to recognise the key by (never a secret).', { maxLength: 200 }),
    },
    ['consumer'],
  ),
  ApiKeyRotate: obj(
    { overlap: str('How long the old key keeps working (default 24h).', { pattern: DURATION, default: '24h' }) },
    [],
  ),
  SubjectLookup: obj(
    {
      user_id: str('The end user id as the gate reads it (a JWT `sub`, a header value ...).', {
        minLength: 1,
        maxLength: 1024,
      }),
      namespace: str('The kyc-gate `subject.namespace` it is pseudonymised in (default "").', { maxLength: 200 }),
      route: str("A route whose kyc-gate's namespace to use instead of `namespace`.", { maxLength: 200 }),
    },
    ['user_id'],
  ),
  Block: nullable(
    obj(
      { reason: str('Why (shown to operators, kept in the audit trail; never personal data).', { maxLength: 500 }) },
      [],
    ),
  ),
  SubjectBlock: obj(
    {
      subject: str('Pseudonym.'),
      reason: nullable(str('Reason.')),
      blocked_by: str('Actor.'),
      blocked_at: time('When.'),
    },
    ['subject', 'reason', 'blocked_by', 'blocked_at'],
  ),
  Subject: obj(
    {
      subject: str('Pseudonym (`sub_…`).'),
      status: str('As `x-kyc-status` would say: verified, in_review, pending, declined, expired or unverified.'),
      blocked: nullable(ref('SubjectBlock')),
      claims: list(
        obj(
          { claim: str('Claim.'), workflow: str('Workflow that granted it.'), expires_at: nullable(time('Expiry.')) },
          ['claim', 'workflow', 'expires_at'],
        ),
        'Claims held now.',
      ),
      workflows: list(
        obj(
          {
            workflow: str('Workflow.'),
            provider: str('Verification provider.'),
            state: str('Normalised state.'),
            provider_status: str("Provider's own status."),
            claims: list({ type: 'string' }, 'Claims granted and valid.'),
            verified_at: nullable(time('Decision time.')),
            expires_at: nullable(time('Expiry of the approval.')),
            session_id: nullable(str('Current session.')),
            updated_at: time('Last change.'),
          },
          [
            'workflow',
            'provider',
            'state',
            'provider_status',
            'claims',
            'verified_at',
            'expires_at',
            'session_id',
            'updated_at',
          ],
        ),
        'One per workflow.',
      ),
      sessions: list(
        obj(
          {
            provider: str('Provider.'),
            session_id: str('Session.'),
            workflow: str('Workflow.'),
            created_at: time('Start.'),
          },
          ['provider', 'session_id', 'workflow', 'created_at'],
        ),
        'Verification sessions, newest first.',
      ),
      history: list(
        obj({ field: str('Field.'), value: { type: 'number' }, at: time('When.') }, ['field', 'value', 'at']),
        'Recorded history (record_history), newest first, at most 100.',
      ),
    },
    ['subject', 'status', 'blocked', 'claims', 'workflows', 'sessions', 'history'],
  ),
  SubjectErased: obj(
    {
      subject: str('Pseudonym.'),
      erased: obj(
        {
          verifications: COUNT('Rows.'),
          sessions: COUNT('Rows.'),
          webhook_events: COUNT('Rows.'),
          history: COUNT('Rows.'),
        },
        ['verifications', 'sessions', 'webhook_events', 'history'],
      ),
      blocked: { type: 'boolean', description: 'A block is kept through an erasure (lift it with unblock).' },
    },
    ['subject', 'erased', 'blocked'],
  ),
  WebhookEvent: obj(
    {
      provider: str('Provider.'),
      event_id: str('Event id.'),
      session_id: str('Session the event is about.'),
      received_at: time('Received.'),
      attempts: COUNT('Applications tried.'),
      outcome: nullable(str('Last outcome.')),
      status: { type: 'string', enum: ['unmatched', 'failed', 'retrying'] },
      replayable: { type: 'boolean', description: 'Its sealed payload is kept, so it can be replayed.' },
    },
    ['provider', 'event_id', 'session_id', 'received_at', 'attempts', 'outcome', 'status', 'replayable'],
  ),
  WebhookReplayed: obj(
    {
      provider: str('Provider.'),
      event_id: str('Event id.'),
      outcome: str('`applied`, `stale`, `unknown_session` ...'),
    },
    ['provider', 'event_id', 'outcome'],
  ),
  AuditRecord: {
    type: 'object',
    description: 'A journal record exactly as stored (docs/AUDIT.md, "Records").',
    properties: {
      v: int('Format.'),
      seq: int('Position.'),
      id: str('Id.'),
      time: time('Time.'),
      kind: str('Kind.'),
      type: str('Type.'),
    },
    required: ['v', 'seq', 'id', 'time', 'kind', 'type'],
  },
  AuditVerify: obj(
    {
      ok: { type: 'boolean' },
      records: COUNT('Records checked.'),
      checkpoints: COUNT('Checkpoints checked.'),
      first_seq: COUNT('First seq.'),
      last_seq: COUNT('Last seq.'),
      signed_through: COUNT('Last seq covered by a valid signed checkpoint.'),
      problem: obj(
        {
          kind: str('modified, deleted, inserted, reordered, truncated or bad-checkpoint.'),
          message: str('What was found.'),
          file: str('Segment file.'),
          line: int('Line.'),
          seq: int('Record seq.'),
          id: str('Record id.'),
        },
        ['kind', 'message', 'file', 'line'],
      ),
    },
    ['ok', 'records', 'checkpoints', 'first_seq', 'last_seq', 'signed_through'],
  ),
  ...RUNTIME_COMPONENTS,
  ...INCIDENT_COMPONENTS,
};
