/** Config of the network-rules policy. */
export interface NetworkRulesConfig {
  allow: string[];
  deny: string[];
  user_agents: { allow: string[]; deny: string[]; require: boolean };
  methods: string[];
  content_types: string[];
}

const regexList = { type: 'array', items: { type: 'string', minLength: 1, maxLength: 1000 }, default: [] } as const;

export const networkRulesSchema = {
  type: 'object',
  properties: {
    allow: {
      type: 'array',
      items: { type: 'string', minLength: 1 },
      default: [],
      description:
        'IPv4/IPv6 addresses or CIDR ranges allowed to use the route. Empty: any address not denied. The ' +
        'client address is the TCP peer, or the first untrusted X-Forwarded-For hop behind ' +
        '`server.trusted_proxies`.',
    },
    deny: {
      type: 'array',
      items: { type: 'string', minLength: 1 },
      default: [],
      description: 'Addresses or CIDR ranges refused (403), even when also in `allow`.',
    },
    user_agents: {
      type: 'object',
      description: 'User-Agent rules: regular expressions (JavaScript syntax, compiled once, case-insensitive).',
      properties: {
        allow: { ...regexList, description: 'When not empty, the User-Agent must match one of these.' },
        deny: { ...regexList, description: 'A User-Agent matching one of these is refused (403).' },
        require: { type: 'boolean', default: false, description: 'Refuse requests without a User-Agent header.' },
      },
      additionalProperties: false,
      default: {},
    },
    methods: {
      type: 'array',
      items: { type: 'string', pattern: '^[A-Z]+$' },
      default: [],
      description: 'Allowed methods; others get 405 with an Allow header. GET implies HEAD. Empty: any method.',
    },
    content_types: {
      type: 'array',
      items: { type: 'string', pattern: '^[a-z0-9!#$&^_.+-]+/([a-z0-9!#$&^_.+-]+|\\*)$' },
      default: [],
      description:
        'Media types a request body may have (`application/json`, `text/*`); a body of another type gets ' +
        '415. Parameters such as charset are ignored. Empty: any.',
    },
  },
  additionalProperties: false,
} as const;
