/**
 * JSON Schemas of the admin API's bodies (draft 2020-12, as OpenAPI 3.1 uses). The same objects validate requests
 * at run time, are checked against responses in the tests, and make the OpenAPI document (openapi.ts).
 */
export type JsonSchema = Record<string, unknown>;

export const ref = (name: string): JsonSchema => ({ $ref: `#/components/schemas/${name}` });

const str = (description: string, extra: JsonSchema = {}): JsonSchema => ({ type: 'string', description, ...extra });
const int = (description: string, extra: JsonSchema = {}): JsonSchema => ({ type: 'integer', description, ...extra });
const time = (description: string): JsonSchema => ({ type: 'string', format: 'date-time', description });
const nullable = (s: JsonSchema): JsonSchema => ({ anyOf: [s, { type: 'null' }] });
const list = (items: JsonSchema, description: string): JsonSchema => ({ type: 'array', items, description });
const obj = (properties: Record<string, JsonSchema>, required: string[], description?: string): JsonSchema => ({
  type: 'object',
  ...(description ? { description } : {}),
  properties,
  required,
  additionalProperties: false,
});

const NAME = '^[A-Za-z0-9][A-Za-z0-9_.@:-]{0,127}$';
const SCOPES = list({ type: 'string', minLength: 1, maxLength: 200 }, 'Scopes.');
const GROUPS = list({ type: 'string', minLength: 1, maxLength: 200 }, 'Groups.');
export const DURATION = '^[0-9]+(ms|s|m|h|d)$';
const ROLE: JsonSchema = { type: 'string', enum: ['viewer', 'operator', 'admin'], description: 'Admin role.' };
const COUNT = (d: string): JsonSchema => int(d, { minimum: 0 });

