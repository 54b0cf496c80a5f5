/**
 * `kycgate keys`: create, list, rotate and revoke API keys in the store named by the config file (default: the
 * embedded SQLite database in its data directory, src/config/data-dir.ts). A change is committed before the command
 * reports it (durable), and announced over Redis when the config has a `redis:` section so that running gateways
 * drop their cached copy at once (they also notice it by polling the store within a second).
 */
import type { Command } from 'commander';
import { ConfigError } from '../config/load.js';
import { connectionUrl, resolveSecret } from '../config/secrets.js';
import { EventBus } from '../pipeline/events.js';
import type { Store } from '../store/store.js';
import { RedisService, type RedisConfig } from '../shared/redis.js';
import { migrateAuth } from '../auth/migrations.js';
import { findConsumer, syncConfigConsumers, type ConsumerConfig } from '../auth/consumers.js';
import { KeyRepository, apiKeyStatus, type ApiKeyRecord } from '../auth/api-keys/repository.js';
import { parseDuration } from '../auth/api-keys/format.js';
import { announceKeyChange } from '../auth/changes.js';
import { openConfiguredStore } from './configured-store.js';

interface KeyContext {
  store: Store;
  repository: KeyRepository;
  redis: RedisService | undefined;
  close(): Promise<void>;
}

/** Opens the store (and Redis) the config names, with the auth tables migrated and config consumers synced. */
export async function openKeyContext(configFile: string | undefined, events = new EventBus()): Promise<KeyContext> {
  const { config, baseDir, store } = openConfiguredStore(configFile);
  let redis: RedisService | undefined;
  try {
    await migrateAuth(store);
    await syncConfigConsumers(store, (config.consumers ?? {}) as Record<string, ConsumerConfig>);
    const section = config.redis as RedisConfig | undefined;
    if (section) {
      const url = connectionUrl(section.url, 'redis.url', (ref) => resolveSecret(ref, baseDir));
      redis = new RedisService(url, section);
    }
  } catch (err) {
    await store.close();
    throw err;
  }
  return {
    store,
    repository: new KeyRepository(store, events),
    redis,
    async close() {
      await redis?.close();
      await store.close();
    },
  };
}

function describe(r: ApiKeyRecord, now = Date.now()): Record<string, unknown> {
  const status = apiKeyStatus(r, now);
  return {
    id: r.id,
    consumer: r.consumer,
    status,
    scopes: r.scopes,
    ...(r.label !== undefined ? { label: r.label } : {}),
    created_at: new Date(r.createdAt).toISOString(),
    expires_at: r.expiresAt === undefined ? null : new Date(r.expiresAt).toISOString(),
    ...(r.revokedAt !== undefined ? { revoked_at: new Date(r.revokedAt).toISOString() } : {}),
    ...(r.rotatedFrom !== undefined ? { rotated_from: r.rotatedFrom } : {}),
    ...(r.rotatedTo !== undefined ? { rotated_to: r.rotatedTo } : {}),
  };
}

async function announce(ctx: KeyContext, id: string): Promise<void> {
  if (!ctx.redis) return;
  // The subscriber connection is not needed; wait briefly for the command connection before publishing.
  for (let i = 0; i < 40 && !ctx.redis.connected; i++) await new Promise((r) => setTimeout(r, 25));
  if (!(await announceKeyChange(ctx.redis, id))) {
    process.stderr.write(
      'kycgate: warning: Redis unreachable; gateways will notice the change by polling the store (within about a second)\n',
    );
  }
}

/** Runs one key command with the store open, turning errors into a message and exit code 1. */
function run(configFile: string | undefined, fn: (ctx: KeyContext) => Promise<void>): Promise<void> {
  return (async () => {
    let ctx: KeyContext | undefined;
    try {
      ctx = await openKeyContext(configFile);
      await fn(ctx);
    } catch (err) {
      process.stderr.write(`kycgate: ${err instanceof ConfigError ? err.message : (err as Error).message}\n`);
      process.exitCode = 1;
    } finally {
      await ctx?.close().catch(() => undefined);
    }
  })();
}

function splitList(value: string | undefined): string[] {
  return value === undefined
    ? []
    : value
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '');
}

