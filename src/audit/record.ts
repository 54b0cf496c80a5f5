/**
 * Audit records. On the request path a record is only an entry: fields copied from the context into a plain
 * object (no string building, no JSON). The journal turns entries into canonical JSON lines later, in a batch.
 *
 * Line format (one JSON object per line, keys in this fixed order, absent fields omitted):
 *   v, seq, id, time, kind, type, request_id, trace_id, listener, route, method, path, client_ip, consumer,
 *   subject, auth_method, credential_id, spiffe_id, decision, kyc, stale, upstream, status, latency_ms, problem, aborted,
 *   outcome, request_headers, response_headers, data, prev, hash
 * `hash` is the SHA-256 (hex) of the line's canonical bytes: the line without `,"hash":"..."` (i.e. ending in
 * `"prev":"..."}`); `prev` is the previous record's `hash`.
 */
import { hash, randomBytes } from 'node:crypto';
import type { RequestContext } from '../pipeline/context.js';
import type { GatewayEvent, RefusedRequest } from '../pipeline/events.js';

/** What onRequestComplete / onRequestRefused / onEvent copy; serialised off the request path. */
export interface AuditEntry {
  kind: 'request' | 'refused' | 'event';
  /** Epoch milliseconds. */
  time: number;
  type: string;
  requestId?: string | undefined;
  traceparent?: string | undefined;
  listener?: string | undefined;
  route?: string | undefined;
  method?: string | undefined;
  path?: string | undefined;
  clientIp?: string | undefined;
  consumer?: string | undefined;
  subject?: string | undefined;
  authMethod?: string | undefined;
  credentialId?: string | undefined;
  spiffeId?: string | undefined;
  decision?: { outcome: string; policy?: string; rule?: string; reason?: string } | undefined;
  /** The KYC gate's decision when it is not `decision` itself (a later policy refused the request). */
  kyc?: { outcome: string; policy?: string; rule?: string; reason?: string } | undefined;
  /** State the decision relied on that was served past its refresh time during a store outage. */
  stale?: readonly string[] | undefined;
  upstream?: string | undefined;
  status?: number | undefined;
  latencyMs?: number | undefined;
  problem?: string | undefined;
  aborted?: boolean | undefined;
  outcome?: string | undefined;
  requestHeaders?: Record<string, string> | undefined;
  responseHeaders?: Record<string, string> | undefined;
  data?: Record<string, unknown> | undefined;
}

/** Event types that report an attack or a misconfiguration: raised severity in syslog and CEF exports. */
export const WARNING_EVENTS: ReadonlySet<string> = new Set(['auth.failure', 'webhook.refused', 'config.refused']);

