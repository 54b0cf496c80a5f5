/**
 * For `unknown_fields: reject`: a copy of a JSON Schema in which every `type: object` schema that declares members
 * and says nothing about other members gets `unevaluatedProperties: false` (which, unlike additionalProperties,
 * also sees members declared in allOf/anyOf branches and $ref targets).
 */
const SUBSCHEMA_MAPS = ['properties', 'patternProperties', '$defs', 'definitions', 'dependentSchemas'];
const SUBSCHEMA_LISTS = ['allOf', 'anyOf', 'oneOf', 'prefixItems'];
const SUBSCHEMAS = [
  'items',
  'additionalProperties',
  'not',
  'if',
  'then',
  'else',
  'contains',
  'propertyNames',
  'unevaluatedItems',
];

export function closeObjects(schema: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...schema };
  for (const key of SUBSCHEMA_MAPS) {
    const map = out[key];
    if (map && typeof map === 'object') {
      out[key] = Object.fromEntries(
        Object.entries(map as Record<string, unknown>).map(([k, v]) => [k, isSchema(v) ? closeObjects(v) : v]),
      );
    }
  }
  for (const key of SUBSCHEMA_LISTS) {
    const list = out[key];
    if (Array.isArray(list)) out[key] = list.map((v) => (isSchema(v) ? closeObjects(v) : v));
  }
  for (const key of SUBSCHEMAS) {
    const sub = out[key];
    if (isSchema(sub)) out[key] = closeObjects(sub);
  }
  const declaresMembers = 'properties' in out || 'allOf' in out || 'anyOf' in out || 'oneOf' in out;
  const open = 'additionalProperties' in out || 'unevaluatedProperties' in out || 'patternProperties' in out;
  // Only schemas that say `type: object`: allOf/anyOf branches usually do not, and closing a branch would reject
  // members that a sibling branch declares.
  if (declaresMembers && !open && isObjectType(out.type)) out.unevaluatedProperties = false;
  return out;
}

function isObjectType(type: unknown): boolean {
  return type === 'object' || (Array.isArray(type) && type.includes('object'));
}

function isSchema(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
