/**
 * Tables of consumers and API keys. Portable SQL (SQLite and PostgreSQL); lists are JSON text, times are
 * milliseconds since the epoch. `updated_at` lets every instance notice changes made by another (or by the CLI)
 * with one cheap query, even without Redis.
 */
import type { Migration, Store } from '../store/store.js';

export const CONSUMER_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'consumers',
    sql: `CREATE TABLE consumers (
  name TEXT PRIMARY KEY,
  scopes TEXT NOT NULL,
  group_names TEXT NOT NULL,
  plan TEXT,
  metadata TEXT NOT NULL,
  source TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
)`,
  },
  {
    version: 2,
    name: 'disabled consumers',
    sql: 'ALTER TABLE consumers ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0',
  },
];

export const API_KEY_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'api keys',
    sql: `CREATE TABLE api_keys (
  id TEXT PRIMARY KEY,
  consumer TEXT NOT NULL,
  key_hash TEXT NOT NULL,
  scopes TEXT NOT NULL,
  label TEXT,
  created_at BIGINT NOT NULL,
  expires_at BIGINT,
  revoked_at BIGINT,
  rotated_from TEXT,
  rotated_to TEXT,
  updated_at BIGINT NOT NULL
);
CREATE INDEX api_keys_consumer ON api_keys (consumer);
CREATE INDEX api_keys_updated ON api_keys (updated_at)`,
  },
];

export async function migrateAuth(store: Store): Promise<void> {
  await store.migrate('consumers', CONSUMER_MIGRATIONS);
  await store.migrate('api-keys', API_KEY_MIGRATIONS);
}
