/**
 * The `consumers` config section and the `auth` service: consumers (declared in config and/or in the store),
 * API keys and the caches that let the `authenticate` policy check them without a store query per request.
 * Starts after `store` and `redis`: it migrates its tables, syncs the declared consumers, and listens for
 * changes made by other instances and the CLI.
 */
import type { Subsystem } from '../subsystems.js';
import type { Store } from '../store/store.js';
import type { StoreConfig } from '../store/subsystem.js';
import type { StoreOutage } from '../store/outage.js';
import { invalidations } from '../shared/invalidation.js';
import { ConsumerDirectory, syncConfigConsumers, type ConsumerConfig } from './consumers.js';
import { migrateAuth } from './migrations.js';
import { KeyRepository, type CreateKeyOptions } from './api-keys/repository.js';
import { ApiKeyVerifier } from './api-keys/verifier.js';
import { AuthChangeFeed, announceConsumerChange, announceKeyChange } from './changes.js';
import { registerAuthMetrics } from './metrics.js';

export const consumersSchema = {
  type: 'object',
  description:
    'Consumers (client applications and services) declared in config. They are written to the store at ' +
    'start and on reload; consumers created in the store by other means are kept. API keys belong to a ' +
    'consumer (`kycgate keys create --consumer NAME`).',
  propertyNames: { pattern: '^[A-Za-z0-9][A-Za-z0-9_.@:-]{0,127}$' },
  additionalProperties: {
    type: 'object',
    properties: {
      scopes: {
        type: 'array',
        items: { type: 'string', minLength: 1 },
        default: [],
        description: 'Scopes granted to the consumer (used by API keys that do not name their own).',
      },
      groups: {
        type: 'array',
        items: { type: 'string', minLength: 1 },
        default: [],
        description: 'Groups the consumer belongs to (for `authorize.groups`).',
      },
      plan: { type: 'string', minLength: 1, description: 'Plan name, for rate limits per plan.' },
      metadata: {
        type: 'object',
        default: {},
        description: 'Free-form data about the consumer (owner, contact, ticket). Never secrets.',
      },
    },
    additionalProperties: false,
  },
  default: {},
} as const;

/** What the `auth` service offers policies and admin tools. */
export interface AuthService {
  readonly store: Store;
  readonly consumers: ConsumerDirectory;
  readonly keys: ApiKeyVerifier;
  readonly repository: KeyRepository;
  /** Directory of the config file: relative paths in authenticator configs resolve against it. */
  readonly baseDir: string;
  /**
   * An object shared by every route and kept across config reloads, made on first request for `key` (e.g. one
   * JWKS cache per JWKS URL, so fifty routes on one issuer fetch its keys once and a reload does not refetch).
   */
  shared<T>(key: string, make: () => T): T;
  /** Resolves a secret reference from an authenticator config (never log the value). */
  resolveSecret(ref: unknown): string;
  /** Creates, rotates and revokes keys, and tells every instance at once. */
  createKey(options: CreateKeyOptions): ReturnType<KeyRepository['create']>;
  rotateKey(id: string, overlapMs: number): ReturnType<KeyRepository['rotate']>;
  revokeKey(id: string): ReturnType<KeyRepository['revoke']>;
  /**
   * To be called after consumers (or keys in bulk) changed in the store: this instance re-reads them at once and,
   * with Redis, every other instance too (they also notice within a second by polling).
   */
  consumersChanged(keyIds?: readonly string[]): Promise<void>;
}

/** How long a cached key record is trusted before it is re-read (invalidations drop it sooner), without a store section. */
const KEY_CACHE_TTL_SECONDS = 30;
const KEY_CACHE_MAX_ENTRIES = 100_000;
/** Store poll for changes made elsewhere: the bound on revocation delay when Redis is absent or down. */
const CHANGE_POLL_MS = 1000;

export const authSubsystem: Subsystem = {
  name: 'auth',
  section: { key: 'consumers', schema: consumersSchema },
  async start(config, ctx) {
    const stopMetrics = registerAuthMetrics(ctx.services);
    const store = ctx.services.get<Store>('store');
    // Redis, or the supervisor's fan-out between workers: where key and consumer changes are announced.
    const redis = invalidations(ctx.services);
    await migrateAuth(store);
    await syncConfigConsumers(store, (config.consumers ?? {}) as Record<string, ConsumerConfig>);
    const directory = new ConsumerDirectory();
    const repository = new KeyRepository(store, ctx.services.events);
    const keyTtlSeconds = (next: typeof config) =>
      (next.store as Partial<StoreConfig> | undefined)?.key_cache_ttl_seconds ?? KEY_CACHE_TTL_SECONDS;
    const stale = ctx.services.find<StoreOutage>('store-outage');
    const verifier = new ApiKeyVerifier(repository, directory, {
      ttlMs: keyTtlSeconds(config) * 1000,
      maxEntries: KEY_CACHE_MAX_ENTRIES,
      ...(stale ? { stale } : {}),
      refreshConsumers: (): Promise<void> => feed.refreshConsumers(),
    });
    const feed = new AuthChangeFeed(store, verifier, directory, ctx.services.logger, redis, CHANGE_POLL_MS);
    await feed.start();
    const sharedObjects = new Map<string, unknown>();
    const service: AuthService = {
      shared<T>(key: string, make: () => T): T {
        let value = sharedObjects.get(key) as T | undefined;
        if (value === undefined) {
          value = make();
          sharedObjects.set(key, value);
        }
        return value;
      },
      store,
      consumers: directory,
      keys: verifier,
      repository,
      baseDir: ctx.loaded.baseDir,
      resolveSecret: ctx.resolveSecret,
      async createKey(options) {
        const created = await repository.create(options);
        verifier.invalidate(created.record.id);
        void announceKeyChange(redis, created.record.id);
        return created;
      },
      async rotateKey(id, overlapMs) {
        const rotated = await repository.rotate(id, overlapMs);
        verifier.invalidate(id);
        void announceKeyChange(redis, id);
        return rotated;
      },
      async revokeKey(id) {
        const revoked = await repository.revoke(id);
        verifier.invalidate(id);
        void announceKeyChange(redis, id);
        return revoked;
      },
      async consumersChanged(keyIds = []) {
        await feed.refreshConsumers(true);
        void announceConsumerChange(redis);
        for (const id of keyIds) {
          verifier.invalidate(id);
          void announceKeyChange(redis, id);
        }
      },
    };
    ctx.services.register<AuthService>('auth', service);
    return {
      async reload(next) {
        verifier.configure(keyTtlSeconds(next) * 1000);
        const changed = await syncConfigConsumers(store, (next.consumers ?? {}) as Record<string, ConsumerConfig>);
        if (changed) {
          await feed.refreshConsumers(true);
          void announceConsumerChange(redis);
        }
      },
      async close() {
        stopMetrics();
        feed.close();
        verifier.close();
        for (const value of sharedObjects.values()) (value as { close?: () => void }).close?.();
      },
    };
  },
};
