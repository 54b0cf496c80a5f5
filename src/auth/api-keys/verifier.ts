/**
 * Checks presented API keys against the store without touching it on the request path: key records are cached in
 * memory by lookup id (positive and negative entries). A key is hashed (SHA-256) the first time it is presented; the
 * entry then remembers the exact string that matched, so the next presentations cost a map lookup and a
 * constant-time comparison with it (only the holder of the key can present that string). An entry
 * is re-read from the store after `ttlMs`, and dropped at once when an invalidation arrives (Redis pub/sub from
 * another instance or the CLI, or this instance's own change poll), so a revocation is effective on the next
 * request. A record read from the store that names a consumer this instance does not know yet (made elsewhere since
 * the last poll) has the consumers re-read before its entry is built (`refreshConsumers`).
 *
 * An entry due for a re-read is kept for the stale period (store.stale_period_seconds): while the store cannot be
 * reached it is served as it was (a valid key keeps passing, a revoked one stays refused) and the check says so
 * (`stale`), without waiting for the store once it is known to be down. Whatever the store answers replaces it.
 */
import { hash } from 'node:crypto';
import type { Identity } from '../../pipeline/context.js';
import type { ConsumerDirectory } from '../consumers.js';
import type { ApiKeyRecord, KeyRepository } from './repository.js';
import { constantTimeEqual } from '../../shared/credential-memo.js';
import type { StalePolicy } from '../../store/outage.js';

export interface KeyCacheEntry {
  readonly record: ApiKeyRecord | undefined;
  /** Base64 SHA-256 of the key (shorter to compare than hex), compared in constant time. */
  readonly hash: string | undefined;
  /** Identity shared by every request made with this key (frozen: nobody may edit it). */
  readonly identity: Identity | undefined;
  readonly loadedAt: number;
  /** Set by the sweep once the entry is older than the TTL: it must be re-read before it is used again. */
  due: boolean;
  /** The presented key that matched `hash`, once one has. */
  verified?: string | undefined;
  /** The key's consumer exists but is disabled (its keys are refused). */
  readonly disabled?: boolean;
  /** The successful check, made once per entry (it holds nothing per request). */
  ok?: (KeyCheck & { ok: true }) | undefined;
}

/** A check's outcome; `stale` when it was made on an entry served past its refresh time (store unreachable). */
export type KeyCheck =
  | { ok: true; identity: Identity; record: ApiKeyRecord; stale?: true }
  | {
      ok: false;
      reason: 'unknown_key' | 'revoked_key' | 'expired_key' | 'unknown_consumer' | 'consumer_disabled';
      keyId: string;
      stale?: true;
    };

export interface KeyVerifierOptions {
  ttlMs: number;
  maxEntries: number;
  /** When entries past their TTL may be served during a store outage; without it they never are. */
  stale?: StalePolicy;
  /** Monotonic milliseconds (tests pass their own clock). */
  clock?: () => number;
  /**
   * Re-reads the consumers (they are polled, keys are read on demand): called when a key read from the store names
   * a consumer this instance does not know yet, so a consumer and key made on another instance pass at once.
   */
  refreshConsumers?: () => Promise<void>;
}

export class ApiKeyVerifier {
  private readonly cache = new Map<string, KeyCacheEntry>();
  private readonly pending = new Map<string, Promise<KeyCacheEntry>>();
  private sweeper: NodeJS.Timeout;
  /** Bumped by every invalidation, so a load that started before it is not cached afterwards. */
  private generation = 0;

  private ttlMs: number;
  private readonly clock: () => number;

  constructor(
    private readonly repository: KeyRepository,
    private readonly consumers: ConsumerDirectory,
    private readonly options: KeyVerifierOptions,
  ) {
    this.ttlMs = options.ttlMs;
    this.clock = options.clock ?? (() => performance.now());
    this.sweeper = this.startSweeper();
  }

  private startSweeper(): NodeJS.Timeout {
    const timer = setInterval(() => this.sweep(), Math.max(100, Math.floor(this.ttlMs / 4)));
    timer.unref();
    return timer;
  }

  /** Applies a new TTL (config reload); entries keep their load time. */
  configure(ttlMs: number): void {
    if (ttlMs === this.ttlMs) return;
    this.ttlMs = ttlMs;
    clearInterval(this.sweeper);
    this.sweeper = this.startSweeper();
  }

  /**
   * Marks entries older than the TTL as due, so they are re-read from the store on their next use, and drops them
   * once they are past the stale period too (or at once without one).
   */
  sweep(): void {
    const now = this.clock();
    const stale = this.options.stale;
    for (const [id, entry] of this.cache) {
      const dueAt = entry.loadedAt + this.ttlMs;
      if (now < dueAt) continue;
      if (stale?.keeps(dueAt, now)) entry.due = true;
      else this.cache.delete(id);
    }
  }

