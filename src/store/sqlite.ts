/**
 * SQLite store (better-sqlite3): the embedded default. WAL mode; `synchronous=FULL` by default so that a commit
 * the gateway acknowledged survives a crash of the machine, not only of the process. better-sqlite3 is
 * synchronous: reads on the request path are served from caches, and writes are small.
 */
import Database from 'better-sqlite3';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import path from 'node:path';
import { MIGRATIONS_TABLE, checkMigrations, migrationSql, type Migration, type Queryable, type Store } from './store.js';

/** `$1..$n` → positional `?`, duplicating parameters used more than once. */
function translate(sql: string, params: readonly unknown[]): { sql: string; params: unknown[] } {
  const out: unknown[] = [];
  const text = sql.replace(/\$(\d+)/g, (_m, n: string) => {
    out.push(params[Number(n) - 1]);
    return '?';
  });
  return { sql: text, params: out.map((v) => (typeof v === 'boolean' ? (v ? 1 : 0) : v instanceof Date ? v.getTime() : v)) };
}

export class SqliteStore implements Store {
  readonly dialect = 'sqlite' as const;
  private readonly db: Database.Database;
  private readonly statements = new Map<string, Database.Statement>();

  constructor(file: string, options: { synchronous?: 'full' | 'normal' } = {}) {
    if (file !== ':memory:') {
      mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
      // Created readable by the owner only, like the key files beside it; SQLite gives its -wal and -shm files the
      // database file's permissions.
      closeSync(openSync(file, 'a', 0o600));
    }
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma(`synchronous = ${options.synchronous === 'normal' ? 'NORMAL' : 'FULL'}`);
    this.db.pragma('busy_timeout = 5000');
    this.db.pragma('foreign_keys = ON');
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
      return Promise.reject(err);
    }
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    // better-sqlite3 transactions are synchronous; an async body is bracketed by BEGIN/COMMIT instead. SQLite
    // allows one writer, so concurrent callers are serialised through a queue.
    const run = async (): Promise<T> => {
      this.db.exec('BEGIN IMMEDIATE');
      try {
        const result = await fn(this);
        this.db.exec('COMMIT');
        return result;
      } catch (err) {
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
        throw err;
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
    this.db.exec(MIGRATIONS_TABLE);
    const applied = new Set(this.runSync<{ version: number }>('SELECT version FROM kycgate_migrations WHERE module = $1', [module]).map((r) => Number(r.version)));
    for (const m of migrations) {
      if (applied.has(m.version)) continue;
      this.db.transaction(() => {
        this.db.exec(migrationSql(m, 'sqlite'));
        this.runSync('INSERT INTO kycgate_migrations (module, version, name, applied_at) VALUES ($1, $2, $3, $4)', [module, m.version, m.name, Date.now()]);
      }).immediate();
    }
  }

  async ping(): Promise<void> {
    this.db.prepare('SELECT 1').get();
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}
