/** Config of the transform policy. */
import { HEADER_NAME_PATTERN, headerValueSchema } from '../../config/http-schema.js';
export interface HeaderMapping {
  add: Record<string, string>;
  remove: string[];
  rename: Record<string, string>;
}

export interface BodyMapping {
  rename: Record<string, string>;
  remove: string[];
  set: Record<string, unknown>;
}

export interface TransformConfig {
  request: { headers: HeaderMapping; body: BodyMapping };
  response: { headers: HeaderMapping; body: BodyMapping };
  max_body_bytes: number;
}

const headerName = HEADER_NAME_PATTERN;
const headerMapping = {
  type: 'object',
  properties: {
    add: {
      type: 'object',
      propertyNames: { pattern: headerName },
      additionalProperties: headerValueSchema,
      default: {},
      description: 'Headers set (replacing any existing value).',
    },
    remove: {
      type: 'array',
      items: { type: 'string', pattern: headerName },
      default: [],
      description: 'Headers removed.',
    },
    rename: {
      type: 'object',
      propertyNames: { pattern: headerName },
      additionalProperties: { type: 'string', pattern: headerName },
      default: {},
      description: 'Headers renamed: `{from: to}`; the value is kept.',
    },
  },
  additionalProperties: false,
  default: {},
} as const;

const bodyMapping = {
  type: 'object',
  description:
    'JSON body mapping, applied in the order rename, remove, set. Paths use the JSON path syntax of ' +
    'response-protection; `rename` and `set` need paths without wildcards. Non-JSON bodies are left ' +
    'alone.',
  properties: {
    rename: {
      type: 'object',
      additionalProperties: { type: 'string', pattern: '^\\$' },
      default: {},
      description: 'Fields moved: `{"$.old.path": "$.new.path"}`.',
    },
    remove: {
      type: 'array',
      items: { type: 'string', pattern: '^\\$' },
      default: [],
      description: 'Fields removed (wildcards allowed).',
    },
    set: {
      type: 'object',
      default: {},
      description:
        'Fields set to fixed JSON values: `{"$.meta.source": "gateway"}`; missing parent objects are created.',
    },
  },
  additionalProperties: false,
  default: {},
} as const;

const direction = (what: string) =>
  ({
    type: 'object',
    description: `Changes to the ${what}.`,
    properties: {
      headers: { ...headerMapping, description: `Header changes on the ${what}.` },
      body: bodyMapping,
    },
    additionalProperties: false,
    default: {},
  }) as const;

export const transformSchema = {
  type: 'object',
  properties: {
    request: direction('request sent upstream'),
    response: direction('response sent to the client'),
    max_body_bytes: {
      type: 'integer',
      minimum: 1,
      default: 1048576,
      description:
        "Largest JSON response body mapped; larger ones pass unchanged (request bodies are bounded by the route's max_body_bytes).",
    },
  },
  additionalProperties: false,
} as const;
