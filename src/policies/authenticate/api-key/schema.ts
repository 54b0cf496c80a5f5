/** Config of the `api-key` authenticator. */
export interface ApiKeyConfig {
  header: string;
  bearer: boolean;
  query_param?: string;
  hide_credentials: boolean;
}

export const apiKeySchema = {
  type: 'object',
  description: 'API keys issued with `kycgate keys create` (format `kg_<id>_<secret><checksum>`).',
  properties: {
    header: {
      type: 'string',
      pattern: '^[A-Za-z0-9-]+$',
      default: 'x-api-key',
      description: 'Request header carrying the key.',
    },
    bearer: {
      type: 'boolean',
      default: true,
      description:
        'Also accept the key as `Authorization: Bearer kg_...` (only values that start with `kg_` are taken; other bearer tokens are left to the next method).',
    },
    query_param: {
      type: 'string',
      minLength: 1,
      description:
        'Also accept the key in this query parameter. Off unless set: keys in URLs end up in logs and browser history.',
    },
    hide_credentials: {
      type: 'boolean',
      default: true,
      description:
        'Remove the key header (and an Authorization header carrying a key, or the `query_param` parameter ' +
        'when the key came from the query string) before forwarding, so upstreams never see keys.',
    },
  },
  additionalProperties: false,
} as const;
