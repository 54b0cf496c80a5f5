/**
 * validate: JSON Schema validation of the request body, query, path parameters and headers, compiled once with
 * ajv. A failing request gets 400 problem+json listing the failing locations as JSON pointers (`/body/amount`)
 * and what is wrong, never the values sent. Malformed JSON is 400, a body of another type 415, an oversized one
 * 413 (the route's body limit), and none of them reaches the upstream: a validated body is forwarded from memory.
 */
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { ErrorObject, ValidateFunction } from 'ajv';
import type { DecisionReuse, PolicyDefinition, PolicyInstance, PolicyResult } from '../../pipeline/policy.js';
import type { RequestContext } from '../../pipeline/context.js';
import { Problem, problem } from '../../pipeline/problem.js';
import type { EventBus } from '../../pipeline/events.js';
import { validateSchema, type ValidateConfig } from './schema.js';
import { closeObjects } from './close-objects.js';
import { hasBody, mediaTypeOf } from '../../shared/media-type.js';

export const validatePolicy: PolicyDefinition<ValidateConfig> = {
  name: 'validate',
  description: 'Validates the request body, query, path parameters and headers against JSON Schemas.',
  phase: 'protect',
  schema: validateSchema,
  create(config, setup): PolicyInstance {
    return new Validator(config, setup.services.events);
  },
};

export interface FieldError {
  /** Where: `/body/...`, `/query/...`, `/params/...` or `/headers/...` (RFC 6901 pointer). */
  pointer: string;
  /** The JSON Schema keyword that failed (`type`, `required`, `maximum` ...). */
  keyword: string;
  message: string;
}

function newAjv(coerce: boolean, strip: boolean): Ajv2020 {
  return new Ajv2020({
    allErrors: true,
    strict: false,
    coerceTypes: coerce ? 'array' : false,
    useDefaults: false,
    ...(strip ? { removeAdditional: 'all' as const } : {}),
  });
}

