/**
 * The store: durable state shared by gateway instances (verification state, consumers, API keys, webhook events).
 * SQLite is the embedded default; PostgreSQL lets several instances share state. Modules own their tables and
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
    if (m.version !== i + 1) throw new Error(`migrations of ${module} must be numbered 1, 2, 3 ... in order (found ${m.version} at position ${i + 1})`);
  });
}
