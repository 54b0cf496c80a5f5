/**
 * PostgreSQL store (pg): durable state shared by several gateway instances. Migrations take an advisory lock so
 * that instances starting together apply each migration once.
 *
 * Every operation (a query, a transaction, a ping) has one deadline, getting a connection included: waiting for a
 * free pooled connection or opening a new one is bounded by the connect timeout, and each statement gets what is
 * left of the deadline (client side) under a server `statement_timeout` of the whole deadline. A database that
 * stops answering therefore fails an operation within the deadline with StoreUnavailable, whatever state its
 * connections are in. A timed-out connection is discarded, and so is every idle one with it: after a failover or
 * a network partition the pool's other connections are most likely dead too, and re-using them one by one would
 * cost each next request a full deadline until TCP noticed.
 */
import pg from 'pg';
import { performance } from 'node:perf_hooks';
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

// BIGINT columns hold millisecond timestamps and counters well inside 2^53: read them as numbers.
pg.types.setTypeParser(20, (v: string) => Number(v));

/** Default deadline of one operation: a request that needs the store waits at most this long for it. */
export const DEFAULT_OPERATION_TIMEOUT_MS = 1500;
/** Migrations run at start (and may wait for another instance's): they get a deadline of their own. */
const MIGRATION_TIMEOUT_MS = 60_000;

export interface PostgresOptions {
  connectionString: string;
  poolSize?: number;
  /** Schema to use (created if missing); tests use one schema each. */
  schema?: string;
  /**
   * Deadline of one operation, getting a connection included: enforced on the client (connect timeout, then what is
   * left for each statement) and on the server (statement_timeout). Default 1500 ms.
   */
  queryTimeoutMs?: number;
  /** Longest wait for a connection (a free pooled one, or a new one), within the deadline. Default: the deadline. */
  connectTimeoutMs?: number;
}

/** Socket errors meaning the database cannot be reached. */
const NETWORK_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/** SQLSTATEs that say "not now" rather than "wrong statement" (https://www.postgresql.org/docs/current/errcodes-appendix.html). */
const UNAVAILABLE_STATES: Readonly<Record<string, StoreUnavailableReason>> = {
  '57014': 'busy', // query_canceled: the server cancelled a statement that outlived statement_timeout
  '57P01': 'unreachable', // admin_shutdown
  '57P02': 'unreachable', // crash_shutdown
  '57P03': 'unreachable', // cannot_connect_now (starting up, recovering)
  '53000': 'busy', // insufficient_resources
  '53100': 'full', // disk_full
  '53200': 'busy', // out_of_memory
  '53300': 'busy', // too_many_connections
  '25006': 'read_only', // read_only_sql_transaction (a standby after a failover)
  '40001': 'busy', // serialization_failure
  '40P01': 'busy', // deadlock_detected
  '55P03': 'busy', // lock_not_available
};

/** The StoreUnavailable a pg or socket error stands for, or undefined when the database answered it. */
export function unavailableFromPg(err: unknown): StoreUnavailable | undefined {
  if (err instanceof StoreUnavailable) return err;
  if (!(err instanceof Error)) return undefined;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (NETWORK_CODES.has(code))
      return new StoreUnavailable('unreachable', `store unreachable: ${code}`, { cause: err });
    const reason = UNAVAILABLE_STATES[code] ?? (code.startsWith('08') ? 'unreachable' : undefined);
    if (reason !== undefined)
      return new StoreUnavailable(reason, `store unavailable (${reason}): ${err.message}`, { cause: err });
    if (/^[0-9A-Z]{5}$/.test(code)) return undefined; // any other SQLSTATE: the database answered
  }
  // pg's own errors carry no code: read timeout, connect timeout, a connection that ended.
  const message = err.message;
  if (/timeout/i.test(message))
    return new StoreUnavailable('timeout', `store did not answer in time: ${message}`, { cause: err });
  if (/Connection terminated|not queryable|Connection ended|connection error/i.test(message))
    return new StoreUnavailable('unreachable', `store unreachable: ${message}`, { cause: err });
  return undefined;
}

function ignore(): void {}

function deadlineExceeded(): StoreUnavailable {
  return new StoreUnavailable('timeout', 'store did not answer within the operation deadline');
}

