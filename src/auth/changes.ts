/**
 * How a change to a key or consumer made anywhere (this instance, another instance, the CLI) reaches every
 * instance's caches: a Redis message on `auth:changes` when Redis is configured (effective in milliseconds), and
 * a poll of the store's `updated_at` columns every `pollMs` as the fallback that also works without Redis.
 */
import type { Logger } from 'pino';
import type { Invalidations } from '../shared/invalidation.js';
import type { Store } from '../store/store.js';
import { type ConsumerDirectory, listConsumers } from './consumers.js';
import type { ApiKeyVerifier } from './api-keys/verifier.js';

export const AUTH_CHANGES_CHANNEL = 'auth:changes';

/** Tells every instance that key `id` changed. Resolves false when Redis is unreachable (the poll still works). */
export function announceKeyChange(redis: Invalidations | undefined, id: string): Promise<boolean> {
  return redis ? redis.publish(AUTH_CHANGES_CHANNEL, `key:${id}`) : Promise.resolve(false);
}

export function announceConsumerChange(redis: Invalidations | undefined): Promise<boolean> {
  return redis ? redis.publish(AUTH_CHANGES_CHANNEL, 'consumers') : Promise.resolve(false);
}

export class AuthChangeFeed {
  private timer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;
  private keysSeen = new Map<string, number>();
  private keysNewest = 0;
  private consumersFingerprint = '';
  private polling = false;
  /** The consumer read under way, and the one queued behind it for calls made since it started. */
  private refreshing: Promise<void> | undefined;
  private next: Promise<void> | undefined;
  private nextForced = false;
  /** Set while the store is failing, so an outage is logged once rather than every poll. */
  private failing = false;

  constructor(
    private readonly store: Store,
    private readonly verifier: ApiKeyVerifier,
    private readonly directory: ConsumerDirectory,
    private readonly logger: Logger,
    private readonly redis: Invalidations | undefined,
    private readonly pollMs: number,
  ) {}

  async start(): Promise<void> {
    await this.refreshConsumers();
    const initial = await this.store.query<{ newest: number | string | null }>(
      'SELECT MAX(updated_at) AS newest FROM api_keys',
    );
    this.keysNewest = Number(initial[0]?.newest ?? 0);
    if (this.redis) {
      this.unsubscribe = this.redis.subscribe(AUTH_CHANGES_CHANNEL, (message) => this.onMessage(message));
    }
    this.timer = setInterval(() => void this.poll(), this.pollMs);
    this.timer.unref();
  }

  private onMessage(message: string): void {
    if (message.startsWith('key:')) this.verifier.invalidate(message.slice(4));
    else if (message === 'consumers')
      void this.refreshConsumers().catch((err: Error) =>
        this.logger.warn({ err: err.message }, 'consumer refresh failed'),
      );
  }

  /**
   * Reloads every consumer when the table changed (or at once with `force`); keys cache identities built from
   * consumers, so they go too. Callers know of a change made before they call, so each gets a read that starts after
   * its call: one under way is joined only by the calls made before it started, later ones share the next.
   */
  refreshConsumers(force = false): Promise<void> {
    if (this.refreshing === undefined) return this.startRefresh(force);
    this.nextForced ||= force;
    return (this.next ??= this.refreshing.then(
      () => this.startQueued(),
      () => this.startQueued(),
    ));
  }

  private startQueued(): Promise<void> {
    const force = this.nextForced;
    this.next = undefined;
    this.nextForced = false;
    return this.startRefresh(force);
  }

  private startRefresh(force: boolean): Promise<void> {
    const run = this.readConsumers(force).finally(() => {
      if (this.refreshing === run) this.refreshing = undefined;
    });
    this.refreshing = run;
    return run;
  }

  private async readConsumers(force: boolean): Promise<void> {
    const rows = await this.store.query<{
      n: number | string;
      newest: number | string | null;
      total: number | string | null;
    }>('SELECT COUNT(*) AS n, MAX(updated_at) AS newest, SUM(updated_at) AS total FROM consumers');
    const fingerprint = `${rows[0]?.n ?? 0}:${rows[0]?.newest ?? 0}:${rows[0]?.total ?? 0}`;
    if (!force && fingerprint === this.consumersFingerprint) return;
    this.directory.replace(await listConsumers(this.store));
    this.consumersFingerprint = fingerprint;
    this.verifier.invalidateAll();
  }

  private async poll(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      // Clocks of instances differ a little: look back a few seconds and skip changes already seen.
      const { ids } = await this.changedKeys(this.keysNewest - 5000);
      for (const id of ids) this.verifier.invalidate(id);
      await this.refreshConsumers();
      if (this.failing) this.logger.info('auth change poll recovered');
      this.failing = false;
    } catch (err) {
      if (!this.failing) {
        this.logger.warn(
          { err: (err as Error).message },
          'auth change poll failed: changes to keys and consumers made elsewhere are not seen until the store ' +
            'answers (Redis messages still are); consumers are kept, and cached keys are used up to ' +
            'store.stale_period_seconds past their refresh time while the store is unreachable',
        );
      }
      this.failing = true;
    } finally {
      this.polling = false;
    }
  }

  private async changedKeys(since: number): Promise<{ ids: string[] }> {
    const rows = await this.store.query<{ id: string; updated_at: number | string }>(
      'SELECT id, updated_at FROM api_keys WHERE updated_at > $1',
      [since],
    );
    const ids: string[] = [];
    const seen = new Map<string, number>();
    for (const r of rows) {
      const at = Number(r.updated_at);
      seen.set(r.id, at);
      if (this.keysSeen.get(r.id) !== at) ids.push(r.id);
      if (at > this.keysNewest) this.keysNewest = at;
    }
    this.keysSeen = seen;
    return { ids };
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.unsubscribe?.();
  }
}
