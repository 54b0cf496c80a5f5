/**
 * The `store` config section and the `store` service. Without a section the embedded SQLite database under the
 * data directory is used; `driver: postgres` shares state between gateway instances.
 */
import path from 'node:path';
import type { GatewayModule } from '../modules.js';
import { ConfigError } from '../config/load.js';
import { secretRefSchema } from '../config/schema.js';
import { connectionUrl } from '../config/secrets.js';
import { SqliteStore } from './sqlite.js';
import { PostgresStore } from './postgres.js';
import type { Store } from './store.js';

export interface StoreConfig {
  driver: 'sqlite' | 'postgres';
  sqlite: { path: string; synchronous: 'full' | 'normal' };
  postgres?: { url: string | { env: string } | { file: string }; pool_size: number; schema?: string; query_timeout_ms: number };
}

export const storeSchema = {
  type: 'object',
  description: 'Where durable state lives (verification state, consumers, API keys, webhook events).',
  properties: {
    driver: { enum: ['sqlite', 'postgres'], default: 'sqlite', description: 'sqlite: embedded, one instance. postgres: shared by several instances.' },
    sqlite: {
      type: 'object',
      default: {},
      properties: {
        path: { type: 'string', default: 'kycgate.db', description: 'Database file; relative paths are under the data directory (KYCGATE_DATA_DIR, default .kycgate).' },
        synchronous: { enum: ['full', 'normal'], default: 'full', description: 'full: every commit is fsynced (survives power loss). normal: survives a process crash only.' },
      },
      additionalProperties: false,
    },
    postgres: {
      type: 'object',
      properties: {
        url: {
          description: 'Connection URL (postgres://user@host:port/db). A URL with a password must be given as a secret reference.',
          anyOf: [{ type: 'string', pattern: '^postgres(ql)?://' }, secretRefSchema],
        },
        pool_size: { type: 'integer', minimum: 1, default: 10, description: 'Connections per gateway instance.' },
        query_timeout_ms: {
          type: 'integer',
          minimum: 100,
          default: 10000,
          description: 'Longest a query may take (server statement_timeout and client-side timeout): a database that hangs fails the requests that need it (503) instead of holding them.',
        },
        schema: { type: 'string', pattern: '^[a-z_][a-z0-9_]*$', description: 'Schema holding kycgate tables (default: the search_path).' },
      },
      required: ['url'],
      additionalProperties: false,
    },
  },
  additionalProperties: false,
  default: {},
} as const;

export function storeFromConfig(config: StoreConfig, dataDir: string, resolveSecret: (ref: unknown) => string): Store {
  if (config.driver === 'postgres') {
    const pgConfig = config.postgres;
    if (!pgConfig) throw new ConfigError(['store.postgres: required when store.driver is postgres']);
    const url = connectionUrl(pgConfig.url, 'store.postgres.url', resolveSecret);
    return new PostgresStore({ connectionString: url, poolSize: pgConfig.pool_size, queryTimeoutMs: pgConfig.query_timeout_ms, ...(pgConfig.schema ? { schema: pgConfig.schema } : {}) });
  }
  return new SqliteStore(path.resolve(dataDir, config.sqlite.path), { synchronous: config.sqlite.synchronous });
}

export const storeModule: GatewayModule = {
  name: 'store',
  section: { key: 'store', schema: storeSchema },
  async start(config, ctx) {
    const store = storeFromConfig(config.store as StoreConfig, ctx.services.dataDir, ctx.resolveSecret);
    ctx.services.register<Store>('store', store);
    return {
      async ready() {
        try {
          await store.ping();
          return { ok: true, detail: { driver: store.dialect } };
        } catch (err) {
          return { ok: false, detail: { driver: store.dialect, state: 'unreachable' }, error: err };
        }
      },
      close: () => store.close(),
    };
  },
};