/** A page of items and the cursor of the next page (null on the last one). */
export const page = (item: string, extra: Record<string, JsonSchema> = {}, required: string[] = []): JsonSchema =>
  obj(
    {
      items: list(ref(item), 'This page.'),
      next_cursor: nullable(str('Pass as `cursor` to get the next page; null when this is the last one.')),
      ...extra,
    },
    ['items', 'next_cursor', ...required],
  );

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
  EffectiveConfig: obj(
    {
      file: nullable(str('Config file serving now; null for the built-in demo.')),
      config: {
        type: 'object',
        description: 'The validated config with defaults; secret values and URL passwords redacted.',
      },
    },
    ['file', 'config'],
  ),
  UpstreamTarget: obj({ upstream: str('Group.'), target: str('Target URL.'), in_rotation: { type: 'boolean' } }, [
    'upstream',
    'target',
    'in_rotation',
  ]),
  Provider: obj(
    {
      name: str('Provider name.'),
      breaker: { type: 'string', enum: ['closed', 'half_open', 'open'] },
      last_error: nullable(str('Last failure class.')),
    },
    ['name', 'breaker', 'last_error'],
  ),
  Certificate: obj(
    {
      listener: str('Listener (`admin` for the admin listener).'),
      not_after: nullable(time('Expiry.')),
      expires_in_seconds: nullable(int('Seconds until expiry (negative: expired).')),
      serial: nullable(str('Serial.')),
      spiffe_id: nullable(str('SPIFFE ID when the certificate is an X509-SVID.')),
      source: nullable(str('`file` or `workload_api`.')),
      last_rotation: nullable(time('Last change of certificate.')),
      rotations: COUNT('Certificates put in service since start.'),
    },
    ['listener', 'not_after', 'expires_in_seconds', 'serial', 'spiffe_id', 'source', 'last_rotation', 'rotations'],
  ),
  RuntimeState: obj(
    {
      store: obj(
        {
          driver: { type: 'string', enum: ['sqlite', 'postgres'] },
          up: { type: 'boolean' },
          down_since: nullable(time('Outage start.')),
        },
        ['driver', 'up', 'down_since'],
      ),
      redis: obj({ configured: { type: 'boolean' }, connected: { type: 'boolean' } }, ['configured', 'connected']),
      rate_limits: obj(
        {
          counters: {
            type: 'string',
            enum: ['redis', 'local'],
            description:
              'Where rate-limit counters live: Redis (shared) when a `redis` section exists, else each instance.',
          },
          redis_connected: { type: 'boolean' },
        },
        ['counters', 'redis_connected'],
      ),
      draining: { type: 'boolean' },
      ready: { type: 'boolean' },
    },
    ['store', 'redis', 'rate_limits', 'draining', 'ready'],
  ),
  Instance: obj(
    {
      id: str('Instance id (per process).'),
      hostname: str('Host.'),
      pid: int('Process id.'),
      version: str('kycgate version.'),
      admin_url: nullable(str('Its admin API.')),
      started_at: time('Start.'),
      seen_at: time('Last heartbeat (every 10 s).'),
      alive: { type: 'boolean', description: 'Heartbeat within the last 30 s.' },
      current: { type: 'boolean', description: 'The instance answering this call.' },
    },
    ['id', 'hostname', 'pid', 'version', 'admin_url', 'started_at', 'seen_at', 'alive', 'current'],
  ),
  DecisionSeries: obj(
    {
      from: time('Window start.'),
      to: time('Window end.'),
      step_seconds: int('Bucket width.'),
      since_start: time('Counting began (this instance).'),
      buckets: list(
        obj(
          {
            t: time('Bucket start.'),
            allowed: COUNT('Forwarded or answered 2xx/3xx.'),
            denied: COUNT('Refused 4xx (not challenged, not rate limited).'),
            challenged: COUNT('Answered kyc-required / kyc-pending or redirected to verify.'),
            rate_limited: COUNT('Answered 429.'),
            error: COUNT('Answered 5xx.'),
          },
          ['t', 'allowed', 'denied', 'challenged', 'rate_limited', 'error'],
        ),
        'Oldest first.',
      ),
      by_route: { type: 'object', additionalProperties: ref('Outcomes'), description: 'Totals per route.' },
      by_consumer: {
        type: 'object',
        additionalProperties: ref('Outcomes'),
        description: 'Totals per consumer (`-`: none).',
      },
    },
    ['from', 'to', 'step_seconds', 'since_start', 'buckets', 'by_route', 'by_consumer'],
  ),
  Outcomes: obj(
    { allowed: COUNT(''), denied: COUNT(''), challenged: COUNT(''), rate_limited: COUNT(''), error: COUNT('') },
    ['allowed', 'denied', 'challenged', 'rate_limited', 'error'],
  ),
  Refusals: obj(
    {
      from: time('Window start.'),
      to: time('Window end.'),
      problems: list(
        obj({ problem: str('Problem kind.'), count: COUNT('Answers.') }, ['problem', 'count']),
        'Most frequent first.',
      ),
      auth_failures: list(
        obj({ reason: str('Reason code.'), count: COUNT('Refusals.') }, ['reason', 'count']),
        'Most frequent first.',
      ),
    },
    ['from', 'to', 'problems', 'auth_failures'],
  ),
  KycFunnel: obj(
    {
      from: time('Window start.'),
      to: time('Window end.'),
      challenged: COUNT('Gate challenges seen by this instance in the window.'),
      sessions_started: COUNT('Sessions created in the window (every instance: the store).'),
      approved: COUNT('Of those, approved.'),
      declined: COUNT('Of those, declined.'),
      expired: COUNT('Of those, expired.'),
      in_review: COUNT('Of those, in review.'),
      pending: COUNT('Of those, not finished.'),
      conversion: { type: 'number', description: 'approved / sessions_started (0 when none).' },
      time_to_verify_seconds: obj(
        {
          count: COUNT('Approved sessions measured.'),
          p50: nullable({ type: 'number' }),
          p90: nullable({ type: 'number' }),
        },
        ['count', 'p50', 'p90'],
      ),
    },
    [
      'from',
      'to',
      'challenged',
      'sessions_started',
      'approved',
      'declined',
      'expired',
      'in_review',
      'pending',
      'conversion',
      'time_to_verify_seconds',
    ],
  ),
  AdminKey: obj(
    {
      id: str('Lookup id (the 8 characters after `kga_`).'),
      name: str('Name.'),
      role: ROLE,
      status: { type: 'string', enum: ['active', 'expired', 'revoked'] },
      created_by: str('Actor who created it.'),
      created_at: time('Creation.'),
      expires_at: nullable(time('Expiry.')),
      revoked_at: nullable(time('Revocation.')),
    },
    ['id', 'name', 'role', 'status', 'created_by', 'created_at', 'expires_at', 'revoked_at'],
  ),
  AdminKeyCreate: obj(
    {
      name: str('Name (shown in lists and audit records).', { pattern: '^[A-Za-z0-9][A-Za-z0-9_.@:-]{0,63}$' }),
      role: ROLE,
      expires_in: str('Lifetime, e.g. `90d`; absent: no expiry.', { pattern: DURATION }),
    },
    ['name', 'role'],
  ),
  AdminKeyCreated: obj({ key: str('The full admin key: shown this once.'), admin_key: ref('AdminKey') }, [
    'key',
    'admin_key',
  ]),
};
