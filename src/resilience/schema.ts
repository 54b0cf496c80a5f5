/**
 * The `resilience` config section: fault injection for resilience tests (DORA Art. 24-25). Off unless enabled.
 */
import { faultSpecProperties } from './faults/spec.js';

export interface ConfiguredFault {
  name?: string;
  route?: string;
  upstream?: string;
  provider?: string;
  abort?: { status?: number; reset?: boolean; percent: number };
  delay?: { ms: number; percent: number };
  header?: { name: string; value?: string };
  consumers?: string[];
  webhook_delay_ms?: number;
  until: string;
  allow_critical: boolean;
  reason: string;
}

export interface ResilienceConfig {
  faults: {
    enabled: boolean;
    poll_ms: number;
    max_duration_s: number;
    armed: ConfiguredFault[];
  };
}

export const resilienceSchema = {
  type: 'object',
  description:
    'Operational resilience (DORA): fault injection for resilience tests. See docs/DORA.md. Faults apply on routes that ' +
    'carry the `fault-injection` policy (put it in `defaults.policies` to reach every route) and to verification ' +
    'providers; routes marked `critical` never get one unless the fault says `allow_critical`.',
  properties: {
    faults: {
      type: 'object',
      description:
        'Faults armed from this file or with `kycgate faults arm` (shared by every instance through the store).',
      properties: {
        enabled: {
          type: 'boolean',
          default: false,
          description:
            'Whether faults may be injected at all. Off: the `fault-injection` policy does nothing, armed faults are not ' +
            'read, and `kycgate faults arm` refuses.',
        },
        poll_ms: {
          type: 'integer',
          minimum: 100,
          maximum: 60000,
          default: 1000,
          description: 'How often each instance reads the faults armed in the store.',
        },
        max_duration_s: {
          type: 'integer',
          minimum: 1,
          default: 86400,
          description: 'Longest a fault may stay armed: `until` further away is refused.',
        },
        armed: {
          type: 'array',
          default: [],
          description: 'Faults armed by this configuration, each until its `until`.',
          items: {
            type: 'object',
            properties: {
              name: {
                type: 'string',
                pattern: '^[A-Za-z0-9_.-]{1,64}$',
                description: 'Names the fault in events and metrics.',
              },
              route: { type: 'string', description: 'Target: a route (by name).' },
              upstream: { type: 'string', description: 'Target: an upstream group (by name).' },
              provider: {
                type: 'string',
                description: 'Target: a verification provider (by name, as in kyc.providers).',
              },
              ...faultSpecProperties,
              until: {
                type: 'string',
                pattern: '^\\d{4}-\\d{2}-\\d{2}T',
                description: 'When the fault stops being injected (RFC 3339). Required: no fault is armed for ever.',
              },
              allow_critical: {
                type: 'boolean',
                default: false,
                description: 'Also inject it on routes marked `critical` (refused otherwise).',
              },
              reason: { type: 'string', default: 'configuration', description: 'Why: recorded with the fault.' },
            },
            required: ['until'],
            oneOf: [{ required: ['route'] }, { required: ['upstream'] }, { required: ['provider'] }],
            additionalProperties: false,
          },
        },
      },
      additionalProperties: false,
      default: {},
    },
  },
  additionalProperties: false,
  default: {},
} as const;
