/**
 * Where a route finds the end user's raw id. Compiled once per config into a function of the request context;
 * it answers undefined when the id is absent or may not be trusted, with the reason for the audit trail.
 */
import type { RequestContext } from '../../pipeline/context.js';
import type { SubjectSourceConfig } from './schema.js';

export type SubjectSource = (ctx: RequestContext) => string | undefined;

const MAX_ID_LENGTH = 512;

function usable(value: unknown): string | undefined {
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (typeof value !== 'string' || value === '' || value.length > MAX_ID_LENGTH) return undefined;
  return value;
}

export function compileSubjectSource(config: SubjectSourceConfig, where: string): SubjectSource {
  switch (config.from) {
    case 'jwt_claim': {
      const claim = config.claim;
      return (ctx) => usable(ctx.identity?.claims?.[claim]);
    }
    case 'consumer':
      return (ctx) => usable(ctx.identity?.consumer);
    case 'spiffe_id':
      return (ctx) => usable(ctx.identity?.spiffeId);
    case 'cert_fingerprint':
      return (ctx) => usable(ctx.identity?.certFingerprint);
    case 'header': {
      if (!config.header) throw new Error(`${where}.subject.header: required when subject.from is header`);
      const header = config.header.toLowerCase();
      const allowed = config.consumers.length > 0 ? new Set(config.consumers) : undefined;
      const trustAnonymous = config.trust_unauthenticated_header;
      return (ctx) => {
        const consumer = ctx.identity?.consumer;
        if (consumer !== undefined) {
          if (allowed !== undefined && !allowed.has(consumer)) return undefined;
        } else if (!trustAnonymous) {
          return undefined;
        }
        return usable(singleHeader(ctx, header));
      };
    }
  }
}

/**
 * The value of a header sent exactly once, read from the raw header list (building the lower-cased header object
 * costs more than the whole gate decision). A header sent twice is ambiguous and treated as absent.
 */
function singleHeader(ctx: RequestContext, lower: string): string | undefined {
  const req = ctx.req;
  if (req === undefined) {
    const value = ctx.headers[lower];
    return Array.isArray(value) ? undefined : value;
  }
  const raw = req.rawHeaders;
  const length = lower.length;
  let found: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length !== length || name.toLowerCase() !== lower) continue;
    if (found !== undefined) return undefined;
    found = raw[i + 1]!;
  }
  return found;
}
