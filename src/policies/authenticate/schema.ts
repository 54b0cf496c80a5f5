/**
 * Config of the `authenticate` policy. Each entry of `methods` has one key, the authenticator's method name, whose
 * value is validated against that authenticator's own schema (with its defaults filled in) when the config loads.
 */
import { AUTHENTICATORS } from './registry.js';

export interface AuthenticateConfig {
  methods: Array<Record<string, unknown>>;
  mode: 'any' | 'all';
  realm: string;
  upstream_headers: boolean;
  failure_limit: { enabled: boolean; max_failures: number; window_s: number };
}

/** One `if`/`then` per method: defaults apply inside `then` (unlike in oneOf branches), and errors name the key. */
function methodEntrySchema(): Record<string, unknown> {
  return {
    type: 'object',
    minProperties: 1,
    maxProperties: 1,
    propertyNames: { enum: AUTHENTICATORS.map((a) => a.method) },
    allOf: AUTHENTICATORS.map((a) => ({
      if: { type: 'object', required: [a.method] },
      then: { type: 'object', properties: { [a.method]: { ...a.schema, description: a.description } } },
    })),
  };
}

export const authenticateSchema = {
  type: 'object',
  properties: {
    methods: {
      type: 'array',
      minItems: 1,
      description:
        'Authentication methods, in the order they are tried, each `{<method>: {...config}}`. ' +
        `Methods: ${AUTHENTICATORS.map((a) => a.method).join(', ')}.`,
      items: methodEntrySchema(),
    },
    mode: {
      enum: ['any', 'all'],
      default: 'any',
      description:
        'any: the first method that finds its kind of credential in the request decides (a bad credential is ' +
        'refused, not passed on). all: every method must succeed and their identities are merged (e.g. mTLS ' +
        'and a JWT).',
    },
    realm: {
      type: 'string',
      pattern: '^[^"\\\\\\r\\n]*$',
      default: 'kycgate',
      description: 'Realm named in WWW-Authenticate challenges.',
    },
    upstream_headers: {
      type: 'boolean',
      default: false,
      description:
        'Send the verified identity upstream in x-consumer, x-consumer-scopes, x-consumer-groups and ' +
        'x-auth-method (values outside printable ASCII are left out). Whatever the setting, these headers ' +
        'and any other x-consumer-* header sent by a client are removed from every request.',
    },
    failure_limit: {
      type: 'object',
      description:
        'Throttles credential guessing: after `max_failures` failed attempts from one client address (an ' +
        'IPv6 client: its /64) within `window_s`, that address is answered 429 with Retry-After until the ' +
        'window ends. Counted across all routes with the same limits and kept across reloads; shared by every ' +
        'worker (through the supervisor) and, with a `redis` section, by every instance (an address that reaches ' +
        'the limit anywhere is refused everywhere); while Redis cannot be reached each instance counts alone.',
      properties: {
        enabled: { type: 'boolean', default: true, description: 'Turn the throttle on or off.' },
        max_failures: {
          type: 'integer',
          minimum: 1,
          default: 20,
          description: 'Failed attempts allowed per address and window.',
        },
        window_s: {
          type: 'integer',
          minimum: 1,
          maximum: 86400,
          default: 60,
          description: 'Length of the counting window in seconds.',
        },
      },
      additionalProperties: false,
      default: {},
    },
  },
  required: ['methods'],
  additionalProperties: false,
} as const;