  close(): void {
    clearInterval(this.sweeper);
  }

  /**
   * Verifies key `id` when its record is cached and not due, or returns undefined (then call `check`). Entries past
   * the TTL are marked by a sweep rather than tested here, so the hot path reads no clock for them.
   */
  checkCached(id: string, key: string): KeyCheck | undefined {
    const entry = this.cache.get(id);
    return entry === undefined || entry.due ? undefined : this.evaluate(entry, id, key);
  }

  /**
   * Verifies a well-formed key with lookup id `id`. Synchronous when the entry is cached, or due while the store is
   * known to be unreachable (then served stale at once); otherwise the record is read, and a due entry is served
   * stale only when that read gets no answer.
   */
  check(id: string, key: string): KeyCheck | Promise<KeyCheck> {
    const entry = this.cache.get(id);
    if (entry !== undefined) {
      if (!entry.due) return this.evaluate(entry, id, key);
      if (this.options.stale?.servesStale(entry.loadedAt + this.ttlMs, this.clock()) === true)
        return this.evaluateStale(entry, id, key);
    }
    return this.load(id).then(
      (e) => this.evaluate(e, id, key),
      (err: unknown) => {
        // Still cached means no invalidation came in meanwhile: what was known good may stand in for the answer.
        const kept = this.cache.get(id);
        if (kept?.due && this.options.stale?.coversFailure(err, kept.loadedAt + this.ttlMs, this.clock()) === true)
          return this.evaluateStale(kept, id, key);
        throw err;
      },
    );
  }

  private evaluateStale(entry: KeyCacheEntry, id: string, key: string): KeyCheck {
    this.options.stale?.servedStale('api_key');
    return { ...this.evaluate(entry, id, key), stale: true };
  }

  private evaluate(entry: KeyCacheEntry, id: string, key: string): KeyCheck {
    const record = entry.record;
    if (record === undefined || entry.hash === undefined) return { ok: false, reason: 'unknown_key', keyId: id };
    const verified = entry.verified;
    if (verified === undefined || !constantTimeEqual(key, verified)) {
      if (!constantTimeEqual(hash('sha256', key, 'base64'), entry.hash))
        return { ok: false, reason: 'unknown_key', keyId: id };
      entry.verified = key;
    }
    if (record.revokedAt !== undefined) return { ok: false, reason: 'revoked_key', keyId: id };
    if (record.expiresAt !== undefined && Date.now() >= record.expiresAt)
      return { ok: false, reason: 'expired_key', keyId: id };
    if (entry.identity === undefined)
      return { ok: false, reason: entry.disabled === true ? 'consumer_disabled' : 'unknown_consumer', keyId: id };
    return entry.ok ?? (entry.ok = { ok: true, identity: entry.identity, record });
  }

  private load(id: string): Promise<KeyCacheEntry> {
    let p = this.pending.get(id);
    if (p !== undefined) return p;
    const generation = this.generation;
    const refresh = this.options.refreshConsumers;
    p = this.repository.find(id).then(
      (record) => {
        const done = () => this.loaded(id, generation, record);
        // A failed refresh leaves the directory as it was: the key is then refused as unknown_consumer.
        return record !== undefined && refresh !== undefined && this.consumers.get(record.consumer) === undefined
          ? refresh().then(done, done)
          : done();
      },
      (err: unknown) => {
        this.pending.delete(id);
        throw err;
      },
    );
    this.pending.set(id, p);
    return p;
  }

  private loaded(id: string, generation: number, record: ApiKeyRecord | undefined): KeyCacheEntry {
    const entry = this.entryFor(record);
    this.pending.delete(id);
    // An invalidation since the read started (a refresh of the consumers too) means the read may be out of date.
    if (generation === this.generation) this.remember(id, entry);
    return entry;
  }

  private entryFor(record: ApiKeyRecord | undefined): KeyCacheEntry {
    const loadedAt = this.clock();
    if (record === undefined)
      return {
        record: undefined,
        hash: undefined,
        identity: undefined,
        loadedAt,
        due: false,
        verified: undefined,
        ok: undefined,
      };
    const consumer = this.consumers.get(record.consumer);
    const identity: Identity | undefined =
      consumer && !consumer.disabled
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
    return {
      record,
      hash: Buffer.from(record.hash, 'hex').toString('base64'),
      identity,
      disabled: consumer?.disabled === true,
      loadedAt,
      due: false,
      verified: undefined,
      ok: undefined,
    };
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
