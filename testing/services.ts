/**
 * Access to the real PostgreSQL and Redis on 127.0.0.1 for tests. When a service is unreachable the test is
 * skipped with the reason printed, except under CI=true, where that is a failure.
 */
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import type { TestContext } from 'node:test';
import { PostgresStore } from '../src/store/postgres.js';

export const POSTGRES_URL = process.env.KYCGATE_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const REDIS_URL = process.env.KYCGATE_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

function reachable(port: number, host = '127.0.0.1', timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, host);
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

async function requireService(t: TestContext, name: string, port: number): Promise<boolean> {
  if (await reachable(port)) return true;
  const reason = `${name} is not reachable on 127.0.0.1:${port}`;
  if (process.env.CI === 'true') throw new Error(`${reason} (CI=true: a missing service is a failure)`);
  console.log(`# skipped: ${reason}`);
  t.skip(reason);
  return false;
}

export function requirePostgres(t: TestContext): Promise<boolean> {
  return requireService(t, 'PostgreSQL', 5432);
}

export function requireRedis(t: TestContext): Promise<boolean> {
  return requireService(t, 'Redis', 6379);
}

/** A unique name for a per-test Postgres schema or Redis key prefix, so tests run in parallel. */
export function uniqueName(prefix: string): string {
  return `${prefix}_${randomBytes(6).toString('hex')}`;
}

/** A Postgres store in a fresh schema, dropped when the test ends. */
export async function freshPostgresStore(t: TestContext): Promise<PostgresStore | undefined> {
  if (!(await requirePostgres(t))) return undefined;
  const schema = uniqueName('t');
  const store = new PostgresStore({ connectionString: POSTGRES_URL, schema, poolSize: 4 });
  t.after(async () => {
    await store.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => undefined);
    await store.close();
  });
  return store;
}
