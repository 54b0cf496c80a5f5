/** Config of the validate policy. */
export interface ValidateConfig {
  body?: Record<string, unknown>;
  query?: Record<string, unknown>;
  params?: Record<string, unknown>;
  headers?: Record<string, unknown>;
  unknown_fields: 'allow' | 'reject' | 'strip';
  body_required: boolean;
  content_types: string[];
  max_errors: number;
}

export const validateSchema = {
  type: 'object',
  properties: {
    body: {
      type: 'object',
      description:
        "JSON Schema (draft 2020-12) of the JSON request body. The body is read (up to the route's max_body_bytes), validated and forwarded from memory.",
    },
    query: {
      type: 'object',
      description:
        'JSON Schema of the query parameters as an object (repeated names become arrays; strings are coerced ' +
        "to the schema's number, integer or boolean types).",
    },
    params: {
      type: 'object',
      description: 'JSON Schema of the route path parameters (`/users/:id` gives `{id}`), coerced like the query.',
    },
    headers: {
      type: 'object',
      description:
        'JSON Schema of the request headers as an object with lower-case names. Unknown headers are always allowed.',
    },
    unknown_fields: {
      enum: ['allow', 'reject', 'strip'],
      default: 'reject',
      description:
        'Object members of the body and query parameters that the schema does not declare (objects whose ' +
        'schema lists `properties` and says nothing about additional ones): `reject` answers 400, `strip` ' +
        'removes them from the body before forwarding (undeclared query parameters are then ignored, not ' +
        'removed), `allow` keeps them. Applies to schemas with `type: object`.',
    },
    body_required: {
      type: 'boolean',
      default: false,
      description: 'Refuse a request without a body (400) when a body schema is given.',
    },
    content_types: {
      type: 'array',
      items: { type: 'string', pattern: '^[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+$' },
      default: ['application/json'],
      description:
        'Media types accepted for a validated body (others get 415); any `+json` type is also accepted when application/json is listed.',
    },
    max_errors: {
      type: 'integer',
      minimum: 1,
      maximum: 100,
      default: 10,
      description: 'Most validation errors listed in one answer.',
    },
  },
  additionalProperties: false,
} as const;