export function registerKeysCommand(program: Command): void {
  const keys = program
    .command('keys')
    .description('Manage API keys (stored hashed; a key is shown once, at creation).');
  const configOption = [
    '-c, --config <file>',
    "configuration file naming the store and data directory (default: the demo's, ./.kycgate; KYCGATE_DATA_DIR overrides)",
  ] as const;

  keys
    .command('create')
    .description('Create a key for a consumer and print it once.')
    .requiredOption('--consumer <name>', 'consumer the key belongs to (declared in config or already in the store)')
    .option('--scopes <list>', "comma-separated scopes of this key (default: the consumer's scopes)")
    .option('--expires <duration>', 'lifetime, e.g. 90d, 24h (default: no expiry)')
    .option('--label <text>', 'a note to recognise the key by (never a secret)')
    .option('--json', 'print a JSON object instead of text')
    .option(...configOption)
    .action(
      (opts: {
        consumer: string;
        scopes?: string;
        expires?: string;
        label?: string;
        json?: boolean;
        config?: string;
      }) =>
        run(opts.config, async (ctx) => {
          if (!(await findConsumer(ctx.store, opts.consumer)))
            throw new Error(`no consumer named "${opts.consumer}": declare it under \`consumers:\` in the config`);
          const ttlMs = opts.expires === undefined ? undefined : parseDuration(opts.expires);
          const { key, record } = await ctx.repository.create({
            consumer: opts.consumer,
            scopes: splitList(opts.scopes),
            ...(ttlMs !== undefined ? { ttlMs } : {}),
            ...(opts.label !== undefined ? { label: opts.label } : {}),
          });
          await announce(ctx, record.id);
          if (opts.json) process.stdout.write(JSON.stringify({ key, ...describe(record) }) + '\n');
          else {
            process.stdout.write(`${key}\n`);
            process.stderr.write(
              `Created key ${record.id} for consumer ${record.consumer}. Store it now: it cannot be shown again.\n`,
            );
          }
        }),
    );

  keys
    .command('list')
    .description('List keys (ids, consumers, status, scopes, expiry; never the keys themselves).')
    .option('--consumer <name>', "only this consumer's keys")
    .option('--json', 'print JSON lines')
    .option(...configOption)
    .action((opts: { consumer?: string; json?: boolean; config?: string }) =>
      run(opts.config, async (ctx) => {
        const list = await ctx.repository.list(opts.consumer);
        for (const r of list) {
          const d = describe(r);
          process.stdout.write(
            opts.json
              ? JSON.stringify(d) + '\n'
              : `${d.id}  ${d.consumer}  ${d.status}  scopes=${(r.scopes as string[]).join(',') || '(consumer)'}  expires=${d.expires_at ?? 'never'}\n`,
          );
        }
      }),
    );

  keys
    .command('rotate')
    .description('Issue a replacement key; the old one keeps working for the overlap window, then stops.')
    .argument('<id>', 'key id (the 8 characters after kg_)')
    .option('--overlap <duration>', 'how long the old key keeps working, e.g. 24h, 30m', '24h')
    .option('--json', 'print a JSON object instead of text')
    .option(...configOption)
    .action((id: string, opts: { overlap: string; json?: boolean; config?: string }) =>
      run(opts.config, async (ctx) => {
        const { key, record, previous } = await ctx.repository.rotate(id, parseDuration(opts.overlap));
        await announce(ctx, previous.id);
        if (opts.json)
          process.stdout.write(JSON.stringify({ key, ...describe(record), previous: describe(previous) }) + '\n');
        else {
          process.stdout.write(`${key}\n`);
          process.stderr.write(
            `Created key ${record.id}; key ${previous.id} stops working at ` +
              `${new Date(previous.expiresAt!).toISOString()}. Store the new key now: it cannot be shown again.\n`,
          );
        }
      }),
    );

  keys
    .command('revoke')
    .description('Revoke a key; refused from the next request on every instance.')
    .argument('<id>', 'key id (the 8 characters after kg_)')
    .option(...configOption)
    .action((id: string, opts: { config?: string }) =>
      run(opts.config, async (ctx) => {
        const record = await ctx.repository.revoke(id);
        await announce(ctx, record.id);
        process.stderr.write(`Revoked key ${record.id} of consumer ${record.consumer}.\n`);
      }),
    );
}
