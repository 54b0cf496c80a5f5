/** Config of the `spiffe-jwt` authenticator (JWT-SVIDs sent as bearer tokens). */
import { trustDomainsSchema } from '../../../workload-identity/schema.js';
export interface SpiffeJwtConfig {
  audience: string[];
  trust_domains?: Array<{ name: string; bundle: string }>;
  workload_api?: { socket?: string; ready_timeout_ms: number };
  consumers: Array<{ name: string; spiffe_id?: string; trust_domain?: string }>;
  allow_unmapped: boolean;
  leeway_s: number;
  header: string;
}

export const spiffeJwtSchema = {
  type: 'object',
  properties: {
    audience: {
      type: 'array',
      minItems: 1,
      items: { type: 'string', minLength: 1 },
      description: 'Audiences this gateway answers to: a JWT-SVID must carry at least one of them in `aud`.',
    },
    trust_domains: trustDomainsSchema(
      'Trust domains whose JWT-SVIDs are accepted, each with a SPIFFE bundle holding its jwt-svid keys. A ' +
        'token is verified only with the bundle of the domain in its `sub`.',
      {
        name: 'Trust domain name.',
        bundle: 'SPIFFE bundle file (JWK Set with use jwt-svid keys); reloaded when it changes.',
      },
      1,
    ),
    consumers: {
      type: 'array',
      default: [],
      description:
        'Maps the SPIFFE ID in `sub` to a consumer: each rule has a name and spiffe_id (exact) or trust_domain; spiffe_id wins.',
      items: {
        type: 'object',
        properties: {
          name: { type: 'string', minLength: 1, description: 'Consumer name.' },
          spiffe_id: { type: 'string', minLength: 1, description: 'Exact SPIFFE ID.' },
          trust_domain: { type: 'string', minLength: 1, description: 'Any workload of this trust domain.' },
        },
        required: ['name'],
        minProperties: 2,
        maxProperties: 2,
        additionalProperties: false,
      },
    },
    workload_api: {
      type: 'object',
      description:
        'Take JWT bundles (own and federated trust domains) from the SPIFFE Workload API FetchJWTBundles ' +
        'stream, kept up to date as the agent pushes them. Bundle files in trust_domains win for the same ' +
        'domain.',
      properties: {
        socket: {
          type: 'string',
          pattern: '^(unix:///|tcp://)',
          description: 'Workload API endpoint; default SPIFFE_ENDPOINT_SOCKET.',
        },
        ready_timeout_ms: {
          type: 'integer',
          minimum: 1,
          default: 10000,
          description: 'How long loading the config waits for the first bundles.',
        },
      },
      additionalProperties: false,
    },
    allow_unmapped: {
      type: 'boolean',
      default: false,
      description: 'Accept a valid JWT-SVID that no consumer rule matches. Default: refuse it.',
    },
    leeway_s: {
      type: 'integer',
      minimum: 0,
      maximum: 60,
      default: 30,
      description: 'Clock skew tolerated on exp/nbf/iat (at most one minute).',
    },
    header: {
      type: 'string',
      default: 'authorization',
      pattern: '^[a-z0-9-]+$',
      description: 'Request header carrying `Bearer <JWT-SVID>` (lower case).',
    },
  },
  required: ['audience'],
  anyOf: [{ required: ['trust_domains'] }, { required: ['workload_api'] }],
  additionalProperties: false,
} as const;
