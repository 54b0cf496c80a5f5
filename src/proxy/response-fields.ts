/**
 * What forwarding copies from an upstream response head and its trailers to the client response: the media type
 * body transforms are chosen by, headers policies set over the upstream's, and the trailers (gRPC status among
 * them) that may cross.
 */
import type { ServerResponse } from 'node:http';
import type { ResponseHead } from '../pipeline/policy.js';
import { mediaTypeOf } from '../shared/media-type.js';

/** Media type of a response head's Content-Type: lower-case `type/subtype`, '' when absent. */
export function responseMediaType(head: ResponseHead): string {
  const v = head.headers.get('content-type');
  return mediaTypeOf(Array.isArray(v) ? v[0] : v);
}

/** Sets `extra` headers (lower-case names) on a flat [name, value, ...] list, replacing same-named upstream ones. */
export function mergeResponseHeaders(flat: string[], extra: ReadonlyArray<[string, string | string[]]>): void {
  for (let e = 0; e < extra.length; e++) {
    const [name, value] = extra[e]!;
    for (let i = flat.length - 2; i >= 0; i -= 2) {
      const h = flat[i]!;
      if (h.length === name.length && h.toLowerCase() === name) flat.splice(i, 2);
    }
    if (Array.isArray(value)) for (const v of value) flat.push(name, v);
    else flat.push(name, value);
  }
}

/** Trailer fields that never cross (framing and routing ones), besides pseudo-headers. */
const NO_TRAILERS = new Set([
  'content-length',
  'transfer-encoding',
  'host',
  'connection',
  'te',
  'trailer',
  'keep-alive',
]);

/** Adds the upstream's trailers to the client response, without pseudo-headers and framing or routing fields. */
export function relayTrailers(res: ServerResponse, raw: Buffer[] | string[]): void {
  const out: Record<string, string | string[]> = {};
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toString('latin1').toLowerCase();
    if (name.charCodeAt(0) === 58 || NO_TRAILERS.has(name)) continue;
    const value = raw[i + 1]!.toString('latin1');
    const existing = out[name];
    out[name] = existing === undefined ? value : Array.isArray(existing) ? [...existing, value] : [existing, value];
  }
  res.addTrailers(out);
}
