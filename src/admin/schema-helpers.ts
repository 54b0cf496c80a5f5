/** Helpers for the admin API's JSON Schemas (schemas.ts, schemas-runtime.ts). */
export type JsonSchema = Record<string, unknown>;

export const ref = (name: string): JsonSchema => ({ $ref: `#/components/schemas/${name}` });

export const str = (description: string, extra: JsonSchema = {}): JsonSchema => ({
  type: 'string',
  description,
  ...extra,
});
export const int = (description: string, extra: JsonSchema = {}): JsonSchema => ({
  type: 'integer',
  description,
  ...extra,
});
export const time = (description: string): JsonSchema => ({ type: 'string', format: 'date-time', description });
export const nullable = (s: JsonSchema): JsonSchema => ({ anyOf: [s, { type: 'null' }] });
export const list = (items: JsonSchema, description: string): JsonSchema => ({ type: 'array', items, description });
export const obj = (properties: Record<string, JsonSchema>, required: string[], description?: string): JsonSchema => ({
  type: 'object',
  ...(description ? { description } : {}),
  properties,
  required,
  additionalProperties: false,
});

export const NAME = '^[A-Za-z0-9][A-Za-z0-9_.@:-]{0,127}$';
export const SCOPES = list({ type: 'string', minLength: 1, maxLength: 200 }, 'Scopes.');
export const GROUPS = list({ type: 'string', minLength: 1, maxLength: 200 }, 'Groups.');
export const DURATION = '^[0-9]+(ms|s|m|h|d)$';
export const ROLE: JsonSchema = { type: 'string', enum: ['viewer', 'operator', 'admin'], description: 'Admin role.' };
export const COUNT = (d: string): JsonSchema => int(d, { minimum: 0 });

/** A page of items and the cursor of the next page (null on the last one). */
export const page = (item: string, extra: Record<string, JsonSchema> = {}, required: string[] = []): JsonSchema =>
  obj(
    {
      items: list(ref(item), 'This page.'),
      next_cursor: nullable(str('Pass as `cursor` to get the next page; null when this is the last one.')),
      ...extra,
    },
    ['items', 'next_cursor', ...required],
  );
