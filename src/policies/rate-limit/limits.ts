/**
 * Limits compiled from config: GCRA parameters (emission interval and tolerance) and how each limit's counter key
 * is taken from the request. Keys are built only from the parts a limit names, once per request.
 */
import { createHash } from 'node:crypto';
import type { RequestContext } from '../../pipeline/context.js';
import type { KeyPart, LimitConfig, Period } from './schema.js';
import { ipv6Network } from '../../shared/ipv6-prefix.js';

const PERIOD_MS: Record<Period, number> = { second: 1000, minute: 60_000, hour: 3_600_000, day: 86_400_000 };

enum PartKind {
  Ip,
  Consumer,
  Credential,
  Subject,
  Header,
}

interface CompiledPart {
  kind: PartKind;
  header: string;
  /** For `ip`: prefix length IPv6 addresses are reduced to. */
  ipv6Prefix: number;
}

export interface CompiledLimit {
  readonly name: string;
  /** Requests per period, as configured (the `q` of RateLimit-Policy). */
  readonly rate: number;
  readonly burst: number;
  /** `burst` as header text (X-RateLimit-Limit), made once. */
  readonly burstText: string;
  readonly periodMs: number;
  /** GCRA emission interval: the time one request "costs". */
  readonly intervalMs: number;
  /** GCRA tolerance: how far ahead of now the theoretical arrival time may run (burst × interval). */
  readonly toleranceMs: number;
  /** Same in integer microseconds, as sent to the Redis script (exact integer arithmetic there). */
  readonly intervalUs: string;
  readonly toleranceUs: string;
  /** Canonical text of the key spec, e.g. `consumer+header:x-tenant`. */
  readonly keySpec: string;
  readonly parts: readonly CompiledPart[];
}

export interface LimitSet {
  readonly limits: readonly CompiledLimit[];
  /** RateLimit-Policy header value (draft-ietf-httpapi-ratelimit-headers), built once. */
  readonly policyHeader: string;
}

export function compileLimit(config: LimitConfig, ipv6Prefix = 128): CompiledLimit {
  const periodMs = PERIOD_MS[config.per];
  const burst = config.burst ?? config.rate;
  const intervalMs = periodMs / config.rate;
  const intervalUs = Math.max(1, Math.round(intervalMs * 1000));
  const key = config.key ?? ['ip'];
  return {
    name: config.name ?? `${config.rate}-per-${config.per}`,
    rate: config.rate,
    burst,
    burstText: String(burst),
    periodMs,
    intervalMs,
    toleranceMs: intervalMs * burst,
    intervalUs: String(intervalUs),
    toleranceUs: String(intervalUs * burst),
    keySpec: key.join('+'),
    parts: key.map((p) => compilePart(p, ipv6Prefix)),
  };
}

function compilePart(part: KeyPart, ipv6Prefix: number): CompiledPart {
  switch (part) {
    case 'ip':
      return { kind: PartKind.Ip, header: '', ipv6Prefix };
    case 'consumer':
      return { kind: PartKind.Consumer, header: '', ipv6Prefix };
    case 'credential':
      return { kind: PartKind.Credential, header: '', ipv6Prefix };
    case 'subject':
      return { kind: PartKind.Subject, header: '', ipv6Prefix };
    default:
      return { kind: PartKind.Header, header: part.slice('header:'.length).toLowerCase(), ipv6Prefix };
  }
}

export function compileLimitSet(configs: readonly LimitConfig[], ipv6Prefix = 128): LimitSet {
  const limits = configs.map((c) => compileLimit(c, ipv6Prefix));
  const names = new Set<string>();
  for (const l of limits) {
    if (names.has(l.name))
      throw new Error(`rate-limit: two limits are named "${l.name}"; give each a distinct \`name\``);
    names.add(l.name);
  }
  const policyHeader = limits.map((l) => `"${l.name}";q=${l.rate};w=${l.periodMs / 1000}`).join(', ');
  return { limits, policyHeader };
}

function partValue(part: CompiledPart, ctx: RequestContext): string | undefined {
  switch (part.kind) {
    case PartKind.Ip:
      return part.ipv6Prefix === 128 ? ctx.clientIp : ipv6Network(ctx.clientIp, part.ipv6Prefix);
    case PartKind.Consumer:
      return ctx.identity?.consumer;
    case PartKind.Credential:
      return ctx.identity?.credentialId;
    case PartKind.Subject:
      return ctx.subject;
    default: {
      const v = ctx.header(part.header);
      return v === '' ? undefined : v;
    }
  }
}

/**
 * The counter identity of `limit` for this request, or undefined when a part is missing. Parts are joined with a
 * control character that cannot occur in header values, so two different combinations never share a counter.
 */
export function keyValue(limit: CompiledLimit, ctx: RequestContext): string | undefined {
  const parts = limit.parts;
  if (parts.length === 1) return bounded(partValue(parts[0]!, ctx));
  let out = '';
  for (let i = 0; i < parts.length; i++) {
    const v = partValue(parts[i]!, ctx);
    if (v === undefined) return undefined;
    out = i === 0 ? v : out + '\u001f' + v;
  }
  return bounded(out);
}

/** Keys from client headers can be kilobytes long: long ones are stored as a digest to bound counter memory. */
const MAX_KEY_LENGTH = 128;
function bounded(value: string | undefined): string | undefined {
  if (value === undefined || value.length <= MAX_KEY_LENGTH) return value;
  return '\u0000sha256:' + createHash('sha256').update(value).digest('base64url');
}

/** Counter identity used instead of a missing key when `missing_key: ip`: cannot collide with a real value. */
export function fallbackKeyValue(ctx: RequestContext, ipv6Prefix: number): string {
  return '\u0000ip:' + (ipv6Prefix === 128 ? ctx.clientIp : ipv6Network(ctx.clientIp, ipv6Prefix));
}
