/**
 * Checks presented API keys against the store without touching it on the request path: key records are cached in
 * memory by lookup id (positive and negative entries), so a known key costs a map lookup and one SHA-256. An entry
 * is re-read from the store after `ttlMs`, and dropped at once when an invalidation arrives (Redis pub/sub from
 * another instance or the CLI, or this instance's own change poll), so a revocation is effective on the next
 * request.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Identity } from '../../pipeline/context.js';
import type { ConsumerDirectory } from '../consumers.js';
import type { ApiKeyRecord, KeyRepository } from './repository.js';

export interface KeyCacheEntry {
  readonly record: ApiKeyRecord | undefined;
  /** Decoded hash, for a constant-time comparison. */
  readonly hash: Buffer | undefined;
  /** Identity shared by every request made with this key (frozen: nobody may edit it). */
  readonly identity: Identity | undefined;
  readonly loadedAt: number;
}

export type KeyCheck =
  | { ok: true; identity: Identity; record: ApiKeyRecord }
  | { ok: false; reason: 'unknown_key' | 'revoked_key' | 'expired_key' | 'unknown_consumer'; keyId: string };

export class ApiKeyVerifier {
  private readonly cache = new Map<string, KeyCacheEntry>();
  private readonly pending = new Map<string, Promise<KeyCacheEntry>>();
  /** Bumped by every invalidation, so a load that started before it is not cached afterwards. */
  private generation = 0;

  constructor(
    private readonly repository: KeyRepository,
    private readonly consumers: ConsumerDirectory,
    private readonly options: { ttlMs: number; maxEntries: number },
  ) {}

  /** Verifies a well-formed key with lookup id `id`. Synchronous when the entry is cached and fresh. */
  check(id: string, key: string): KeyCheck | Promise<KeyCheck> {
    const entry = this.cache.get(id);
    if (entry !== undefined && performance.now() - entry.loadedAt < this.options.ttlMs) return this.evaluate(entry, id, key);
    return this.load(id).then((e) => this.evaluate(e, id, key));
  }

  private evaluate(entry: KeyCacheEntry, id: string, key: string): KeyCheck {
    const record = entry.record;
    if (record === undefined || entry.hash === undefined) return { ok: false, reason: 'unknown_key', keyId: id };
    const presented = createHash('sha256').update(key).digest();
    if (!timingSafeEqual(presented, entry.hash)) return { ok: false, reason: 'unknown_key', keyId: id };
    if (record.revokedAt !== undefined) return { ok: false, reason: 'revoked_key', keyId: id };
    if (record.expiresAt !== undefined && Date.now() >= record.expiresAt) return { ok: false, reason: 'expired_key', keyId: id };
    if (entry.identity === undefined) return { ok: false, reason: 'unknown_consumer', keyId: id };
    return { ok: true, identity: entry.identity, record };
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
    if (record === undefined) return { record: undefined, hash: undefined, identity: undefined, loadedAt };
    const consumer = this.consumers.get(record.consumer);
    const identity: Identity | undefined = consumer
      ? Object.freeze({
          consumer: consumer.name,
          method: 'api-key',
          scopes: record.scopes.length > 0 ? record.scopes : consumer.scopes,
          groups: consumer.groups,
          ...(consumer.plan !== undefined ? { plan: consumer.plan } : {}),
          credentialId: record.id,
        })
      : undefined;
    return { record, hash: Buffer.from(record.hash, 'hex'), identity, loadedAt };
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
