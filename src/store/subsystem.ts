/**
 * The `store` config section and the `store` service. Without a section the embedded SQLite database under the
 * data directory is used; `driver: postgres` shares state between gateway instances.
 */
import path from 'node:path';
import type { Subsystem } from '../subsystems.js';
import { ConfigError } from '../config/load.js';
import { secretRefSchema } from '../config/secret-ref-schema.js';
import { connectionUrl } from '../config/secrets.js';
import { SqliteStore } from './sqlite.js';
import { PostgresStore } from './postgres.js';
import type { Store } from './store.js';
import { StoreOutage } from './outage.js';
import { registerStoreMetrics } from './metrics.js';

export interface StoreConfig {
  driver: 'sqlite' | 'postgres';
  stale_period_seconds: number;
  key_cache_ttl_seconds: number;
  sqlite: { path: string; synchronous: 'full' | 'normal'; busy_timeout_ms: number };
  postgres?: {
    url: string | { env: string } | { file: string };
    pool_size: number;
    schema?: string;
    query_timeout_ms: number;
    connect_timeout_ms?: number;
  };
}

export const storeSchema = {
  type: 'object',
  description: 'Where durable state lives (verification state, consumers, API keys, webhook events).',
  properties: {
    driver: {
      enum: ['sqlite', 'postgres'],
      default: 'sqlite',
      description: 'sqlite: embedded, one instance. postgres: shared by several instances.',
    },
    stale_period_seconds: {
      type: 'integer',
      minimum: 0,
      maximum: 86400,
      default: 900,
      description:
        "While the store cannot be reached, cached API keys, consumers and users' verification state are " +
        'served for up to this long past their refresh time instead of failing with 503 (a key revoked or a ' +
        'user declined during the outage keeps passing on instances that had not seen it, for at most this ' +
        'long). Cached refusals stay refusals; a store that answers always wins. Decisions made on such ' +
        'state are marked `stale` in the audit trail and counted in kycgate_stale_decisions_total. 0: never ' +
        'serve past the refresh time. Applies on reload.',
    },
    key_cache_ttl_seconds: {
      type: 'integer',
      minimum: 1,
      maximum: 3600,
      default: 30,
      description:
        'How long a cached API key record is used before it is re-read from the store (changes and ' +
        'revocations reach every instance sooner: through Redis, or the store poll every second). Applies on ' +
        'reload.',
    },
    sqlite: {
      type: 'object',
      default: {},
      properties: {
        path: {
          type: 'string',
          default: 'kycgate.db',
          description: 'Database file; relative paths are under the data directory (`data_dir`, or KYCGATE_DATA_DIR).',
        },
        synchronous: {
          enum: ['full', 'normal'],
          default: 'full',
          description: 'full: every commit is fsynced (survives power loss). normal: survives a process crash only.',
        },
        busy_timeout_ms: {
          type: 'integer',
          minimum: 0,
          maximum: 60000,
          default: 1000,
          description:
            'How long an operation waits for a database locked by another process (the `kycgate keys` CLI, a ' +
            'backup), retrying without blocking the gateway; then the request that needed it answers 503 with ' +
            'Retry-After. A full disk answers 503 at once.',
        },
      },
      additionalProperties: false,
    },
    postgres: {
      type: 'object',
      properties: {
        url: {
          description:
            'Connection URL (postgres://user@host:port/db). A URL with a password must be given as a secret reference.',
          anyOf: [{ type: 'string', pattern: '^postgres(ql)?://' }, secretRefSchema],
        },
        pool_size: { type: 'integer', minimum: 1, default: 10, description: 'Connections per gateway instance.' },
        query_timeout_ms: {
          type: 'integer',
          minimum: 100,
          maximum: 600000,
          default: 1500,
          description:
            'Deadline of one store operation (a query, a transaction, a readiness ping), getting a connection ' +
            'included: enforced by the client (connect timeout, then what is left for each statement) and by the ' +
            'server (statement_timeout). A database that is down or hangs fails the requests that need it with ' +
            '503 within this time instead of holding them. A timed-out connection and every idle one are ' +
            'replaced.',
        },
        connect_timeout_ms: {
          type: 'integer',
          minimum: 100,
          description:
            'Longest wait for a connection (a free one from the pool, or a new one opened), within query_timeout_ms. Default: query_timeout_ms.',
        },
        schema: {
          type: 'string',
          pattern: '^[a-z_][a-z0-9_]*$',
          description: 'Schema holding kycgate tables (default: the search_path).',
        },
      },
      required: ['url'],
      additionalProperties: false,
    },
  },
  additionalProperties: false,
  default: {},
} as const;

/** Which store a config names, for people: `sqlite <file>` or `postgres <host:port/db>` (never a credential). */
export function describeStore(config: StoreConfig, dataDir: string): string {
  if (config.driver !== 'postgres') return `sqlite ${path.resolve(dataDir, config.sqlite.path)}`;
  const url = config.postgres?.url;
  if (typeof url !== 'string') return `postgres (URL from the secret reference ${JSON.stringify(url)})`;
  try {
    const u = new URL(url);
    return `postgres ${u.host}${u.pathname}${config.postgres?.schema ? ` schema ${config.postgres.schema}` : ''}`;
  } catch {
    return 'postgres';
  }
}

/**
 * The store the config describes. `minWaitMs` lengthens the deadlines for callers with nobody waiting on a request
 * (the `kycgate keys` CLI may list many keys, or wait for the gateway's write lock).
 */
export function storeFromConfig(
  config: StoreConfig,
  dataDir: string,
  resolveSecret: (ref: unknown) => string,
  options: { minWaitMs?: number } = {},
): Store {
  const min = options.minWaitMs ?? 0;
  if (config.driver === 'postgres') {
    const pgConfig = config.postgres;
    if (!pgConfig) throw new ConfigError(['store.postgres: required when store.driver is postgres']);
    const url = connectionUrl(pgConfig.url, 'store.postgres.url', resolveSecret);
    return new PostgresStore({
      connectionString: url,
      poolSize: pgConfig.pool_size,
      queryTimeoutMs: Math.max(pgConfig.query_timeout_ms, min),
      ...(pgConfig.connect_timeout_ms !== undefined ? { connectTimeoutMs: pgConfig.connect_timeout_ms } : {}),
      ...(pgConfig.schema ? { schema: pgConfig.schema } : {}),
    });
  }
  return new SqliteStore(path.resolve(dataDir, config.sqlite.path), {
    synchronous: config.sqlite.synchronous,
    busyTimeoutMs: Math.max(config.sqlite.busy_timeout_ms, min),
  });
}

export const storeSubsystem: Subsystem = {
  name: 'store',
  section: { key: 'store', schema: storeSchema },
  async start(config, ctx) {
    const store = storeFromConfig(config.store as StoreConfig, ctx.services.dataDir, ctx.resolveSecret);
    ctx.services.register<Store>('store', store);
    const outage = ctx.services.register(
      'store-outage',
      new StoreOutage(store, ctx.services.logger, (config.store as StoreConfig).stale_period_seconds),
    );
    registerStoreMetrics(ctx.services, store, outage);
    return {
      async reload(next) {
        outage.configure((next.store as StoreConfig).stale_period_seconds);
      },
      async ready() {
        try {
          await store.ping();
          return { ok: true, detail: { driver: store.dialect } };
        } catch (err) {
          return { ok: false, detail: { driver: store.dialect, state: 'unreachable' }, error: err };
        }
      },
      close: () => {
        outage.close();
        return store.close();
      },
    };
  },
};