export class PostgresStore implements Store {
  readonly dialect = 'postgres' as const;
  readonly availability = new StoreAvailability();
  readonly pool: pg.Pool;
  /** Deadline of one operation (ms). */
  readonly timeoutMs: number;
  private readonly schema: string | undefined;
  private schemaReady: Promise<void> | undefined;
  private schemaDone: boolean;
  /** Connections resting in the pool, so that they can be discarded together when one of them hung. */
  private readonly idle = new Set<pg.PoolClient>();
  private readonly suspect = new WeakSet<pg.PoolClient>();

  constructor(options: PostgresOptions) {
    this.schema = options.schema;
    if (this.schema !== undefined && !/^[a-z_][a-z0-9_]*$/.test(this.schema))
      throw new Error('postgres schema name must match [a-z_][a-z0-9_]*');
    this.schemaDone = this.schema === undefined;
    this.timeoutMs = options.queryTimeoutMs ?? DEFAULT_OPERATION_TIMEOUT_MS;
    this.pool = new pg.Pool({
      connectionString: options.connectionString,
      max: options.poolSize ?? 10,
      connectionTimeoutMillis: Math.min(options.connectTimeoutMs ?? this.timeoutMs, this.timeoutMs),
      idleTimeoutMillis: 30000,
      statement_timeout: this.timeoutMs,
      // Statements get what is left of their operation's deadline; this is only the fallback.
      query_timeout: this.timeoutMs,
      // A transaction whose client vanished mid-way (a partition the server does not notice) must not hold its locks.
      idle_in_transaction_session_timeout: Math.max(5000, 4 * this.timeoutMs),
      keepAlive: true,
      ...(this.schema ? { options: `-c search_path=${this.schema}` } : {}),
    });
    // An idle client losing its connection must not crash the process; the next query reconnects.
    this.pool.on('error', () => undefined);
    this.pool.on('release', (err: Error | undefined, client: pg.PoolClient) => {
      if (!err) this.idle.add(client);
    });
    this.pool.on('acquire', (client) => this.idle.delete(client));
    this.pool.on('remove', (client) => this.idle.delete(client as pg.PoolClient));
  }

  /**
   * Runs `work` on one pooled connection within `timeoutMs` (connect included). A failure without an answer from
   * the database is thrown as StoreUnavailable; the connection is discarded after any failure.
   */
  private async operation<T>(
    work: (client: pg.PoolClient, deadline: number) => Promise<T>,
    timeoutMs = this.timeoutMs,
  ): Promise<T> {
    const startedAt = Date.now();
    const deadline = performance.now() + timeoutMs;
    let client: pg.PoolClient;
    try {
      client = await this.connect();
    } catch (err) {
      throw this.failed(err, startedAt);
    }
    // A connection that dies while checked out errors its statement; the client's own error event must not go unheard.
    client.on('error', ignore);
    let failure: Error | undefined;
    try {
      const result = await work(client, deadline);
      this.availability.answered();
      return result;
    } catch (err) {
      failure = err instanceof Error ? err : new Error(String(err));
      throw this.failed(err, startedAt);
    } finally {
      client.off('error', ignore);
      // After a failure (a timed-out statement may still be running on it) the connection is discarded, not reused.
      client.release(failure);
    }
  }

  /** Classifies a failure, tells `availability`, and returns what to throw. */
  private failed(err: unknown, startedAt: number): unknown {
    const unavailable = unavailableFromPg(err);
    if (unavailable === undefined) {
      this.availability.answered();
      return err;
    }
    if (unavailable.reason === 'timeout') this.discardIdle();
    this.availability.failed(unavailable, startedAt);
    return unavailable;
  }

