/**
 * SQLite store (better-sqlite3): the embedded default. WAL mode; `synchronous=FULL` by default so that a commit
 * the gateway acknowledged survives a crash of the machine, not only of the process. better-sqlite3 is
 * synchronous: reads on the request path are served from caches, and writes are small.
 *
 * A database locked by another process (the `kycgate keys` CLI, a backup) is waited for without blocking the event
 * loop: SQLite's own busy handler (which sleeps in the calling thread) is off, and a statement that finds the
 * database busy is tried again a few milliseconds later until `busyTimeoutMs` has passed. Then, and on a full disk
 * or an I/O error, the operation fails with StoreUnavailable (the request answers 503 with Retry-After).
 */
import Database from 'better-sqlite3';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  MIGRATIONS_TABLE,
  StoreAvailability,
  StoreUnavailable,
  checkMigrations,
  migrationSql,
  type Migration,
  type Queryable,
  type Store,
  type StoreUnavailableReason,
} from './store.js';

/** Default for how long an operation waits for a database locked by another process. */
export const DEFAULT_BUSY_TIMEOUT_MS = 1000;

/** SQLite result codes (primary code prefix of better-sqlite3's `code`) that mean "not now" rather than "wrong statement". */
const UNAVAILABLE_CODES: ReadonlyArray<readonly [string, StoreUnavailableReason]> = [
  ['SQLITE_BUSY', 'busy'],
  ['SQLITE_LOCKED', 'busy'],
  ['SQLITE_PROTOCOL', 'busy'],
  ['SQLITE_FULL', 'full'],
  ['SQLITE_IOERR', 'io'],
  ['SQLITE_CANTOPEN', 'io'],
  ['SQLITE_NOMEM', 'io'],
  ['SQLITE_READONLY', 'read_only'],
];

/** The StoreUnavailable an SQLite error stands for, or undefined for any other error. */
export function unavailableFromSqlite(err: unknown): StoreUnavailable | undefined {
  if (err instanceof StoreUnavailable) return err;
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return undefined;
  for (const [prefix, reason] of UNAVAILABLE_CODES) {
    if (code === prefix || code.startsWith(prefix + '_'))
      return new StoreUnavailable(reason, `store unavailable (${reason}): ${(err as Error).message}`, { cause: err });
  }
  return undefined;
}

function isBusy(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'));
}

/** `$1..$n` → positional `?`, duplicating parameters used more than once. */
function translate(sql: string, params: readonly unknown[]): { sql: string; params: unknown[] } {
  const out: unknown[] = [];
  const text = sql.replace(/\$(\d+)/g, (_m, n: string) => {
    out.push(params[Number(n) - 1]);
    return '?';
  });
  return {
    sql: text,
    params: out.map((v) => (typeof v === 'boolean' ? (v ? 1 : 0) : v instanceof Date ? v.getTime() : v)),
  };
}

export class SqliteStore implements Store {
  readonly dialect = 'sqlite' as const;
  /** An embedded database is always reachable: busy, full and I/O errors are answers, not an outage. */
  readonly availability = new StoreAvailability();
  private readonly db: Database.Database;
  private readonly statements = new Map<string, Database.Statement>();
  private readonly busyTimeoutMs: number;

  constructor(file: string, options: { synchronous?: 'full' | 'normal'; busyTimeoutMs?: number } = {}) {
    if (file !== ':memory:') {
      mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
      // Created readable by the owner only, like the key files beside it; SQLite gives its -wal and -shm files the
      // database file's permissions.
      closeSync(openSync(file, 'a', 0o600));
    }
    this.busyTimeoutMs = options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS;
    // Opening may meet a lock (another process recovering the WAL): waiting here, once at start, is acceptable.
    this.db = new Database(file, { timeout: 5000 });
    this.db.pragma('journal_mode = WAL');
    this.db.pragma(`synchronous = ${options.synchronous === 'normal' ? 'NORMAL' : 'FULL'}`);
    // Busy waits happen in `retryBusy`, off the event loop.
    this.db.pragma('busy_timeout = 0');
    this.db.pragma('foreign_keys = ON');
  }

  /**
   * Runs `step` (synchronous) until it does not find the database busy, sleeping between attempts, for at most
   * `busyTimeoutMs` from `started`. Errors that mean "not now" are thrown as StoreUnavailable.
   */
  private async retryBusy<T>(step: () => T, started = performance.now()): Promise<T> {
    for (let wait = 2; ; wait = Math.min(wait * 2, 50)) {
      try {
        return step();
      } catch (err) {
        const left = started + this.busyTimeoutMs - performance.now();
        if (!isBusy(err) || left <= 0) throw unavailableFromSqlite(err) ?? err;
        await sleep(Math.min(wait, left));
      }
    }
  }

  private prepare(sql: string): Database.Statement {
    let stmt = this.statements.get(sql);
    if (!stmt) {
      stmt = this.db.prepare(sql);
      if (this.statements.size > 500) this.statements.clear();
      this.statements.set(sql, stmt);
    }
    return stmt;
  }

  runSync<T>(sql: string, params: readonly unknown[] = []): T[] {
    const t = translate(sql, params);
    const stmt = this.prepare(t.sql);
    if (stmt.reader) return stmt.all(...t.params) as T[];
    stmt.run(...t.params);
    return [];
  }

  query<T = Record<string, unknown>>(sql: string, params: readonly unknown[] = []): Promise<T[]> {
    try {
      return Promise.resolve(this.runSync<T>(sql, params));
    } catch (err) {
      if (isBusy(err) && !this.db.inTransaction) return this.retryBusy(() => this.runSync<T>(sql, params));
      return Promise.reject(unavailableFromSqlite(err) ?? err);
    }
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    // better-sqlite3 transactions are synchronous; an async body is bracketed by BEGIN/COMMIT instead. SQLite
    // allows one writer, so concurrent callers are serialised through a queue.
    const run = async (): Promise<T> => {
      await this.retryBusy(() => this.db.exec('BEGIN IMMEDIATE'));
      try {
        const result = await fn(this);
        this.db.exec('COMMIT');
        return result;
      } catch (err) {
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
        throw unavailableFromSqlite(err) ?? err;
      }
    };
    const next = this.queue.then(run, run);
    this.queue = next.then(
      () => undefined,
      () => undefined,
    );
    return next;
  }
  private queue: Promise<unknown> = Promise.resolve();

  async migrate(module: string, migrations: readonly Migration[]): Promise<void> {
    checkMigrations(module, migrations);
    // At start, waiting for another process's lock in place is fine (nothing is being served yet).
    this.db.pragma('busy_timeout = 5000');
    try {
      this.applyMigrations(module, migrations);
    } finally {
      this.db.pragma('busy_timeout = 0');
    }
  }

  private applyMigrations(module: string, migrations: readonly Migration[]): void {
    this.db.exec(MIGRATIONS_TABLE);
    const applied = new Set(
      this.runSync<{ version: number }>('SELECT version FROM kycgate_migrations WHERE module = $1', [module]).map((r) =>
        Number(r.version),
      ),
    );
    for (const m of migrations) {
      if (applied.has(m.version)) continue;
      this.db
        .transaction(() => {
          this.db.exec(migrationSql(m, 'sqlite'));
          this.runSync('INSERT INTO kycgate_migrations (module, version, name, applied_at) VALUES ($1, $2, $3, $4)', [
            module,
            m.version,
            m.name,
            Date.now(),
          ]);
        })
        .immediate();
    }
  }

  async ping(): Promise<void> {
    this.db.prepare('SELECT 1').get();
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}
