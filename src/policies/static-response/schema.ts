/** Config of the static-response policy. */
export interface StaticResponseConfig {
  status: number;
  body: string;
  content_type: string;
  headers: Record<string, string>;
}

export const staticResponseSchema = {
  type: 'object',
  properties: {
    status: { type: 'integer', minimum: 200, maximum: 599, default: 200, description: 'Status code of the answer.' },
    body: { type: 'string', default: '', description: 'Body of the answer, sent as is.' },
    content_type: { type: 'string', default: 'text/plain; charset=utf-8', description: 'Content-Type of the answer.' },
    headers: {
      type: 'object',
      propertyNames: { pattern: '^[!#$%&\'*+.^_`|~0-9A-Za-z-]+$' },
      additionalProperties: { type: 'string', pattern: '^[^\\r\\n\\u0000]*$' },
      default: {},
      description: 'Extra response headers.',
    },
  },
  additionalProperties: false,
} as const;
