/**
 * Incident extracts: records of a time window as JSON lines (exactly as stored, so hashes still check) or as CEF
 * (ArcSight Common Event Format) for SIEMs that ingest it.
 */
import { journalLines } from './verify.js';
import { chainsOf } from './segments.js';
import { WARNING_EVENTS } from './record.js';

export interface ExportOptions {
  since?: Date;
  until?: Date;
  format: 'jsonl' | 'cef';
  version: string;
}

/**
 * Yields the output lines (without newline) of the records whose time is in [since, until). With several chains
 * (one per worker), their records are merged in time order (each chain is already in order).
 */
export function* exportRecords(auditDir: string, o: ExportOptions): Generator<string> {
  const since = o.since?.getTime() ?? -Infinity;
  const until = o.until?.getTime() ?? Infinity;
  const heads = chainsOf(auditDir).map((c) => {
    const records = chainRecords(c.dir, since, until);
    return { records, next: records.next() };
  });
  for (;;) {
    let pick: (typeof heads)[number] | undefined;
    for (const h of heads) if (!h.next.done && (pick === undefined || h.next.value.t < pick.next.value!.t)) pick = h;
    if (pick === undefined) return;
    const { line, rec } = pick.next.value!;
    yield o.format === 'jsonl' ? line : toCef(rec, o.version);
    pick.next = pick.records.next();
  }
}

function* chainRecords(
  dir: string,
  since: number,
  until: number,
): Generator<{ t: number; line: string; rec: Record<string, unknown> }> {
  for (const { line } of journalLines(dir)) {
    let rec: Record<string, unknown>;
    try {
      rec = JSON.parse(line) as Record<string, unknown>;
    } catch {
      continue; // verify reports damaged lines; an extract carries what can be read
    }
    const t = Date.parse(String(rec.time));
    if (t >= since && t < until) yield { t, line, rec };
  }
}

/** CEF header fields escape backslash and pipe. */
export function cefHeader(value: string): string {
  return value
    .replace(/\\/g, '\\\\')
    .replace(/\|/g, '\\|')
    .replace(/[\r\n]+/g, ' ');
}

/** CEF extension values escape backslash, equals sign and line breaks. */
export function cefValue(value: string): string {
  return value
    .replace(/\\/g, '\\\\')
    .replace(/=/g, '\\=')
    .replace(/\r\n|\n/g, '\\n')
    .replace(/\r/g, '\\r');
}

function severity(rec: Record<string, unknown>): number {
  const type = String(rec.type);
  const status = typeof rec.status === 'number' ? rec.status : 0;
  if (WARNING_EVENTS.has(type)) return 7;
  if (type.startsWith('key.') || type === 'ratelimit.rejected') return 5;
  if (status >= 500) return 6;
  if (status === 401 || status === 403) return 5;
  return 3;
}

export function toCef(rec: Record<string, unknown>, version: string): string {
  const type = String(rec.type);
  const name =
    rec.kind === 'event'
      ? `${type}${rec.outcome ? ` ${String(rec.outcome)}` : ''}`
      : `${String(rec.method ?? '')} ${String(rec.route ?? rec.problem ?? '')} ${String(rec.status ?? '')}`.trim();
  // [key, value, label]: custom fields (cs*, cn*) carry a label, written only when the value is.
  const ext: Array<[string, unknown, string?]> = [
    ['rt', Date.parse(String(rec.time))],
    ['externalId', rec.id],
    ['cn1', rec.seq, 'seq'],
    ['src', rec.client_ip],
    ['suser', rec.consumer],
    ['duser', rec.subject],
    ['requestMethod', rec.method],
    ['request', rec.path],
    ['outcome', rec.outcome ?? (rec.decision as { outcome?: string } | undefined)?.outcome ?? rec.status],
    ['reason', (rec.decision as { reason?: string } | undefined)?.reason ?? rec.problem],
    ['cs1', rec.route, 'route'],
    ['cs2', rec.request_id, 'requestId'],
    ['cs3', rec.trace_id, 'traceId'],
    ['cs4', rec.auth_method, 'authMethod'],
    ['cs5', rec.spiffe_id, 'spiffeId'],
    ['cs6', rec.hash, 'recordHash'],
    ['cn2', rec.latency_ms, 'latencyMs'],
    ['deviceExternalId', rec.listener],
  ];
  const extension = ext
    .filter(([, v]) => v !== undefined && v !== null && v !== '')
    .map(([k, v, label]) => `${k}=${cefValue(String(v))}${label ? ` ${k}Label=${label}` : ''}`)
    .join(' ');
  return `CEF:0|kycgate|kycgate|${cefHeader(version)}|${cefHeader(type)}|${cefHeader(name)}|${severity(rec)}|${extension}`;
}
