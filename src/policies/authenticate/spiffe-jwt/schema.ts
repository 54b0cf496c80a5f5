/** Config of the `spiffe-jwt` authenticator (JWT-SVIDs sent as bearer tokens). */
export interface SpiffeJwtConfig {
  audience: string[];
  trust_domains: Array<{ name: string; bundle: string }>;
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
    trust_domains: {
      type: 'array',
      minItems: 1,
      description: 'Trust domains whose JWT-SVIDs are accepted, each with a SPIFFE bundle holding its jwt-svid keys. A token is verified only with the bundle of the domain in its `sub`.',
      items: {
        type: 'object',
        properties: {
          name: { type: 'string', pattern: '^[a-z0-9._-]{1,255}$', description: 'Trust domain name.' },
          bundle: { type: 'string', minLength: 1, description: 'SPIFFE bundle file (JWK Set with use jwt-svid keys); reloaded when it changes.' },
        },
        required: ['name', 'bundle'],
        additionalProperties: false,
      },
    },
    consumers: {
      type: 'array',
      default: [],
      description: 'Maps the SPIFFE ID in `sub` to a consumer: each rule has a name and spiffe_id (exact) or trust_domain; spiffe_id wins.',
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
    allow_unmapped: { type: 'boolean', default: false, description: 'Accept a valid JWT-SVID that no consumer rule matches. Default: refuse it.' },
    leeway_s: { type: 'integer', minimum: 0, maximum: 60, default: 30, description: 'Clock skew tolerated on exp/nbf/iat (at most one minute).' },
    header: { type: 'string', default: 'authorization', pattern: '^[a-z0-9-]+$', description: 'Request header carrying `Bearer <JWT-SVID>` (lower case).' },
  },
  required: ['audience', 'trust_domains'],
  additionalProperties: false,
} as const;
