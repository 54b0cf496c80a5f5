/** Schemas of the runtime, statistics and admin-key bodies of the admin API (the rest: schemas.ts). */
import { COUNT, DURATION, int, list, nullable, obj, ref, ROLE, str, time, type JsonSchema } from './schema-helpers.js';

export const RUNTIME_COMPONENTS: Record<string, JsonSchema> = {
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
      incidents: obj({ enabled: { type: 'boolean', description: 'Incident detection is on (`incidents.enabled`).' } }, [
        'enabled',
      ]),
      draining: { type: 'boolean' },
      ready: { type: 'boolean' },
    },
    ['store', 'redis', 'rate_limits', 'incidents', 'draining', 'ready'],
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
