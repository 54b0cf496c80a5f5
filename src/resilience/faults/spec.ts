/**
 * Faults: what a resilience test (DORA Art. 24-25) injects, on what, for how long. A fault targets a route, an
 * upstream group or a verification provider, applies to a share of requests (optionally only those carrying a header
 * or from named consumers), and is armed only until a time: from the configuration (`resilience.faults`) or from
 * `kycgate faults arm` against the shared store.
 */
export type FaultTargetKind = 'route' | 'upstream' | 'provider';

export interface FaultSpec {
  /** Answer instead of forwarding: with a status (route, upstream), or by resetting the client connection. */
  abort?: { status?: number; reset?: boolean; percent: number };
  /** Hold the request (route, upstream) or the provider call (provider) this long first. */
  delay?: { ms: number; percent: number };
  /** Only requests carrying this header (with this value when given). Route and upstream faults. */
  header?: { name: string; value?: string };
  /** Only requests of these authenticated consumers. Route and upstream faults. */
  consumers?: string[];
  /** Provider faults: hold each webhook from this provider this long before it is applied. */
  webhook_delay_ms?: number;
}

export interface ArmedFault {
  readonly id: string;
  readonly kind: FaultTargetKind;
  readonly target: string;
  readonly spec: FaultSpec;
  /** Who armed it: `config`, or the operator named by the CLI (OS user, or --by). */
  readonly armedBy: string;
  readonly reason: string;
  readonly armedAt: number;
  /** Epoch ms after which it is no longer injected. */
  readonly until: number;
  /** Injected on routes marked `critical` too (never otherwise). */
  readonly allowCritical: boolean;
  readonly source: 'config' | 'store';
}

const percent = {
  type: 'number',
  minimum: 0,
  maximum: 100,
  default: 100,
  description: 'Share of matching requests (or provider calls) the fault applies to, in percent.',
} as const;

/** JSON Schema of a fault's effect (shared by `resilience.faults[]` and `kycgate faults arm`). */
export const faultSpecProperties = {
  abort: {
    type: 'object',
    description:
      'Answer instead of forwarding. `status`: the HTTP status the client gets (a 5xx reads as the outage it stands for: 502 ' +
      'bad-gateway, 503 service-unavailable, 504 gateway-timeout); `reset`: close the client connection without an answer. ' +
      'On a provider: the call fails as an outage (503) or, with `reset`, as an unreachable provider.',
    properties: {
      status: { type: 'integer', minimum: 400, maximum: 599 },
      reset: { type: 'boolean' },
      percent,
    },
    additionalProperties: false,
  },
  delay: {
    type: 'object',
    description: 'Hold each matching request (or provider call) this long before it goes on.',
    properties: { ms: { type: 'integer', minimum: 1, maximum: 600000 }, percent },
    required: ['ms'],
    additionalProperties: false,
  },
  header: {
    type: 'object',
    description: 'Only requests carrying this header (with this exact value when `value` is set).',
    properties: {
      name: { type: 'string', pattern: '^[A-Za-z0-9-]+$' },
      value: { type: 'string' },
    },
    required: ['name'],
    additionalProperties: false,
  },
  consumers: {
    type: 'array',
    items: { type: 'string' },
    description: 'Only requests of these authenticated consumers (the authenticate policy runs first).',
  },
  webhook_delay_ms: {
    type: 'integer',
    minimum: 1,
    maximum: 600000,
    description: "Provider faults: hold each of this provider's webhooks this long before it is accepted.",
  },
} as const;

/** Statuses an abort answers with, and the problem kind a real failure of that status has. */
export function abortKind(
  status: number,
): 'bad-gateway' | 'service-unavailable' | 'gateway-timeout' | 'internal-error' {
  if (status === 502) return 'bad-gateway';
  if (status === 504) return 'gateway-timeout';
  if (status === 500) return 'internal-error';
  return 'service-unavailable';
}

/** Whether a roll of the dice (0 to 100) falls within `percent`. */
export function rolls(percent: number | undefined): boolean {
  const p = percent ?? 100;
  return p >= 100 || Math.random() * 100 < p;
}