function escapePointer(segment: string): string {
  const s = segment.length > 100 ? segment.slice(0, 100) + '…' : segment;
  return s.replace(/~/g, '~0').replace(/\//g, '~1');
}

/** Turns ajv errors into field errors that name locations and rules but never echo the data. */
function fieldErrors(errors: readonly ErrorObject[], where: string, max: number): FieldError[] {
  const out: FieldError[] = [];
  for (const e of errors) {
    if (out.length >= max) break;
    let pointer = where + e.instancePath;
    let message = e.message ?? 'is invalid';
    if (e.keyword === 'required') {
      pointer += '/' + escapePointer(String((e.params as { missingProperty: string }).missingProperty));
      message = 'is required';
    } else if (e.keyword === 'additionalProperties' || e.keyword === 'unevaluatedProperties') {
      const name =
        (e.params as { additionalProperty?: string; unevaluatedProperty?: string }).additionalProperty ??
        (e.params as { unevaluatedProperty?: string }).unevaluatedProperty ??
        '';
      pointer += '/' + escapePointer(name);
      message = 'is not allowed';
    }
    out.push({ pointer, keyword: e.keyword, message });
  }
  return out;
}

class Validator implements PolicyInstance {
  /** Bodies and headers are not in a front proxy's cache key: a route that validates them is asked every time. */
  readonly decisionReuse: DecisionReuse;
  private readonly body: ValidateFunction | undefined;
  private readonly query: ValidateFunction | undefined;
  private readonly params: ValidateFunction | undefined;
  private readonly headers: ValidateFunction | undefined;
  private readonly types: ReadonlySet<string>;
  private readonly jsonSuffix: boolean;
  private readonly strip: boolean;
  private readonly wrongType: Problem;

  constructor(
    private readonly config: ValidateConfig,
    private readonly events: EventBus,
  ) {
    const reject = config.unknown_fields === 'reject';
    this.strip = config.unknown_fields === 'strip';
    const bodyAjv = newAjv(false, this.strip);
    const textAjv = newAjv(true, this.strip);
    const headerAjv = newAjv(true, false);
    const prepare = (schema: Record<string, unknown>) => (reject ? closeObjects(schema) : schema);
    try {
      this.body = config.body ? bodyAjv.compile(prepare(config.body)) : undefined;
      this.query = config.query ? textAjv.compile(prepare(config.query)) : undefined;
      this.params = config.params ? textAjv.compile(config.params) : undefined;
      this.headers = config.headers ? headerAjv.compile(config.headers) : undefined;
    } catch (err) {
      throw new Error(`validate: invalid JSON Schema: ${(err as Error).message}`);
    }
    this.decisionReuse = this.body !== undefined || this.headers !== undefined ? 'per-request' : 'reusable';
    this.types = new Set(config.content_types);
    this.jsonSuffix = this.types.has('application/json');
    this.wrongType = problem('unsupported-media-type', {
      detail: `The request body must be one of: ${config.content_types.join(', ')}.`,
    });
  }

  onRequest(ctx: RequestContext): PolicyResult | Promise<PolicyResult> {
    const errors: FieldError[] = [];
    const max = this.config.max_errors;
    if (this.params !== undefined) {
      const params = { ...ctx.params };
      if (!this.params(params)) errors.push(...fieldErrors(this.params.errors!, '/params', max));
    }
    if (this.query !== undefined) {
      const query = parseQuery(ctx.query);
      if (!this.query(query)) errors.push(...fieldErrors(this.query.errors!, '/query', max - errors.length));
    }
    if (this.headers !== undefined) {
      const headers = { ...ctx.headers };
      if (!this.headers(headers)) errors.push(...fieldErrors(this.headers.errors!, '/headers', max - errors.length));
    }
    if (errors.length > 0) return this.invalid(ctx, errors);
    if (this.body === undefined) return undefined;
    if (!hasBody(ctx)) {
      return this.config.body_required
        ? this.invalid(ctx, [{ pointer: '/body', keyword: 'required', message: 'is required' }])
        : undefined;
    }
    const type = mediaTypeOf(ctx.header('content-type'));
    if (!this.types.has(type) && !(this.jsonSuffix && type.endsWith('+json'))) return this.refuse(ctx, this.wrongType);
    return ctx
      .readBody()
      .then((body) => (body instanceof Problem ? this.refuse(ctx, body) : this.checkBody(ctx, body)));
  }

  private checkBody(ctx: RequestContext, raw: Buffer): PolicyResult {
    let document: unknown;
    try {
      document = JSON.parse(raw.toString('utf8'));
    } catch {
      return this.refuse(ctx, problem('malformed-json', { detail: 'The request body is not valid JSON.' }));
    }
    if (!this.body!(document))
      return this.invalid(ctx, fieldErrors(this.body!.errors!, '/body', this.config.max_errors));
    // Stripping removed undeclared members during validation: forward what was validated.
    if (this.strip) ctx.replaceBody(Buffer.from(JSON.stringify(document), 'utf8'));
    return undefined;
  }

  private invalid(ctx: RequestContext, errors: FieldError[]): Problem {
    return this.refuse(
      ctx,
      problem('invalid-request', {
        detail:
          errors.length === 1 ? `${errors[0]!.pointer} ${errors[0]!.message}.` : `${errors.length} fields are invalid.`,
        extensions: { errors },
      }),
    );
  }

  private refuse(ctx: RequestContext, p: Problem): Problem {
    ctx.decision = { outcome: 'invalid', policy: 'validate', rule: p.kind };
    // Pointers name fields, never values: safe for the audit trail.
    const errors = p.extensions?.errors as FieldError[] | undefined;
    this.events.emit({
      type: 'validation.failed',
      requestId: ctx.id,
      route: ctx.route.name,
      outcome: p.kind,
      ...(errors ? { data: { fields: errors.map((e) => e.pointer) } } : {}),
    });
    return p;
  }
}

/** Query string to an object: repeated names become arrays, `+` is a space (form encoding). */
export function parseQuery(query: string): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = Object.create(null) as Record<string, string | string[]>;
  if (query === '') return out;
  for (const [k, v] of new URLSearchParams(query)) {
    const existing = out[k];
    if (existing === undefined) out[k] = v;
    else if (Array.isArray(existing)) existing.push(v);
    else out[k] = [existing, v];
  }
  return out;
}