/** Header names whose values never enter a record, whatever the config says. */
export const ALWAYS_REDACTED = ['authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'x-api-key'];
export const REDACTED = '[redacted]';

/** Keys in event data whose values are replaced: emitters must not send secrets, this is defence in depth. */
const SECRET_KEY =
  /secret|token|password|passwd|authori[sz]ation|cookie|api[-_]?key|signature|private|credential(?!_?id)/i;

/** Header capture compiled once from config: which names to copy, which of them are replaced. */
export class HeaderCapture {
  private readonly names: string[];
  private readonly redacted: Set<string>;
  constructor(names: readonly string[], redact: readonly string[]) {
    this.names = [...new Set(names.map((n) => n.toLowerCase()))];
    this.redacted = new Set([...ALWAYS_REDACTED, ...redact.map((n) => n.toLowerCase())]);
  }

  get empty(): boolean {
    return this.names.length === 0;
  }

  fromRequest(ctx: RequestContext): Record<string, string> | undefined {
    if (this.names.length === 0) return undefined;
    let out: Record<string, string> | undefined;
    for (const name of this.names) {
      const value = ctx.headers[name];
      if (value === undefined) continue;
      (out ??= {})[name] = this.redacted.has(name) ? REDACTED : Array.isArray(value) ? value.join(', ') : value;
    }
    return out;
  }

  fromHead(headers: ReadonlyMap<string, string | string[]>): Record<string, string> | undefined {
    if (this.names.length === 0) return undefined;
    let out: Record<string, string> | undefined;
    for (const name of this.names) {
      const value = headers.get(name);
      if (value === undefined) continue;
      (out ??= {})[name] = this.redacted.has(name) ? REDACTED : Array.isArray(value) ? value.join(', ') : value;
    }
    return out;
  }

  fromChanges(changes: ReadonlyArray<[string, string | string[]]> | undefined): Record<string, string> | undefined {
    if (this.names.length === 0 || changes === undefined) return undefined;
    let out: Record<string, string> | undefined;
    for (const [name, value] of changes) {
      if (!this.names.includes(name)) continue;
      (out ??= {})[name] = this.redacted.has(name) ? REDACTED : Array.isArray(value) ? value.join(', ') : value;
    }
    return out;
  }
}

export function requestEntry(
  ctx: RequestContext,
  now: number,
  latencyMs: number,
  reqHeaders: HeaderCapture,
  resHeaders: HeaderCapture,
): AuditEntry {
  const id = ctx.identity;
  return {
    kind: 'request',
    time: now,
    type: 'http.request',
    requestId: ctx.id,
    traceparent: ctx.header('traceparent'),
    listener: ctx.listener,
    route: ctx.route.name,
    method: ctx.method,
    path: ctx.path,
    clientIp: ctx.clientIp,
    consumer: id?.consumer,
    subject: ctx.subject,
    authMethod: id?.method,
    credentialId: id?.credentialId,
    spiffeId: id?.spiffeId,
    decision: ctx.decision,
    kyc: ctx.verification === ctx.decision ? undefined : ctx.verification,
    stale: ctx.staleState,
    upstream: ctx.target,
    status: ctx.status,
    latencyMs,
    problem: ctx.errorKind,
    aborted: ctx.aborted || undefined,
    requestHeaders: reqHeaders.empty ? undefined : reqHeaders.fromRequest(ctx),
    responseHeaders: resHeaders.empty ? undefined : resHeaders.fromChanges(ctx.responseHeaderChanges),
  };
}

export function refusedEntry(info: RefusedRequest, now: number, latencyMs: number): AuditEntry {
  return {
    kind: 'refused',
    time: now,
    type: 'http.refused',
    requestId: info.requestId,
    listener: info.listener,
    // Unknown when the request line itself could not be parsed.
    method: info.method === '' ? undefined : info.method,
    clientIp: info.clientIp,
    status: info.status,
    problem: info.problem,
    latencyMs,
  };
}

export function eventEntry(event: GatewayEvent, now: number): AuditEntry {
  return {
    kind: 'event',
    time: now,
    type: event.type,
    requestId: event.requestId,
    route: event.route,
    outcome: event.outcome,
    data: event.data,
  };
}

/** Replaces values under secret-looking keys, recursively (bounded depth). */
export function scrub(value: unknown, depth = 0): unknown {
  if (depth > 6 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => scrub(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = SECRET_KEY.test(k) ? REDACTED : scrub(v, depth + 1);
  return out;
}

/** Trace id (32 hex) of a valid W3C traceparent, else undefined. */
export function traceIdOf(traceparent: string | undefined): string | undefined {
  if (traceparent === undefined) return undefined;
  const m = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/.exec(traceparent.trim());
  return m && m[1] !== '00000000000000000000000000000000' ? m[1] : undefined;
}

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

function base32(value: number, length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) {
    out = CROCKFORD[value % 32]! + out;
    value = Math.floor(value / 32);
  }
  return out;
}

/**
 * Record ids: 10 characters of millisecond time, 6 of instance (random per process start), 10 of journal sequence,
 * all Crockford base32. Unique across instances and restarts, and sortable by time.
 */
export class RecordIds {
  private readonly instance = base32(randomBytes(4).readUInt32BE(0), 6);
  private prefixTime = -1;
  private prefix = '';
  next(time: number, seq: number): string {
    if (time !== this.prefixTime) {
      this.prefixTime = time;
      this.prefix = base32(time, 10) + this.instance;
    }
    return this.prefix + base32(seq, 10);
  }
}

export const HASH_SUFFIX_LENGTH = ',"hash":"'.length + 64 + '"}'.length;

/** ISO 8601 time of the last millisecond serialised: records of one batch mostly share a few milliseconds. */
let isoMs = -1;
let isoText = '';

function isoTime(ms: number): string {
  if (ms !== isoMs) {
    isoMs = ms;
    isoText = new Date(ms).toISOString();
  }
  return isoText;
}

/** A JSON string literal; plain ASCII without quotes, backslashes or controls (the usual case) needs no escaping. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what must be escaped
const NEEDS_ESCAPE = /["\\\u0000-\u001f\u007f-\uffff]/;
function str(value: string): string {
  return NEEDS_ESCAPE.test(value) ? JSON.stringify(value) : '"' + value + '"';
}

/**
 * A field's last value and its JSON text: consecutive records mostly repeat a listener, route, method, consumer,
 * credential and upstream, so most fields are one comparison instead of a scan for characters to escape.
 */
class Memo {
  private last: string | undefined;
  private text = '';
  of(value: string): string {
    if (value !== this.last) {
      this.last = value;
      this.text = str(value);
    }
    return this.text;
  }
}

const memo = {
  kind: new Memo(),
  type: new Memo(),
  listener: new Memo(),
  route: new Memo(),
  method: new Memo(),
  consumer: new Memo(),
  subject: new Memo(),
  authMethod: new Memo(),
  credentialId: new Memo(),
  spiffeId: new Memo(),
  upstream: new Memo(),
};

/** `,"listener":...,"route":...,"method":...` of the last record: a route's records repeat all three. */
class WhereBlock {
  private listener: string | undefined;
  private route: string | undefined;
  private method: string | undefined;
  private text = '';
  of(e: AuditEntry): string {
    if (e.listener === this.listener && e.route === this.route && e.method === this.method) return this.text;
    this.listener = e.listener;
    this.route = e.route;
    this.method = e.method;
    let out = '';
    if (e.listener !== undefined) out += ',"listener":' + memo.listener.of(e.listener);
    if (e.route !== undefined) out += ',"route":' + memo.route.of(e.route);
    if (e.method !== undefined) out += ',"method":' + memo.method.of(e.method);
    return (this.text = out);
  }
}

/**
 * `,"consumer":...` through `,"upstream":...` of the last record: a client's requests repeat its identity, subject,
 * decision and upstream. Kept only when the decisions are frozen constants (or absent) and nothing was stale, so
 * a mutable object is never read from an earlier record's text.
 */
class WhoBlock {
  private consumer: string | undefined;
  private subject: string | undefined;
  private authMethod: string | undefined;
  private credentialId: string | undefined;
  private spiffeId: string | undefined;
  private decision: AuditEntry['decision'];
  private kyc: AuditEntry['kyc'];
  private upstream: string | undefined;
  private reusable = false;
  private text = '';
  of(e: AuditEntry): string {
    if (
      this.reusable &&
      e.stale === undefined &&
      e.consumer === this.consumer &&
      e.subject === this.subject &&
      e.authMethod === this.authMethod &&
      e.credentialId === this.credentialId &&
      e.spiffeId === this.spiffeId &&
      e.decision === this.decision &&
      e.kyc === this.kyc &&
      e.upstream === this.upstream
    )
      return this.text;
    let out = '';
    if (e.consumer !== undefined) out += ',"consumer":' + memo.consumer.of(e.consumer);
    if (e.subject !== undefined) out += ',"subject":' + memo.subject.of(e.subject);
    if (e.authMethod !== undefined) out += ',"auth_method":' + memo.authMethod.of(e.authMethod);
    if (e.credentialId !== undefined) out += ',"credential_id":' + memo.credentialId.of(e.credentialId);
    if (e.spiffeId !== undefined) out += ',"spiffe_id":' + memo.spiffeId.of(e.spiffeId);
    if (e.decision !== undefined) out += ',"decision":' + decisionJson(e.decision);
    if (e.kyc !== undefined) out += ',"kyc":' + decisionJson(e.kyc);
    if (e.stale !== undefined) out += ',"stale":' + JSON.stringify(e.stale);
    if (e.upstream !== undefined) out += ',"upstream":' + memo.upstream.of(e.upstream);
    this.consumer = e.consumer;
    this.subject = e.subject;
    this.authMethod = e.authMethod;
    this.credentialId = e.credentialId;
    this.spiffeId = e.spiffeId;
    this.decision = e.decision;
    this.kyc = e.kyc;
    this.upstream = e.upstream;
    this.reusable =
      e.stale === undefined &&
      (e.decision === undefined || Object.isFrozen(e.decision)) &&
      (e.kyc === undefined || Object.isFrozen(e.kyc));
    return (this.text = out);
  }
}

const whereBlock = new WhereBlock();
const whoBlock = new WhoBlock();

/** JSON of decisions that are frozen constants (a KYC rule's pass, say), made once per decision object. */
const decisionText = new WeakMap<object, string>();

function decisionJson(decision: NonNullable<AuditEntry['decision']>): string {
  if (!Object.isFrozen(decision)) return JSON.stringify(decision);
  let text = decisionText.get(decision);
  if (text === undefined) decisionText.set(decision, (text = JSON.stringify(decision)));
  return text;
}

/**
 * The record's line up to and including `"prev":"..."` (without the closing brace): built directly, in the fixed
 * key order, byte for byte what `JSON.stringify` gives for the same record object.
 */
function recordBody(entry: AuditEntry, seq: number, id: string, prev: string): string {
  // Record ids are Crockford base32: nothing to escape.
  let out =
    '{"v":1,"seq":' +
    seq +
    ',"id":"' +
    id +
    '","time":"' +
    isoTime(entry.time) +
    '","kind":' +
    memo.kind.of(entry.kind) +
    ',"type":' +
    memo.type.of(entry.type);
  if (entry.requestId !== undefined) out += ',"request_id":' + str(entry.requestId);
  const traceId = traceIdOf(entry.traceparent);
  if (traceId !== undefined) out += ',"trace_id":"' + traceId + '"';
  out += whereBlock.of(entry);
  if (entry.path !== undefined) out += ',"path":' + str(entry.path);
  if (entry.clientIp !== undefined) out += ',"client_ip":' + str(entry.clientIp);
  out += whoBlock.of(entry);
  if (entry.status !== undefined) out += ',"status":' + JSON.stringify(entry.status);
  if (entry.latencyMs !== undefined)
    out += ',"latency_ms":' + JSON.stringify(Math.round(entry.latencyMs * 1000) / 1000);
  if (entry.problem !== undefined) out += ',"problem":' + str(entry.problem);
  if (entry.aborted) out += ',"aborted":true';
  if (entry.outcome !== undefined) out += ',"outcome":' + str(entry.outcome);
  if (entry.requestHeaders !== undefined) out += ',"request_headers":' + JSON.stringify(entry.requestHeaders);
  if (entry.responseHeaders !== undefined) out += ',"response_headers":' + JSON.stringify(entry.responseHeaders);
  if (entry.data !== undefined) out += ',"data":' + JSON.stringify(scrub(entry.data));
  return out + ',"prev":"' + prev + '"';
}

/** Serialises an entry into a journal line (without newline), returning the line and its hash. */
export function serialise(entry: AuditEntry, seq: number, id: string, prev: string): { line: string; hash: string } {
  const body = recordBody(entry, seq, id, prev);
  const digest = sha256Hex(body + '}');
  return { line: body + ',"hash":"' + digest + '"}', hash: digest };
}

/**
 * A growable byte buffer that a batch of journal lines is serialised into, reused from batch to batch: the lines
 * go straight into the bytes that are written, with no per-record string joined to the batch and no copy of the
 * batch into a Buffer.
 */
export class LineBuffer {
  buf: Buffer;
  length = 0;
  constructor(private readonly initialBytes = 256 * 1024) {
    this.buf = Buffer.allocUnsafe(initialBytes);
  }

  /** Makes room for `bytes` more bytes after `length`. */
  reserve(bytes: number): void {
    if (this.length + bytes <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.length + bytes));
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }

  /** The bytes written so far. */
  view(): Buffer {
    return this.buf.subarray(0, this.length);
  }

  /** Empties the buffer; one grown by a burst is given back. */
  reset(): void {
    this.length = 0;
    if (this.buf.length > 4 * this.initialBytes) this.buf = Buffer.allocUnsafe(this.initialBytes);
  }
}

const HASH_PREFIX = Buffer.from(',"hash":"', 'latin1');

/**
 * Appends an entry's journal line (newline included) to `out` and returns its hash: the same bytes as
 * `serialise(...).line + "\n"`, hashed where they lie.
 */
export function serialiseInto(out: LineBuffer, entry: AuditEntry, seq: number, id: string, prev: string): string {
  const body = recordBody(entry, seq, id, prev);
  // UTF-8 needs at most 3 bytes per UTF-16 code unit.
  out.reserve(body.length * 3 + HASH_SUFFIX_LENGTH + 1);
  const buf = out.buf;
  const start = out.length;
  let end = start + buf.write(body, start, 'utf8');
  buf[end] = 0x7d; // the canonical bytes end in "}"
  const digest = hash('sha256', buf.subarray(start, end + 1), 'hex');
  end += HASH_PREFIX.copy(buf, end);
  end += buf.write(digest, end, 'latin1');
  buf[end++] = 0x22; // "
  buf[end++] = 0x7d; // }
  buf[end++] = 0x0a; // newline
  out.length = end;
  return digest;
}

/** The canonical bytes of a stored line (what its `hash` covers), or undefined when the line is not shaped right. */
export function canonicalOf(line: string): { canonical: string; hash: string } | undefined {
  if (line.length < HASH_SUFFIX_LENGTH + 2) return undefined;
  const suffix = line.slice(line.length - HASH_SUFFIX_LENGTH);
  const m = /^,"hash":"([0-9a-f]{64})"\}$/.exec(suffix);
  if (!m) return undefined;
  return { canonical: line.slice(0, line.length - HASH_SUFFIX_LENGTH) + '}', hash: m[1]! };
}

export function sha256Hex(text: string): string {
  return hash('sha256', text, 'hex');
}

/** The chain starts from this value (the `prev` of the very first record). */
export const GENESIS = '0'.repeat(64);
