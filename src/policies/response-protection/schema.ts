/** Config of the response-protection policy. */
import { secretRefSchema } from '../../config/secret-ref-schema.js';
import type { SecretRef } from '../../config/types.js';

export type FieldAction = 'mask' | 'hash' | 'drop' | 'truncate';

export interface FieldRule {
  path: string;
  action: FieldAction;
  keep_last: number;
  mask_char: string;
  length: number;
}

export interface ResponseProtectionConfig {
  fields: FieldRule[];
  hash_key?: SecretRef;
  content_types: string[];
  max_body_bytes: number;
  on_failure: 'block' | 'pass';
  remove_headers: string[];
  remove_default_headers: boolean;
  nosniff: boolean;
}

export const DEFAULT_LEAKY_HEADERS = [
  'server',
  'x-powered-by',
  'x-aspnet-version',
  'x-aspnetmvc-version',
  'x-runtime',
  'x-generator',
];

export const responseProtectionSchema = {
  type: 'object',
  properties: {
    fields: {
      type: 'array',
      default: [],
      description:
        "Fields of JSON responses to protect, by JSON path (`$.user.ssn`, `$.items[*].iban`, `$.a[0].b`, `$.data.*`, `$['odd key']`).",
      items: {
        type: 'object',
        properties: {
          path: { type: 'string', pattern: '^\\$', description: 'JSON path of the field(s).' },
          action: {
            enum: ['mask', 'hash', 'drop', 'truncate'],
            description:
              '`mask`: replace all but the last `keep_last` characters with `mask_char`; `hash`: replace with a ' +
              'keyed hash (HMAC-SHA256 with `hash_key`, base64url, 22 characters): the same input always gives the ' +
              'same pseudonym, which cannot be reversed without the key; `drop`: remove the field; `truncate`: ' +
              'keep the first `length` characters.',
          },
          keep_last: {
            type: 'integer',
            minimum: 0,
            default: 4,
            description:
              'For `mask`: characters left visible at the end. A value no longer than this is masked entirely.',
          },
          mask_char: {
            type: 'string',
            minLength: 1,
            maxLength: 1,
            default: '*',
            description: 'For `mask`: the replacement character.',
          },
          length: { type: 'integer', minimum: 0, default: 8, description: 'For `truncate`: characters kept.' },
        },
        required: ['path', 'action'],
        additionalProperties: false,
      },
    },
    hash_key: {
      ...secretRefSchema,
      description:
        'Key of the `hash` action (at least 32 bytes). Required when a field uses `hash`. ' +
        secretRefSchema.description,
    },
    content_types: {
      type: 'array',
      items: { type: 'string', pattern: '^[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+$' },
      default: ['application/json'],
      description:
        'Response media types whose bodies are protected; any `+json` type is included when application/json is listed.',
    },
    max_body_bytes: {
      type: 'integer',
      minimum: 1,
      default: 1048576,
      description: 'Largest response body buffered for protection; see `on_failure` for larger ones.',
    },
    on_failure: {
      enum: ['block', 'pass'],
      default: 'block',
      description:
        'A JSON response that cannot be protected (larger than max_body_bytes, compressed, not valid JSON): ' +
        '`block` answers 502 response-unprocessable rather than risk leaking, `pass` sends it unchanged.',
    },
    remove_headers: {
      type: 'array',
      items: { type: 'string', pattern: "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$" },
      default: [],
      description: 'Further response headers removed (e.g. X-Backend-Host).',
    },
    remove_default_headers: {
      type: 'boolean',
      default: true,
      description: `Remove headers that reveal the upstream software: ${DEFAULT_LEAKY_HEADERS.join(', ')}.`,
    },
    nosniff: {
      type: 'boolean',
      default: true,
      description: 'Add `X-Content-Type-Options: nosniff` so browsers never render a JSON answer as HTML.',
    },
  },
  additionalProperties: false,
} as const;
