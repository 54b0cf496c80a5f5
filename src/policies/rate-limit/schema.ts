/** Config of the rate-limit policy. */

export type KeyPart = 'ip' | 'consumer' | 'credential' | 'subject' | `header:${string}`;
export type Period = 'second' | 'minute' | 'hour' | 'day';

export interface LimitConfig {
  name?: string;
  rate: number;
  per: Period;
  burst?: number;
  key: KeyPart[];
}

export interface RateLimitConfig {
  limits: LimitConfig[];
  plans: Record<string, LimitConfig[]>;
  scope: 'route' | 'gateway';
  store: 'local' | 'redis';
  on_redis_failure: 'fail_open' | 'fail_closed';
  missing_key: 'ip' | 'skip';
  penalise_rejected: boolean;
  headers: 'all' | 'ietf' | 'none';
  breaker: { failures: number; open_ms: number };
  local_max_keys: number;
  ipv6_prefix: number;
}

const limitSchema = {
  type: 'object',
  description: 'One limit: `rate` requests per `per`, with up to `burst` requests at once.',
  properties: {
    name: {
      type: 'string',
      pattern: '^[A-Za-z0-9_.-]{1,64}$',
      description:
        'Name shown in RateLimit headers and used in counter keys (default `<rate>-per-<per>`). Renaming a limit resets its counters.',
    },
    rate: { type: 'integer', minimum: 1, description: 'Requests allowed per period (the sustained rate).' },
    per: { enum: ['second', 'minute', 'hour', 'day'], description: 'The period of `rate`.' },
    burst: {
      type: 'integer',
      minimum: 1,
      description:
        "Requests a client may send at once after being idle (default: `rate`, i.e. a full period's worth). " +
        'The bucket refills continuously at `rate` per `per`.',
    },
    key: {
      type: 'array',
      minItems: 1,
      items: { type: 'string', pattern: "^(ip|consumer|credential|subject|header:[!#$%&'*+.^_`|~0-9A-Za-z-]+)$" },
      default: ['ip'],
      description:
        'What a counter is kept per: `ip` (client IP), `consumer` (authenticated consumer), `credential` ' +
        '(API key or token id), `subject` (KYC subject), `header:<name>`; several parts combine.',
    },
  },
  required: ['rate', 'per'],
  additionalProperties: false,
} as const;

export const rateLimitSchema = {
  type: 'object',
  properties: {
    limits: {
      type: 'array',
      items: limitSchema,
      default: [],
      description:
        'Limits applied to every request of the route (all must pass). Used when the consumer has no plan listed in `plans`.',
    },
    plans: {
      type: 'object',
      additionalProperties: { type: 'array', items: limitSchema, minItems: 1 },
      default: {},
      description:
        'Limits by consumer plan (identity `plan`, set by authentication): a plan listed here replaces `limits` for its consumers.',
    },
    scope: {
      enum: ['route', 'gateway'],
      default: 'route',
      description:
        '`route`: counters per route (a default policy then limits each route separately); `gateway`: ' +
        'counters shared by every route that applies this policy with the same limit names.',
    },
    store: {
      enum: ['local', 'redis'],
      default: 'local',
      description:
        '`local`: counters in this process. `redis`: counters in the shared `redis` service, so all ' +
        'instances enforce one limit (one atomic script call per decision).',
    },
    on_redis_failure: {
      enum: ['fail_open', 'fail_closed'],
      default: 'fail_open',
      description:
        'When Redis is slow or down (command timeout or open breaker): `fail_open` enforces the same limits per instance in memory; `fail_closed` answers 503.',
    },
    missing_key: {
      enum: ['ip', 'skip'],
      default: 'ip',
      description:
        'When a key part is missing (no consumer, no header): `ip` counts the request by client IP instead, `skip` does not apply that limit.',
    },
    penalise_rejected: {
      type: 'boolean',
      default: false,
      description:
        'Count rejected requests too, so a client that keeps sending over the limit stays blocked. Off: a client recovers as soon as it slows down.',
    },
    headers: {
      enum: ['all', 'ietf', 'none'],
      default: 'ietf',
      description:
        'Rate-limit headers on admitted requests: `ietf` (RateLimit-Policy and RateLimit), `all` (those plus ' +
        'the legacy X-RateLimit-Limit/Remaining/Reset: three more headers on every response), `none`. A 429 ' +
        'always carries all of them and Retry-After.',
    },
    breaker: {
      type: 'object',
      properties: {
        failures: {
          type: 'integer',
          minimum: 1,
          default: 3,
          description: 'Consecutive Redis failures that open the breaker.',
        },
        open_ms: {
          type: 'integer',
          minimum: 10,
          default: 1000,
          description: 'How long Redis is bypassed once the breaker opens; then one request probes it.',
        },
      },
      additionalProperties: false,
      default: {},
      description: 'Circuit breaker around Redis, so no request waits on a Redis that is known to be down.',
    },
    local_max_keys: {
      type: 'integer',
      minimum: 100,
      default: 100000,
      description: 'Most clients kept in memory per limit; beyond it the oldest entries are dropped.',
    },
    ipv6_prefix: {
      type: 'integer',
      minimum: 32,
      maximum: 128,
      default: 64,
      description:
        'For the `ip` key part, IPv6 clients are counted per network of this prefix length: a single client ' +
        'usually holds a whole /64 and could otherwise rotate addresses to get a fresh quota. 128 counts ' +
        'each address.',
    },
  },
  additionalProperties: false,
} as const;