  /**
   * A pooled connection, never one that was idle when another one hung: those are closed as they come out of the
   * pool (their sockets destroyed, so nothing waits on a dead peer) and another one is taken.
   */
  private async connect(): Promise<pg.PoolClient> {
    for (;;) {
      const client = await this.pool.connect();
      if (!this.suspect.has(client)) return client;
      this.suspect.delete(client);
      (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
      client.release(new Error('connection discarded: another one stopped answering'));
    }
  }

  /** Marks every idle connection for replacement. */
  private discardIdle(): void {
    for (const client of this.idle) this.suspect.add(client);
    this.idle.clear();
  }

  /** One statement with what is left of the deadline. */
  private statement(
    client: pg.PoolClient,
    sql: string,
    params: readonly unknown[],
    deadline: number,
  ): Promise<pg.QueryResult> {
    const left = Math.floor(deadline - performance.now());
    if (left < 1) return Promise.reject(deadlineExceeded());
    return client.query({ text: sql, values: params as unknown[], query_timeout: left } as pg.QueryConfig);
  }

  private ensureSchema(): Promise<void> {
    if (this.schemaDone) return Promise.resolve();
    // A failure is not kept: the next query tries again (the database may have been down for a moment).
    return (this.schemaReady ??= this.operation((client, deadline) =>
      this.statement(client, `CREATE SCHEMA IF NOT EXISTS ${this.schema}`, [], deadline),
    ).then(
      () => {
        this.schemaDone = true;
      },
      (err: unknown) => {
        this.schemaReady = undefined;
        throw err;
      },
    ));
  }

  async query<T = Record<string, unknown>>(sql: string, params: readonly unknown[] = []): Promise<T[]> {
    if (!this.schemaDone) await this.ensureSchema();
    return this.operation(
      async (client, deadline) => (await this.statement(client, sql, params, deadline)).rows as T[],
    );
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    if (!this.schemaDone) await this.ensureSchema();
    return this.operation(async (client, deadline) => {
      await this.statement(client, 'BEGIN', [], deadline);
      const tx: Queryable = {
        query: async <R>(sql: string, params: readonly unknown[] = []) =>
          (await this.statement(client, sql, params, deadline)).rows as R[],
      };
      try {
        const result = await fn(tx);
        await this.statement(client, 'COMMIT', [], deadline);
        return result;
      } catch (err) {
        // The connection is discarded anyway (the server rolls back when it goes); ROLLBACK first only when the
        // database is answering, so that a hung one costs no second wait.
        if (unavailableFromPg(err) === undefined)
          await this.statement(client, 'ROLLBACK', [], deadline).catch(() => undefined);
        throw err;
      }
    });
  }

  async migrate(module: string, migrations: readonly Migration[]): Promise<void> {
    checkMigrations(module, migrations);
    await this.ensureSchema();
    await this.operation(async (client) => {
      let broken = false;
      const run = (sql: string, params: unknown[] = []) =>
        client
          .query({ text: sql, values: params, query_timeout: MIGRATION_TIMEOUT_MS } as pg.QueryConfig)
          .catch((err: unknown) => {
            // A connection that stopped answering is not asked for anything more (ROLLBACK, unlock): it is discarded.
            if (unavailableFromPg(err) !== undefined) broken = true;
            throw err;
          });
      // A migration may take longer than a request's statement: this session only (reset before it is pooled again).
      await run(`SET statement_timeout = ${MIGRATION_TIMEOUT_MS}`);
      try {
        // One lock per database for all migrations: instances starting together take turns.
        await run('SELECT pg_advisory_lock(74657)');
        await run(MIGRATIONS_TABLE);
        const applied = new Set(
          (await run('SELECT version FROM kycgate_migrations WHERE module = $1', [module])).rows.map(
            (r: { version: number }) => Number(r.version),
          ),
        );
        for (const m of migrations) {
          if (applied.has(m.version)) continue;
          await run('BEGIN');
          try {
            await run(migrationSql(m, 'postgres'));
            await run('INSERT INTO kycgate_migrations (module, version, name, applied_at) VALUES ($1, $2, $3, $4)', [
              module,
              m.version,
              m.name,
              Date.now(),
            ]);
            await run('COMMIT');
          } catch (err) {
            if (broken) throw err;
            await run('ROLLBACK').catch(() => undefined);
            throw new Error(`migration ${module}/${m.version} (${m.name}) failed: ${(err as Error).message}`);
          }
        }
      } finally {
        if (!broken) {
          await run('SELECT pg_advisory_unlock(74657)').catch(() => undefined);
          await run('RESET statement_timeout').catch(() => undefined);
        }
      }
    }, MIGRATION_TIMEOUT_MS);
  }

  async ping(): Promise<void> {
    await this.operation((client, deadline) => this.statement(client, 'SELECT 1', [], deadline));
  }

  async close(): Promise<void> {
    await this.pool.end().catch(() => undefined);
  }
}
