/**
 * response-protection: what leaves the gateway. Masks, pseudonymises (keyed hash), drops or truncates PII fields in
 * JSON responses by JSON path; removes headers that reveal upstream software; marks answers nosniff. Body rules
 * use the core's response body transform: only JSON responses of routes with this policy are buffered (up to
 * max_body_bytes); everything else streams. A JSON response that cannot be protected is withheld by default.
 */
import type { PolicyDefinition, PolicyInstance, ResponseBodyTransform, ResponseHead } from '../../pipeline/policy.js';
import type { RequestContext } from '../../pipeline/context.js';
import { resolveSecret } from '../../config/secrets.js';
import { DEFAULT_LEAKY_HEADERS, responseProtectionSchema, type ResponseProtectionConfig } from './schema.js';
import { compileFieldRule, type FieldProtector } from './field-protection.js';
import { MediaTypeMatcher } from '../../shared/media-type.js';

export const responseProtectionPolicy: PolicyDefinition<ResponseProtectionConfig> = {
  name: 'response-protection',
  description:
    'Masks, hashes, drops or truncates PII in JSON responses and removes headers that leak upstream internals.',
  phase: 'transform',
  schema: responseProtectionSchema,
  create(config, setup): PolicyInstance {
    let hashKey: Buffer | undefined;
    if (config.hash_key !== undefined) {
      hashKey = Buffer.from(resolveSecret(config.hash_key, setup.baseDir ?? process.cwd()), 'utf8');
      if (hashKey.length < 32) throw new Error('response-protection: hash_key must be at least 32 bytes');
    }
    const protectors = config.fields.map((rule) => compileFieldRule(rule, hashKey));
    const removed = [
      ...(config.remove_default_headers ? DEFAULT_LEAKY_HEADERS : []),
      ...config.remove_headers.map((h) => h.toLowerCase()),
    ];
    const nosniff = config.nosniff;
    const instance: PolicyInstance = {
      // Acts on answers only: it never changes whether a request may pass.
      decisionReuse: 'reusable',
      onResponse(_ctx: RequestContext, head: ResponseHead) {
        for (let i = 0; i < removed.length; i++) head.headers.delete(removed[i]!);
        if (nosniff) head.headers.set('x-content-type-options', 'nosniff');
      },
    };
    if (protectors.length === 0) return instance;
    const body = new JsonFieldProtection(config, protectors);
    return {
      ...instance,
      // Compressed answers could not be read: ask the upstream for an uncompressed one.
      onRequest(ctx: RequestContext) {
        ctx.removeUpstreamHeader('accept-encoding');
      },
      transformResponseBody: body,
    };
  },
};

class JsonFieldProtection implements ResponseBodyTransform {
  readonly maxBytes: number;
  readonly onFailure: 'block' | 'pass';
  private readonly types: MediaTypeMatcher;

  constructor(
    config: ResponseProtectionConfig,
    private readonly protectors: readonly FieldProtector[],
  ) {
    this.maxBytes = config.max_body_bytes;
    this.onFailure = config.on_failure;
    this.types = new MediaTypeMatcher(config.content_types, { jsonSuffix: true });
  }

  wants(mediaType: string): boolean {
    return this.types.matches(mediaType);
  }

  transform(_ctx: RequestContext, body: Buffer): Buffer {
    if (body.length === 0) return body;
    // Invalid JSON throws: the core then blocks or passes the response as configured.
    const document: unknown = JSON.parse(body.toString('utf8'));
    for (let i = 0; i < this.protectors.length; i++) this.protectors[i]!(document);
    return Buffer.from(JSON.stringify(document), 'utf8');
  }
}
