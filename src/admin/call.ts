/** What a handler of the admin API receives and returns, and the helpers handlers share. */
import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import type { AdminApiConfig } from '../config/admin-api-schema.js';
import type { GatewayConfig } from '../config/types.js';
import { type Problem, problem, type ProblemInit } from '../pipeline/problem.js';
import type { Services } from '../pipeline/services.js';
import type { ListenerCertificateInfo, UpstreamTargetInfo } from '../subsystems.js';
import { isStoreUnavailable } from '../store/store.js';
import type { AdminKeys } from './admin-keys.js';
import type { Instances } from './instances.js';
import type { DecisionStats } from './stats.js';
import { ADMIN_INVALID_REQUEST, ADMIN_NOT_CONFIGURED, ADMIN_NOT_FOUND } from './problems.js';
import type { ProblemType } from '../pipeline/problem.js';

export interface Principal {
  actor: string;
  role: 'viewer' | 'operator' | 'admin';
  method: 'admin-key' | 'config-key' | 'mtls' | 'oidc';
}

/** What the API reads from the gateway that mounts it. */
export interface AdminApiSources {
  readonly logger: Logger;
  readonly services: Services;
  readonly version: string;
  config(): GatewayConfig;
  configFile(): string | undefined;
  baseDir(): string;
  certificates(): readonly ListenerCertificateInfo[];
  upstreams(): readonly UpstreamTargetInfo[];
  draining(): boolean;
  ready(): Promise<boolean>;
  resolveSecret(ref: unknown): string;
}

export interface ApiContext {
  readonly sources: AdminApiSources;
  readonly services: Services;
  readonly logger: Logger;
  readonly keys: AdminKeys;
  readonly instances: Instances;
  readonly stats: DecisionStats;
  readonly config: () => AdminApiConfig;
  /** A dashboard session's principal (admin.api.oidc, read from the store), for a request that presents no key. */
  session?: (req: IncomingMessage) => Promise<Principal | undefined>;
}

export interface Call {
  readonly principal: Principal;
  readonly params: Record<string, string>;
  readonly query: Record<string, unknown>;
  readonly body: unknown;
  readonly requestId: string;
  readonly api: ApiContext;
  /** Records the change in the audit trail (the operation's event, with the actor and these fields). */
  audit(data: Record<string, unknown>, outcome?: string): void;
}

export type Reply =
  | { status?: number; body: unknown }
  | { status?: number; stream: AsyncIterable<string>; contentType: string };

export type Handler = (call: Call) => Promise<Reply>;

/** A problem a handler answers with (thrown, so a helper can refuse from anywhere). */
export class ApiError extends Error {
  constructor(readonly problem: Problem) {
    super(problem.detail ?? problem.title);
  }
}

export function refuse(type: ProblemType, detail: string, init: Omit<ProblemInit, 'detail'> = {}): never {
  throw new ApiError(problem(type, { ...init, detail }));
}

export const notFound = (what: string): never => refuse(ADMIN_NOT_FOUND, `${what} does not exist.`);

export const notConfigured = (what: string): never => refuse(ADMIN_NOT_CONFIGURED, what);

/** Maps a failure to its answer: a problem a handler chose, the store unreachable (503), else rethrown. */
export function problemOf(err: unknown): Problem | undefined {
  if (err instanceof ApiError) return err.problem;
  if (isStoreUnavailable(err))
    return problem('service-unavailable', {
      detail: 'The store cannot be reached. Try again shortly.',
      headers: { 'retry-after': 1 },
    });
  return undefined;
}

export const iso = (ms: number | null | undefined): string | null =>
  ms === null || ms === undefined ? null : new Date(ms).toISOString();

// Cursors: opaque base64url JSON, so clients never build them.

export function encodeCursor(value: unknown): string {
  return Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
}

export function decodeCursor<T>(cursor: unknown, check: (v: unknown) => v is T): T | undefined {
  if (cursor === undefined) return undefined;
  try {
    const v: unknown = JSON.parse(Buffer.from(String(cursor), 'base64url').toString('utf8'));
    if (check(v)) return v;
  } catch {
    /* below */
  }
  return refuse(ADMIN_INVALID_REQUEST, 'The cursor is not one this API gave.', {
    extensions: { errors: [{ where: 'query/cursor', message: 'is not a cursor of this list' }] },
  });
}

export const isString = (v: unknown): v is string => typeof v === 'string';

/** Fetches limit + 1 rows to know whether a next page exists; `key` makes the next page's cursor from the last item. */
export function paged<T>(
  rows: T[],
  limit: number,
  key: (last: T) => unknown,
): { items: T[]; next_cursor: string | null } {
  if (rows.length <= limit) return { items: rows, next_cursor: null };
  const items = rows.slice(0, limit);
  return { items, next_cursor: encodeCursor(key(items[items.length - 1]!)) };
}
