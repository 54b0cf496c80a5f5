/**
 * The store: durable state shared by gateway instances (verification state, consumers, API keys, webhook events).
 * SQLite is the embedded default; PostgreSQL lets several instances share state. Subsystems own their tables and
 * migrations (applied once each, in order, recorded in `kycgate_migrations`); SQL is written once with `$1..$n`
 * placeholders and the portable subset both engines accept (ON CONFLICT, RETURNING, TEXT/INTEGER/BIGINT).
 */

export type Dialect = 'sqlite' | 'postgres';

export interface Migration {
  /** Increasing per module, starting at 1. */
  version: number;
  name: string;
  /** One SQL script, or one per dialect when they differ. */
  sql: string | { sqlite: string; postgres: string };
}

export interface Queryable {
  /** Runs one statement with `$1..$n` placeholders and returns its rows (empty for statements without). */
  query<T = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<T[]>;
}

export interface Store extends Queryable {
  readonly dialect: Dialect;
  /** Whether the database answered lately: fed by every operation, read by the caches that outlive an outage. */
  readonly availability: StoreAvailability;
  /** Runs `fn` in one transaction: committed when it resolves, rolled back when it throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /** Applies `module`'s migrations not applied yet, each in its own transaction. */
  migrate(module: string, migrations: readonly Migration[]): Promise<void>;
  /** Resolves when the database answers. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export const MIGRATIONS_TABLE = `CREATE TABLE IF NOT EXISTS kycgate_migrations (
  module TEXT NOT NULL,
  version INTEGER NOT NULL,
  name TEXT NOT NULL,
  applied_at BIGINT NOT NULL,
  PRIMARY KEY (module, version)
)`;

export function migrationSql(m: Migration, dialect: Dialect): string {
  return typeof m.sql === 'string' ? m.sql : m.sql[dialect];
}

export function checkMigrations(module: string, migrations: readonly Migration[]): void {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1)
      throw new Error(
        `migrations of ${module} must be numbered 1, 2, 3 ... in order (found ${m.version} at position ${i + 1})`,
      );
  });
}

/**
 * Why a store operation failed without an answer from the database: `timeout` (no answer within the operation's
 * deadline, connecting included), `unreachable` (connection refused, reset or closed), `busy` (locked by another
 * writer, too many connections, a deadlock), `full` (disk full), `read_only` (a standby after a failover) or `io`.
 * Requests that needed the store answer 503 with Retry-After, never 500.
 */
export type StoreUnavailableReason = 'timeout' | 'unreachable' | 'busy' | 'full' | 'read_only' | 'io';

export class StoreUnavailable extends Error {
  constructor(
    readonly reason: StoreUnavailableReason,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'StoreUnavailable';
  }

  /** The database could not be reached or did not answer at all (as opposed to answering "busy" or "full"). */
  get unreachable(): boolean {
    return this.reason === 'timeout' || this.reason === 'unreachable';
  }
}

export function isStoreUnavailable(err: unknown): err is StoreUnavailable {
  return err instanceof StoreUnavailable;
}

/**
 * Whether the store can be reached, as seen by the operations themselves: the first operation that gets no answer
 * starts an outage, the next one that gets any answer (even an SQL error) ends it. Listeners hear both changes.
 */
export class StoreAvailability {
  private downSinceMs: number | undefined;
  private lastError: StoreUnavailable | undefined;
  /** `Date.now()` when the last answered operation ended. */
  private lastAnswer = 0;
  private readonly listeners = new Set<(up: boolean) => void>();

  /** Epoch milliseconds when the current outage began; undefined while the store answers. */
  get downSince(): number | undefined {
    return this.downSinceMs;
  }

  get down(): boolean {
    return this.downSinceMs !== undefined;
  }

  get error(): StoreUnavailable | undefined {
    return this.lastError;
  }

  /** The database answered an operation. */
  answered(): void {
    this.lastAnswer = Date.now();
    if (this.downSinceMs === undefined) return;
    this.downSinceMs = undefined;
    this.lastError = undefined;
    this.notify(true);
  }

  /**
   * An operation started at `startedAt` got no answer. Only an unreachable database starts an outage; and an
   * operation that began before the database last answered is old news (it hung on a connection that is gone).
   */
  failed(err: StoreUnavailable, startedAt: number): void {
    if (!err.unreachable) {
      this.answered();
      return;
    }
    if (startedAt < this.lastAnswer) return;
    this.lastError = err;
    if (this.downSinceMs !== undefined) return;
    this.downSinceMs = Date.now();
    this.notify(false);
  }

  /** Calls `listener(up)` on every change; returns the function that stops it. */
  onChange(listener: (up: boolean) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private notify(up: boolean): void {
    for (const l of this.listeners) {
      try {
        l(up);
      } catch {
        /* a listener's failure is its own */
      }
    }
  }
}
