/**
 * The `redis` config section and the `redis` service: one command connection with a short timeout and no offline
 * queue (a command to a dead Redis fails at once instead of waiting), and one subscriber connection for
 * invalidation messages between gateway instances. Users of the service decide what to do when Redis fails
 * (fail open to local state, or closed); none of them may block a request on it beyond `command_timeout_ms`.
 */
import { Redis } from 'ioredis';
import type { Subsystem } from '../subsystems.js';
import { secretRefSchema } from '../config/secret-ref-schema.js';
import { connectionUrl } from '../config/secrets.js';

export interface RedisConfig {
  url: string | { env: string } | { file: string };
  key_prefix: string;
  command_timeout_ms: number;
  connect_timeout_ms: number;
}

export const redisSchema = {
  type: 'object',
  description:
    'Redis shared by gateway instances: rate-limit counters, caches and invalidation messages. Omit to keep all of it in memory (one instance).',
  properties: {
    url: {
      description: 'redis:// or rediss:// URL. A URL with a password must be a secret reference.',
      anyOf: [{ type: 'string', pattern: '^rediss?://' }, secretRefSchema],
    },
    key_prefix: { type: 'string', default: 'kycgate:', description: 'Prefix of every key and channel name.' },
    command_timeout_ms: {
      type: 'integer',
      minimum: 1,
      maximum: 10000,
      default: 50,
      description: 'Longest a request may wait on one Redis command.',
    },
    connect_timeout_ms: { type: 'integer', minimum: 1, default: 1000, description: 'Time allowed to (re)connect.' },
  },
  required: ['url'],
  additionalProperties: false,
} as const;

type Handler = (message: string) => void;

export class RedisService {
  readonly client: Redis;
  readonly prefix: string;
  private subscriber: Redis | undefined;
  private readonly handlers = new Map<string, Set<Handler>>();

  constructor(
    private readonly url: string,
    readonly config: RedisConfig,
  ) {
    this.prefix = config.key_prefix;
    this.client = this.connect();
  }

  private connect(): Redis {
    const client = new Redis(this.url, {
      commandTimeout: this.config.command_timeout_ms,
      connectTimeout: this.config.connect_timeout_ms,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      // Keep trying to come back, at most every 2 s.
      retryStrategy: (times: number) => Math.min(50 * 2 ** times, 2000),
      lazyConnect: false,
    });
    client.on('error', () => undefined); // reported through `ready` and by callers' failures
    return client;
  }

  get connected(): boolean {
    return this.client.status === 'ready';
  }

  /** Publishes on a prefixed channel; resolves false instead of throwing when Redis is unreachable. */
  async publish(channel: string, message: string): Promise<boolean> {
    try {
      await this.client.publish(this.prefix + channel, message);
      return true;
    } catch {
      return false;
    }
  }

  /** Subscribes to a prefixed channel. Messages published by this instance arrive here too. */
  subscribe(channel: string, handler: Handler): () => void {
    const full = this.prefix + channel;
    if (!this.subscriber) {
      // The subscriber may queue while (re)connecting: subscriptions are replayed by ioredis on reconnect.
      this.subscriber = new Redis(this.url, {
        connectTimeout: this.config.connect_timeout_ms,
        retryStrategy: (times: number) => Math.min(50 * 2 ** times, 2000),
      });
      this.subscriber.on('error', () => undefined);
      this.subscriber.on('message', (ch: string, message: string) => {
        for (const h of this.handlers.get(ch) ?? []) {
          try {
            h(message);
          } catch {
            // isolated
          }
        }
      });
    }
    let set = this.handlers.get(full);
    if (!set) {
      set = new Set();
      this.handlers.set(full, set);
      void this.subscriber.subscribe(full).catch(() => undefined);
    }
    set.add(handler);
    return () => set!.delete(handler);
  }

  async close(): Promise<void> {
    this.client.disconnect();
    this.subscriber?.disconnect();
  }
}

export const redisSubsystem: Subsystem = {
  name: 'redis',
  section: { key: 'redis', schema: redisSchema },
  async start(config, ctx) {
    const section = config.redis as RedisConfig | undefined;
    if (!section) return {};
    const url = connectionUrl(section.url, 'redis.url', ctx.resolveSecret);
    const service = ctx.services.register('redis', new RedisService(url, section));
    return {
      async ready() {
        try {
          await service.client.ping();
          return { ok: true, detail: { state: 'up' } };
        } catch (err) {
          return { ok: false, detail: { state: 'unreachable' }, error: err };
        }
      },
      close: () => service.close(),
    };
  },
};
