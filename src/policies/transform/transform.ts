/**
 * transform: generic request and response rewriting: headers added, removed or renamed, and JSON bodies mapped
 * (fields renamed, removed, set by path). Request bodies are read (bounded by the route limit) only when a body
 * mapping exists and the request is JSON; response bodies use the core's body transform hook, JSON only.
 */
import type {
  PolicyDefinition,
  PolicyInstance,
  PolicyResult,
  ResponseBodyTransform,
  ResponseHead,
} from '../../pipeline/policy.js';
import type { RequestContext } from '../../pipeline/context.js';
import { Problem, problem } from '../../pipeline/problem.js';
import { transformSchema, type HeaderMapping, type TransformConfig } from './schema.js';
import { compileBodyMapping, type CompiledBodyMapping } from './body-mapping.js';
import { isJsonMediaType, mediaTypeOf } from '../../shared/media-type.js';

export const transformPolicy: PolicyDefinition<TransformConfig> = {
  name: 'transform',
  description: 'Adds, removes and renames request and response headers and maps JSON request and response bodies.',
  phase: 'transform',
  schema: transformSchema,
  create(config): PolicyInstance {
    const request = compileHeaders(config.request.headers);
    const response = compileHeaders(config.response.headers);
    const requestBody = compileBodyMapping(config.request.body);
    const responseBody = compileBodyMapping(config.response.body);
    // Header edits are the same for every request; a request body mapping reads a body no front proxy keys its cache on.
    const instance: { -readonly [K in keyof PolicyInstance]: PolicyInstance[K] } = {
      decisionReuse: requestBody.empty ? 'reusable' : 'per-request',
    };
    if (!request.empty || !requestBody.empty) {
      instance.onRequest = (ctx) => {
        for (const [from, to] of request.rename) {
          const value = ctx.header(from);
          if (value === undefined) continue;
          ctx.removeUpstreamHeader(from);
          ctx.setUpstreamHeader(to, value);
        }
        for (let i = 0; i < request.remove.length; i++) ctx.removeUpstreamHeader(request.remove[i]!);
        if (request.add.length > 0) ctx.addUpstreamHeaders(request.add);
        if (requestBody.empty || !isJsonMediaType(mediaTypeOf(ctx.header('content-type')))) return undefined;
        return ctx.readBody().then((body) => mapRequestBody(ctx, body, requestBody));
      };
    }
    if (!response.empty) {
      instance.onResponse = (_ctx: RequestContext, head: ResponseHead) => {
        for (const [from, to] of response.rename) {
          const value = head.headers.get(from);
          if (value === undefined) continue;
          head.headers.delete(from);
          head.headers.set(to, value);
        }
        for (let i = 0; i < response.remove.length; i++) head.headers.delete(response.remove[i]!);
        for (let i = 0; i < response.add.length; i++) head.headers.set(response.add[i]![0], response.add[i]![1]);
      };
    }
    if (!responseBody.empty) {
      const transform: ResponseBodyTransform = {
        maxBytes: config.max_body_bytes,
        onFailure: 'pass',
        wants: isJsonMediaType,
        transform(_ctx, body) {
          if (body.length === 0) return body;
          const document: unknown = JSON.parse(body.toString('utf8'));
          responseBody.apply(document);
          return Buffer.from(JSON.stringify(document), 'utf8');
        },
      };
      instance.transformResponseBody = transform;
    }
    return instance;
  },
};

interface CompiledHeaders {
  empty: boolean;
  add: Array<readonly [string, string]>;
  remove: string[];
  rename: Array<readonly [string, string]>;
}

function compileHeaders(h: HeaderMapping): CompiledHeaders {
  const add = Object.entries(h.add).map(([k, v]) => [k.toLowerCase(), v] as const);
  const remove = h.remove.map((k) => k.toLowerCase());
  const rename = Object.entries(h.rename).map(([from, to]) => [from.toLowerCase(), to.toLowerCase()] as const);
  return { empty: add.length === 0 && remove.length === 0 && rename.length === 0, add, remove, rename };
}

function mapRequestBody(ctx: RequestContext, body: Buffer | Problem, mapping: CompiledBodyMapping): PolicyResult {
  if (body instanceof Problem) return body;
  if (body.length === 0) return undefined;
  let document: unknown;
  try {
    document = JSON.parse(body.toString('utf8'));
  } catch {
    return problem('malformed-json', { detail: 'The request body is not valid JSON.' });
  }
  mapping.apply(document);
  ctx.replaceBody(Buffer.from(JSON.stringify(document), 'utf8'));
  return undefined;
}
