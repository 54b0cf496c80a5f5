/**
 * Request validation with ajv against the operation's schemas (the OpenAPI document's, with their `$ref`s into the
 * components). Query and path parameters are coerced from strings; defaults are filled in.
 */
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import { COMPONENTS, type JsonSchema } from './schemas.js';
import type { Operation, Parameter } from './operations.js';

const COMPONENTS_ID = 'https://kycgate.dev/schemas/admin-api/components';
const DATE_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/i;

/** Rewrites `#/components/schemas/X` references so that ajv finds them in the registered components. */
function forAjv(schema: JsonSchema): JsonSchema {
  return JSON.parse(
    JSON.stringify(schema).replaceAll('"#/components/schemas/', `"${COMPONENTS_ID}#/$defs/`),
  ) as JsonSchema;
}

/** An ajv instance knowing the admin API's components (`coerce` for string parameters). */
export function adminAjv(coerce = false): Ajv2020 {
  const ajv = new Ajv2020({
    allErrors: true,
    useDefaults: true,
    strict: false,
    coerceTypes: coerce,
    formats: { 'date-time': DATE_TIME },
  });
  ajv.addSchema(forAjv({ $id: COMPONENTS_ID, $defs: COMPONENTS }));
  return ajv;
}

export interface ValidationError {
  where: string;
  message: string;
}

export function errorsOf(errors: ErrorObject[] | null | undefined, prefix: string): ValidationError[] {
  return (errors ?? []).slice(0, 20).map((e) => {
    const missing = e.keyword === 'required' ? `/${(e.params as { missingProperty: string }).missingProperty}` : '';
    const extra =
      e.keyword === 'additionalProperties' ? `/${(e.params as { additionalProperty: string }).additionalProperty}` : '';
    return {
      where: `${prefix}${e.instancePath}${missing}${extra}`.replace(/^\./, ''),
      message: e.keyword === 'additionalProperties' ? 'is not a known property' : (e.message ?? 'is invalid'),
    };
  });
}

function parametersSchema(params: readonly Parameter[], requireAll: boolean): JsonSchema {
  return {
    type: 'object',
    properties: Object.fromEntries(params.map((p) => [p.name, p.schema])),
    required: params.filter((p) => requireAll || p.required).map((p) => p.name),
    additionalProperties: false,
  };
}

export interface CompiledOperation {
  op: Operation;
  params: ValidateFunction;
  query: ValidateFunction;
  body: ValidateFunction | undefined;
}

export function compileOperations(ops: readonly Operation[]): Map<string, CompiledOperation> {
  const coercing = adminAjv(true);
  const plain = adminAjv(false);
  const out = new Map<string, CompiledOperation>();
  for (const op of ops) {
    out.set(op.id, {
      op,
      params: coercing.compile(forAjv(parametersSchema(op.params ?? [], true))),
      query: coercing.compile(forAjv(parametersSchema(op.query ?? [], false))),
      body: op.body ? plain.compile(forAjv(op.body.schema)) : undefined,
    });
  }
  return out;
}

/** A validator of response bodies against `schema` (the tests check every answer with it). */
export function responseValidator(schema: JsonSchema): ValidateFunction {
  return adminAjv(false).compile(forAjv(schema));
}
