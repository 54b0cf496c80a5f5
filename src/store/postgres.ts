/**
 * PostgreSQL store (pg): durable state shared by several gateway instances. Migrations take an advisory lock so
 * that instances starting together apply each migration once.
 */
import pg from 'pg';
import { MIGRATIONS_TABLE, checkMigrations, migrationSql, type Migration, type Queryable, type Store } from './store.js';

// BIGINT columns hold millisecond timestamps and counters well inside 2^53: read them as numbers.
pg.types.setTypeParser(20, (v: string) => Number(v));

export interface PostgresOptions {
  connectionString: string;
  poolSize?: number;
  /** Schema to use (created if missing); tests use one schema each. */
  schema?: string;
  /**
   * Longest a query may take, enforced by the server (statement_timeout) and by the client (query_timeout, which also
   * covers a server that stopped answering), so a hung database fails requests instead of holding them. Default 10 s.
   */
  queryTimeoutMs?: number;
}

export class PostgresStore implements Store {
  readonly dialect = 'postgres' as const;
  readonly pool: pg.Pool;
  private readonly schema: string | undefined;
  private schemaReady: Promise<void> | undefined;

  constructor(options: PostgresOptions) {
    this.schema = options.schema;
    if (this.schema !== undefined && !/^[a-z_][a-z0-9_]*$/.test(this.schema)) throw new Error('postgres schema name must match [a-z_][a-z0-9_]*');
    this.pool = new pg.Pool({
      connectionString: options.connectionString,
      max: options.poolSize ?? 10,
      connectionTimeoutMillis: 5000,
      idleTimeoutMillis: 30000,
      statement_timeout: options.queryTimeoutMs ?? 10_000,
      query_timeout: options.queryTimeoutMs ?? 10_000,
      keepAlive: true,
      ...(this.schema ? { options: `-c search_path=${this.schema}` } : {}),
    });
    // An idle client losing its connection must not crash the process; the next query reconnects.
    this.pool.on('error', () => undefined);
  }

  private ensureSchema(): Promise<void> {
    if (this.schema === undefined) return Promise.resolve();
    // A failure is not kept: the next query tries again (the database may have been down for a moment).
    return (this.schemaReady ??= this.pool.query(`CREATE SCHEMA IF NOT EXISTS ${this.schema}`).then(
      () => undefined,
      (err: unknown) => {
        this.schemaReady = undefined;
        throw err;
      },
    ));
  }

  async query<T = Record<string, unknown>>(sql: string, params: readonly unknown[] = []): Promise<T[]> {
    await this.ensureSchema();
    const result = await this.pool.query(sql, params as unknown[]);
    return result.rows as T[];
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    await this.ensureSchema();
    const client = await this.pool.connect();
    let failure: Error | undefined;
    try {
      await client.query('BEGIN');
      const tx: Queryable = {
        query: async <R>(sql: string, params: readonly unknown[] = []) => (await client.query(sql, params as unknown[])).rows as R[],
      };
      const result = await fn(tx);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      failure = err as Error;
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      // After a failure (a timed-out query may still be running on it) the connection is discarded, not reused.
      client.release(failure);
    }
  }

  async migrate(module: string, migrations: readonly Migration[]): Promise<void> {
    checkMigrations(module, migrations);
    await this.ensureSchema();
    const client = await this.pool.connect();
    try {
      // One lock per database for all migrations: instances starting together take turns.
      await client.query('SELECT pg_advisory_lock(74657)');
      await client.query(MIGRATIONS_TABLE);
      const applied = new Set((await client.query('SELECT version FROM kycgate_migrations WHERE module = $1', [module])).rows.map((r: { version: number }) => Number(r.version)));
      for (const m of migrations) {
        if (applied.has(m.version)) continue;
        await client.query('BEGIN');
        try {
          await client.query(migrationSql(m, 'postgres'));
          await client.query('INSERT INTO kycgate_migrations (module, version, name, applied_at) VALUES ($1, $2, $3, $4)', [module, m.version, m.name, Date.now()]);
          await client.query('COMMIT');
        } catch (err) {
          await client.query('ROLLBACK').catch(() => undefined);
          throw new Error(`migration ${module}/${m.version} (${m.name}) failed: ${(err as Error).message}`);
        }
      }
    } finally {
      await client.query('SELECT pg_advisory_unlock(74657)').catch(() => undefined);
      client.release();
    }
  }

  async ping(): Promise<void> {
    await this.pool.query('SELECT 1');
  }

  async close(): Promise<void> {
    await this.pool.end().catch(() => undefined);
  }
}
