/**
 * A real store (SQLite in memory) that a unit test can make unreachable: while `down`, every operation fails the
 * way an unreachable PostgreSQL does (StoreUnavailable, reason `unreachable`) and the store's availability hears
 * it, as PostgresStore's does. For tests that drive a clock of their own; outage tests against the real
 * PostgreSQL use testing/tcp-relay.ts.
 */
import { SqliteStore } from '../src/store/sqlite.js';
import { StoreAvailability, StoreUnavailable, type Migration, type Queryable, type Store } from '../src/store/store.js';

export class FlakyStore implements Store {
  readonly dialect = 'sqlite' as const;
  readonly availability = new StoreAvailability();
  readonly inner = new SqliteStore(':memory:');
  down = false;
  /** Operations attempted while down. */
  failures = 0;

  private gate(): void {
    if (!this.down) return;
    this.failures++;
    const err = new StoreUnavailable('unreachable', 'store unreachable: ECONNREFUSED (test)');
    this.availability.failed(err, Date.now());
    throw err;
  }

  private async run<T>(op: () => Promise<T>): Promise<T> {
    this.gate();
    const result = await op();
    this.availability.answered();
    return result;
  }

  query<T = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<T[]> {
    return this.run(() => this.inner.query<T>(sql, params));
  }

  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    return this.run(() => this.inner.transaction(fn));
  }

  migrate(module: string, migrations: readonly Migration[]): Promise<void> {
    return this.inner.migrate(module, migrations);
  }

  ping(): Promise<void> {
    return this.run(() => this.inner.ping());
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
