/**
 * Request and response media types, shared by the policies that check or rewrite bodies: `type/subtype` matching
 * (exact or `type/*`, parameters ignored) and whether a request carries a body at all.
 */
import type { RequestContext } from '../pipeline/context.js';

/** The lower-case `type/subtype` of a Content-Type value, or '' when absent. */
export function mediaTypeOf(contentType: string | undefined): string {
  if (contentType === undefined) return '';
  const semi = contentType.indexOf(';');
  return (semi === -1 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
}

/** JSON by its media type: `application/json` or any `+json` structured syntax suffix (RFC 6839). */
export function isJsonMediaType(mediaType: string): boolean {
  return mediaType === 'application/json' || mediaType.endsWith('+json');
}

export class MediaTypeMatcher {
  private readonly exact: ReadonlySet<string>;
  private readonly prefixes: readonly string[];
  private readonly jsonSuffix: boolean;

  /** With `jsonSuffix`, listing `application/json` also matches every `+json` type (for policies that read JSON). */
  constructor(types: readonly string[], options: { jsonSuffix?: boolean } = {}) {
    this.exact = new Set(types.filter((t) => !t.endsWith('/*')).map((t) => t.toLowerCase()));
    this.prefixes = types.filter((t) => t.endsWith('/*')).map((t) => t.slice(0, -1).toLowerCase());
    this.jsonSuffix = options.jsonSuffix === true && this.exact.has('application/json');
  }

  matches(mediaType: string): boolean {
    if (this.exact.has(mediaType)) return true;
    for (let i = 0; i < this.prefixes.length; i++) if (mediaType.startsWith(this.prefixes[i]!)) return true;
    return this.jsonSuffix && mediaType.endsWith('+json');
  }
}

/** A request carries a body when it declares a non-zero length or is chunked. */
export function hasBody(ctx: RequestContext): boolean {
  const length = ctx.header('content-length');
  if (length !== undefined) return length !== '0';
  return ctx.header('transfer-encoding') !== undefined;
}
