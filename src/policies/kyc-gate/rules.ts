/**
 * The CEL environment of kyc-gate rules, compiled once per config. Variables: method, path, params, query,
 * headers, body (JSON object), client_ip, consumer, scopes, now, subject (state, claims, verified). Functions:
 * in_cidr(ip, cidr), and on the subject history_sum(field, window) / history_count(field, window), which query the
 * shared store so that they hold across instances.
 */
import { AddressList } from '../../shared/address-list.js';
import { Environment } from '@marcbachmann/cel-js';
import { firstLine } from '../../kyc/claims.js';
import type { RequestContext } from '../../pipeline/context.js';
import type { SubjectEntry } from '../../kyc/subject-cache.js';

/** What a rule sees of the subject. */
export class SubjectView {
  constructor(
    readonly id: string,
    readonly state: string,
    readonly claims: readonly string[],
    readonly verified: boolean,
    readonly history: HistoryReader,
  ) {}
}

export interface HistoryReader {
  sum(subject: string, field: string, sinceMs: number): Promise<number>;
  count(subject: string, field: string, sinceMs: number): Promise<number>;
}

const WINDOW = /^(\d+)(s|m|h|d)$/;
const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "24h" → milliseconds; throws on anything else (caught at compile time for literals). */
export function windowMs(window: string): number {
  const m = WINDOW.exec(window);
  if (!m) throw new Error(`window "${window}" must be a number followed by s, m, h or d`);
  return Number(m[1]) * UNIT_MS[m[2]!]!;
}

const cidrs = new Map<string, AddressList>();

/** in_cidr(ip, cidr): the range is parsed once per distinct string; a malformed one makes the condition fail. */
export function inCidr(ip: string, cidr: string): boolean {
  let list = cidrs.get(cidr);
  if (list === undefined) {
    list = new AddressList([cidr], 'in_cidr');
    cidrs.set(cidr, list);
  }
  return list.has(ip);
}

export const gateEnvironment = new Environment({ homogeneousAggregateLiterals: false })
  .registerType('Subject', {
    ctor: SubjectView,
    fields: { id: 'string', state: 'string', claims: 'list<string>', verified: 'bool' },
  })
  .registerVariable('subject', 'Subject')
  .registerVariable('method', 'string')
  .registerVariable('path', 'string')
  .registerVariable('params', 'map')
  .registerVariable('query', 'map')
  .registerVariable('headers', 'map')
  .registerVariable('body', 'map')
  .registerVariable('client_ip', 'string')
  .registerVariable('consumer', 'string')
  .registerVariable('scopes', 'list<string>')
  .registerVariable('now', 'google.protobuf.Timestamp')
  .registerFunction('in_cidr(string, string): bool', inCidr)
  .registerFunction({
    name: 'history_sum',
    receiverType: 'Subject',
    returnType: 'double',
    params: [
      { name: 'field', type: 'string' },
      { name: 'window', type: 'string' },
    ],
    handler: (s: SubjectView, field: string, window: string) =>
      s.history.sum(s.id, field, Date.now() - windowMs(window)),
  })
  .registerFunction({
    name: 'history_count',
    receiverType: 'Subject',
    returnType: 'int',
    params: [
      { name: 'field', type: 'string' },
      { name: 'window', type: 'string' },
    ],
    handler: (s: SubjectView, field: string, window: string) =>
      s.history.count(s.id, field, Date.now() - windowMs(window)).then((n) => BigInt(n)),
  });

export type Condition = (context: Record<string, unknown>) => unknown;

export interface CompiledCondition {
  readonly test: Condition;
  /** Variables the expression reads: the policy builds only those per request. */
  readonly variables: ReadonlySet<string>;
  /** It calls history_*: evaluation is asynchronous. */
  readonly readsHistory: boolean;
}

