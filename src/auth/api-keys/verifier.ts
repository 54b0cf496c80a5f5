/**
 * Checks presented API keys against the store without touching it on the request path: key records are cached in
 * memory by lookup id (positive and negative entries). A key is hashed (SHA-256) the first time it is presented; the
 * entry then remembers the exact string that matched, so the next presentations cost a map lookup and a
 * constant-time comparison with it (only the holder of the key can present that string). An entry
 * is re-read from the store after `ttlMs`, and dropped at once when an invalidation arrives (Redis pub/sub from
 * another instance or the CLI, or this instance's own change poll), so a revocation is effective on the next
 * request.
 */
import { hash } from 'node:crypto';
import type { Identity } from '../../pipeline/context.js';
import type { ConsumerDirectory } from '../consumers.js';
import type { ApiKeyRecord, KeyRepository } from './repository.js';
import { constantTimeEqual } from '../../shared/credential-memo.js';

export interface KeyCacheEntry {
  readonly record: ApiKeyRecord | undefined;
  /** Base64 SHA-256 of the key (shorter to compare than hex), compared in constant time. */
  readonly hash: string | undefined;
  /** Identity shared by every request made with this key (frozen: nobody may edit it). */
  readonly identity: Identity | undefined;
  readonly loadedAt: number;
  /** The presented key that matched `hash`, once one has. */
  verified?: string | undefined;
  /** The successful check, made once per entry (it holds nothing per request). */
  ok?: (KeyCheck & { ok: true }) | undefined;
}

export type KeyCheck =
  | { ok: true; identity: Identity; record: ApiKeyRecord }
  | { ok: false; reason: 'unknown_key' | 'revoked_key' | 'expired_key' | 'unknown_consumer'; keyId: string };

export class ApiKeyVerifier {
  private readonly cache = new Map<string, KeyCacheEntry>();
  private readonly pending = new Map<string, Promise<KeyCacheEntry>>();
  private readonly sweeper: NodeJS.Timeout;
  /** Bumped by every invalidation, so a load that started before it is not cached afterwards. */
  private generation = 0;

  constructor(
    private readonly repository: KeyRepository,
    private readonly consumers: ConsumerDirectory,
    private readonly options: { ttlMs: number; maxEntries: number },
  ) {
    this.sweeper = setInterval(() => this.sweep(), Math.max(100, Math.floor(options.ttlMs / 4)));
    this.sweeper.unref();
  }

  /** Drops entries older than the TTL, so they are re-read from the store on their next use. */
  private sweep(): void {
    const oldest = performance.now() - this.options.ttlMs;
    for (const [id, entry] of this.cache) if (entry.loadedAt < oldest) this.cache.delete(id);
  }

  close(): void {
    clearInterval(this.sweeper);
  }

  /**
   * Verifies key `id` when its record is cached, or returns undefined (then call `check`). Stale entries are
   * removed by a sweep rather than tested here, so the hot path reads no clock for them.
   */
  checkCached(id: string, key: string): KeyCheck | undefined {
    const entry = this.cache.get(id);
    return entry === undefined ? undefined : this.evaluate(entry, id, key);
  }

  /** Verifies a well-formed key with lookup id `id`. Synchronous when the entry is cached. */
  check(id: string, key: string): KeyCheck | Promise<KeyCheck> {
    const entry = this.cache.get(id);
    if (entry !== undefined) return this.evaluate(entry, id, key);
    return this.load(id).then((e) => this.evaluate(e, id, key));
  }

  private evaluate(entry: KeyCacheEntry, id: string, key: string): KeyCheck {
    const record = entry.record;
    if (record === undefined || entry.hash === undefined) return { ok: false, reason: 'unknown_key', keyId: id };
    const verified = entry.verified;
    if (verified === undefined || !constantTimeEqual(key, verified)) {
      if (!constantTimeEqual(hash('sha256', key, 'base64'), entry.hash)) return { ok: false, reason: 'unknown_key', keyId: id };
      entry.verified = key;
    }
    if (record.revokedAt !== undefined) return { ok: false, reason: 'revoked_key', keyId: id };
    if (record.expiresAt !== undefined && Date.now() >= record.expiresAt) return { ok: false, reason: 'expired_key', keyId: id };
    if (entry.identity === undefined) return { ok: false, reason: 'unknown_consumer', keyId: id };
    return entry.ok ?? (entry.ok = { ok: true, identity: entry.identity, record });
  }

  private load(id: string): Promise<KeyCacheEntry> {
    let p = this.pending.get(id);
    if (p !== undefined) return p;
    const generation = this.generation;
    p = this.repository.find(id).then(
      (record) => {
        const entry = this.entryFor(record);
        this.pending.delete(id);
        if (generation === this.generation) this.remember(id, entry);
        return entry;
      },
      (err: unknown) => {
        this.pending.delete(id);
        throw err;
      },
    );
    this.pending.set(id, p);
    return p;
  }

  private entryFor(record: ApiKeyRecord | undefined): KeyCacheEntry {
    const loadedAt = performance.now();
    if (record === undefined) return { record: undefined, hash: undefined, identity: undefined, loadedAt, verified: undefined, ok: undefined };
    const consumer = this.consumers.get(record.consumer);
    const identity: Identity | undefined = consumer
      ? Object.freeze({
          consumer: consumer.name,
          method: 'api-key',
          scopes: record.scopes.length > 0 ? record.scopes : consumer.scopes,
          groups: consumer.groups,
          ...(consumer.plan !== undefined ? { plan: consumer.plan } : {}),
          credentialId: record.id,
          ...(record.expiresAt !== undefined ? { expiresAt: record.expiresAt } : {}),
        })
      : undefined;
    return { record, hash: Buffer.from(record.hash, 'hex').toString('base64'), identity, loadedAt, verified: undefined, ok: undefined };
  }

  private remember(id: string, entry: KeyCacheEntry): void {
    this.cache.delete(id);
    if (this.cache.size >= this.options.maxEntries) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
    this.cache.set(id, entry);
  }

  invalidate(id: string): void {
    this.generation++;
    this.cache.delete(id);
  }

  invalidateAll(): void {
    this.generation++;
    this.cache.clear();
  }

  get size(): number {
    return this.cache.size;
  }
}
