/** The shape of an admin API operation and parameters several operations share (operations.ts). */
import type { AdminRole } from '../config/admin-api-schema.js';
import { DURATION, type JsonSchema } from './schema-helpers.js';

export const API_PREFIX = '/admin/api/v1';
export const OPENAPI_PATH = '/admin/api/openapi.json';

export interface Parameter {
  name: string;
  schema: JsonSchema;
  description: string;
  required?: boolean;
}

export interface Operation {
  id: string;
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  /** Below API_PREFIX, OpenAPI style: `/consumers/{name}`. */
  path: string;
  role: AdminRole;
  tag: string;
  summary: string;
  params?: Parameter[];
  query?: Parameter[];
  body?: { schema: JsonSchema; required: boolean };
  /** Success status and body schema; `contentType` for non-JSON answers (audit export). */
  response: { status: number; schema?: JsonSchema; contentType?: string; description: string };
  /** `kycgate admin <group> <command>`. */
  cli: readonly [string, string];
  /** Changes state: audited as an `admin.<tag>.<verb>` event naming the actor. */
  audit?: string;
}

export const s = (description: string, extra: JsonSchema = {}): JsonSchema => ({
  type: 'string',
  description,
  ...extra,
});
export const LIMIT: Parameter = {
  name: 'limit',
  schema: { type: 'integer', minimum: 1, maximum: 500, default: 50 },
  description: 'Items per page (1-500, default 50).',
};
export const CURSOR: Parameter = {
  name: 'cursor',
  schema: s('`next_cursor` of the previous page.', { maxLength: 1000 }),
  description: 'Where to continue.',
};
export const WINDOW: Parameter = {
  name: 'window',
  schema: s('How far back, e.g. `1h`, `24h` (at most 24 h).', { pattern: DURATION, default: '1h' }),
  description: 'Window ending now.',
};
export const NAME_PARAM: Parameter = { name: 'name', schema: s('Consumer name.'), description: 'Consumer name.' };
export const KEY_ID: Parameter = {
  name: 'id',
  schema: s('Key id.', { pattern: '^[0-9A-Za-z]{8}$' }),
  description: 'Key id.',
};
export const SUBJECT: Parameter = {
  name: 'subject',
  schema: s('Pseudonym.', { pattern: '^sub_[A-Za-z0-9_-]{1,100}$' }),
  description: 'Pseudonymous subject (`sub_…`).',
};
export const json = (schema: JsonSchema, description: string, status = 200) => ({ status, schema, description });