export function compileCondition(expression: string, where: string): CompiledCondition {
  let parsed: Condition & { ast: unknown; check(): { valid: boolean; type?: string; error?: Error } };
  try {
    parsed = gateEnvironment.parse(expression) as unknown as typeof parsed;
  } catch (err) {
    throw new Error(`${where}: ${firstLine((err as Error).message)}`);
  }
  const checked = parsed.check();
  if (!checked.valid) throw new Error(`${where}: ${firstLine(checked.error?.message ?? 'invalid expression')}`);
  if (checked.type !== 'bool' && checked.type !== 'dyn')
    throw new Error(`${where}: must be a boolean expression (it is ${checked.type})`);
  const variables = new Set<string>();
  const calls = new Set<string>();
  collect(parsed.ast, variables, calls, new Set());
  for (const literal of stringLiteralsOfWindows(parsed.ast)) windowOk(literal, where);
  return { test: parsed, variables, readsHistory: calls.has('history_sum') || calls.has('history_count') };
}

function collect(node: unknown, variables: Set<string>, calls: Set<string>, seen: Set<unknown>): void {
  if (typeof node !== 'object' || node === null || seen.has(node)) return;
  seen.add(node);
  if (Array.isArray(node)) {
    for (const item of node) collect(item, variables, calls, seen);
    return;
  }
  const n = node as { op?: string; args?: unknown };
  if (n.op === 'id' && typeof n.args === 'string') variables.add(n.args);
  if ((n.op === 'call' || n.op === 'rcall') && Array.isArray(n.args) && typeof n.args[0] === 'string')
    calls.add(n.args[0]);
  if (Array.isArray(n.args)) for (const a of n.args) collect(a, variables, calls, seen);
  else if (typeof n.args === 'object') collect(n.args, variables, calls, seen);
}

/** Literal second arguments of history_* calls, checked at compile time so a typo fails the config, not a request. */
function stringLiteralsOfWindows(node: unknown, out: string[] = [], seen = new Set<unknown>()): string[] {
  if (typeof node !== 'object' || node === null || seen.has(node)) return out;
  seen.add(node);
  if (Array.isArray(node)) {
    for (const item of node) stringLiteralsOfWindows(item, out, seen);
    return out;
  }
  const n = node as { op?: string; args?: unknown };
  if (n.op === 'rcall' && Array.isArray(n.args) && (n.args[0] === 'history_sum' || n.args[0] === 'history_count')) {
    const window = (n.args[2] as Array<{ op?: string; args?: unknown }> | undefined)?.[1];
    if (window?.op === 'value' && typeof window.args === 'string') out.push(window.args);
  }
  if (Array.isArray(n.args)) for (const a of n.args) stringLiteralsOfWindows(a, out, seen);
  return out;
}

function windowOk(window: string, where: string): void {
  try {
    windowMs(window);
  } catch (err) {
    throw new Error(`${where}: ${(err as Error).message}`);
  }
}

function parseQuery(query: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (query === '') return out;
  for (const [k, v] of new URLSearchParams(query)) if (!(k in out)) out[k] = v;
  return out;
}

/** The variables a route's rule conditions read, built once per request and only with what they read. */
export function ruleContext(
  v: ReadonlySet<string>,
  ctx: RequestContext,
  entry: SubjectEntry,
  now: number,
  body: Record<string, unknown> | undefined,
  history: HistoryReader,
): Record<string, unknown> {
  const c: Record<string, unknown> = {};
  if (v.has('subject'))
    c.subject = new SubjectView(entry.subject, entry.status, entry.claimList, entry.claims.size > 0, history);
  if (v.has('method')) c.method = ctx.method;
  if (v.has('path')) c.path = ctx.path;
  if (v.has('params')) c.params = ctx.params;
  if (v.has('query')) c.query = parseQuery(ctx.query);
  if (v.has('headers')) c.headers = ctx.headers;
  if (v.has('body')) c.body = body ?? {};
  if (v.has('client_ip')) c.client_ip = ctx.clientIp;
  if (v.has('consumer')) c.consumer = ctx.identity?.consumer ?? '';
  if (v.has('scopes')) c.scopes = ctx.identity?.scopes ?? [];
  if (v.has('now')) c.now = new Date(now);
  return c;
}
