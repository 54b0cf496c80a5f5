/** Config of the `authorize` policy. */
export interface AuthorizeConfig {
  scopes?: { all_of?: string[]; any_of?: string[] };
  consumers?: string[];
  groups?: string[];
  spiffe_ids?: string[];
}

const names = { type: 'array', items: { type: 'string', minLength: 1 }, minItems: 1, uniqueItems: true } as const;

export const authorizeSchema = {
  type: 'object',
  description:
    'Every condition given must hold (conditions are combined with AND); a list inside a condition matches when any entry matches.',
  properties: {
    scopes: {
      type: 'object',
      description: 'Scopes the identity must carry.',
      properties: {
        all_of: { ...names, description: 'Every one of these scopes is required.' },
        any_of: { ...names, description: 'At least one of these scopes is required.' },
      },
      additionalProperties: false,
      minProperties: 1,
    },
    consumers: { ...names, description: 'Consumer names allowed on this route.' },
    groups: { ...names, description: 'The identity must belong to at least one of these groups.' },
    spiffe_ids: {
      ...names,
      items: { type: 'string', pattern: "^spiffe://[a-z0-9._-]+(/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)*(/\\*)?$" },
      description:
        'SPIFFE IDs allowed (from mTLS or a JWT-SVID): exact `spiffe://td/ns/prod/sa/api`, a whole trust ' +
        'domain `spiffe://td`, or a path prefix `spiffe://td/ns/prod/*` (matches below it, on segment ' +
        'boundaries).',
    },
  },
  additionalProperties: false,
  minProperties: 1,
} as const;
