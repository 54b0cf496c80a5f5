/**
 * The `incidents` config section: ICT-related incident detection (DORA Art. 17), classification (Delegated
 * Regulation (EU) 2024/1772 Art. 8-9, the regulation's thresholds as defaults), reporting deadlines (Delegated
 * Regulation (EU) 2025/301) and the contract levels of ICT third parties (Art. 28-30). Off unless enabled.
 */

export interface SloConfig {
  availability_percent: number;
  latency_ms: number;
  latency_percent: number;
  burn_rate: number;
  min_requests: number;
}

export interface ThirdPartyConfig {
  provider?: string;
  upstream?: string;
  availability_percent: number;
  p95_ms: number;
  error_percent: number;
}

export interface IncidentsConfig {
  enabled: boolean;
  instance?: string;
  interval_ms: number;
  window_ms: number;
  close_after_ms: number;
  confirm_ms: number;
  slo: { default: SloConfig; routes: Record<string, Partial<SloConfig>> };
  providers: { error_percent: number; min_calls: number; webhooks_late_ms: number; webhooks_min_sessions: number };
  audit: { backlog_records: number };
  certificates: { expiry_days: number };
  attacks: { auth_failures: number; webhook_signature_failures: number };
  classification: {
    clients_total: number;
    functions: Record<string, { clients?: number; daily_transactions?: number }>;
    clients_percent: number;
    clients_absolute: number;
    transactions_percent: number;
    duration_hours: number;
    downtime_hours: number;
    downtime_error_percent: number;
    recurring_days: number;
  };
  third_parties: Record<string, ThirdPartyConfig>;
  reporting: { entity?: string; lei?: string; competent_authority?: string };
}

const percent = (d: number, description: string) => ({
  type: 'number',
  minimum: 0,
  maximum: 100,
  default: d,
  description,
});
const count = (d: number, description: string) => ({ type: 'integer', minimum: 0, default: d, description });

const sloProperties = {
  availability_percent: percent(
    99,
    'Share of requests that must not fail (5xx) over the window; its complement is the error budget.',
  ),
  latency_ms: {
    type: 'integer',
    minimum: 1,
    default: 1000,
    description: 'Latency objective; compared at the first histogram bucket at or above it (0.5 ms ... 10 s).',
  },
  latency_percent: percent(95, 'Share of requests that must finish within `latency_ms`.'),
  burn_rate: {
    type: 'number',
    minimum: 1,
    default: 10,
    description:
      'How many times faster than allowed the error (or latency) budget may burn over `window_ms` before it is an ' +
      'incident (10: 10 % of requests failing against a 99 % objective).',
  },
  min_requests: count(20, 'Fewer requests than this over the window never raise an incident.'),
} as const;

export const incidentsSchema = {
  type: 'object',
  description:
    'ICT-related incident detection, classification and reporting (DORA Art. 17-19; docs/DORA.md). Each instance ' +
    'evaluates the signals it already measures on a timer; instances sharing a store keep one incident per cause.',
  properties: {
    enabled: { type: 'boolean', default: false, description: 'Detect incidents. Off: nothing is evaluated.' },
    instance: {
      type: 'string',
      pattern: '^[A-Za-z0-9_.:-]{1,64}$',
      description: "This instance's name in incident timelines (default: host name and process id).",
    },
    interval_ms: {
      type: 'integer',
      minimum: 50,
      maximum: 600000,
      default: 5000,
      description: 'How often signals are evaluated (a timer reading counters: nothing is done per request).',
    },
    window_ms: {
      type: 'integer',
      minimum: 100,
      maximum: 86400000,
      default: 60000,
      description: 'Window over which rates (SLO burn, failure spikes, provider errors) are measured.',
    },
    confirm_ms: {
      type: 'integer',
      minimum: 0,
      maximum: 3600000,
      default: 10000,
      description:
        'A cause must hold on every evaluation for this long before it is an incident (a blip that passes is not).',
    },
    close_after_ms: {
      type: 'integer',
      minimum: 100,
      maximum: 86400000,
      default: 120000,
      description: 'An incident no instance has seen for this long is closed (recovered).',
    },
    slo: {
      type: 'object',
      description: "Routes' objectives: an error or latency budget burnt too fast over the window is an incident.",
      properties: {
        default: { type: 'object', properties: sloProperties, additionalProperties: false, default: {} },
        routes: {
          type: 'object',
          description: 'Per route (by name): keys of `default` to override.',
          additionalProperties: { type: 'object', properties: sloProperties, additionalProperties: false },
          default: {},
        },
      },
      additionalProperties: false,
      default: {},
    },
    providers: {
      type: 'object',
      description:
        'A verification provider is in incident while its breaker is open, or when its calls fail too often.',
      properties: {
        error_percent: percent(50, 'Share of failed calls (errors, timeouts) over the window.'),
        min_calls: count(5, 'Fewer calls over the window never raise an incident on the error share.'),
        webhooks_late_ms: {
          type: 'integer',
          minimum: 0,
          default: 1800000,
          description:
            'Webhooks late: verification sessions were started over this long and not one webhook was accepted ' +
            '(the provider decides but its decisions do not arrive). 0 turns it off.',
        },
        webhooks_min_sessions: count(5, 'Fewer sessions started over `webhooks_late_ms` never raise it.'),
      },
      additionalProperties: false,
      default: {},
    },
    audit: {
      type: 'object',
      description: 'Any audit journal write error is an incident (data may be lost); so is a sink too far behind.',
      properties: { backlog_records: count(10000, 'Records not yet delivered to a sink.') },
      additionalProperties: false,
      default: {},
    },
    certificates: {
      type: 'object',
      description: "A listener's certificate (or SVID) expiring this close is an incident.",
      properties: { expiry_days: { type: 'number', minimum: 0, default: 7, description: 'Days before expiry.' } },
      additionalProperties: false,
      default: {},
    },
    attacks: {
      type: 'object',
      description: 'Spikes of refusals that suggest an attack, over the window (0 turns one off).',
      properties: {
        auth_failures: count(200, 'Authentication failures (every reason).'),
        webhook_signature_failures: count(10, 'Webhooks refused (bad signature, stale, replayed).'),
      },
      additionalProperties: false,
      default: {},
    },
    classification: {
      type: 'object',
      description:
        'Classification per Delegated Regulation (EU) 2024/1772 Art. 8-9; the defaults are the regulation thresholds.',
      properties: {
        clients_total: count(0, 'Clients (consumers and end users) of the services behind the gateway; 0: unknown.'),
        functions: {
          type: 'object',
          description:
            'Per business function (routes `function`): its clients and daily average of transactions, ' +
            'against which the share affected is computed (Art. 9(1)(a) and (d)).',
          additionalProperties: {
            type: 'object',
            properties: {
              clients: { type: 'integer', minimum: 0 },
              daily_transactions: { type: 'integer', minimum: 0 },
            },
            additionalProperties: false,
          },
          default: {},
        },
        clients_percent: percent(10, 'Art. 9(1)(a): share of clients affected.'),
        clients_absolute: count(100000, 'Art. 9(1)(b): number of clients affected.'),
        transactions_percent: percent(10, 'Art. 9(1)(d): affected transactions, share of the daily average.'),
        duration_hours: { type: 'number', minimum: 0, default: 24, description: 'Art. 9(3): duration.' },
        downtime_hours: {
          type: 'number',
          minimum: 0,
          default: 2,
          description: 'Art. 9(3): downtime of a service supporting a critical or important function.',
        },
        downtime_error_percent: percent(
          50,
          'A route counts as down during an evaluation interval where at least this share of its requests failed.',
        ),
        recurring_days: count(
          183,
          'Incidents of the same cause within this many days are linked as recurring (Art. 16).',
        ),
      },
      additionalProperties: false,
      default: {},
    },
    reporting: {
      type: 'object',
      description: 'Who reports: named in the incident reports (Implementing Regulation (EU) 2025/302).',
      properties: {
        entity: { type: 'string', description: 'Name of the financial entity.' },
        lei: { type: 'string', pattern: '^[A-Z0-9]{18}[0-9]{2}$', description: 'Its Legal Entity Identifier.' },
        competent_authority: { type: 'string', description: 'The authority the reports go to.' },
      },
      additionalProperties: false,
      default: {},
    },
    third_parties: {
      type: 'object',
      description:
        'ICT third parties (Art. 28-30) by name: a verification provider or an upstream group, with the levels of ' +
        'its contract; measured availability, p95 latency and errors are reported against them.',
      additionalProperties: {
        type: 'object',
        properties: {
          provider: { type: 'string', description: 'A verification provider (kyc.providers).' },
          upstream: { type: 'string', description: 'An upstream group (upstreams).' },
          availability_percent: percent(99.9, 'Contracted availability.'),
          p95_ms: { type: 'integer', minimum: 1, default: 2000, description: 'Contracted p95 latency.' },
          error_percent: percent(1, 'Largest share of failed calls.'),
        },
        oneOf: [{ required: ['provider'] }, { required: ['upstream'] }],
        additionalProperties: false,
      },
      default: {},
    },
  },
  additionalProperties: false,
  default: {},
} as const;
