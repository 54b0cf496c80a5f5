/**
 * API keys in the store: create (the key is returned once and only its hash is kept), list, rotate with an overlap
 * window, revoke. Every change bumps `updated_at` so that other instances notice it, and emits a `key.*` event
 * (never with the key itself). Used by the gateway and by `kycgate keys`.
 */
import type { Queryable, Store } from '../../store/store.js';
import type { EventBus } from '../../pipeline/events.js';
import { generateKey } from './format.js';

export interface ApiKeyRecord {
  id: string;
  consumer: string;
  /** Hex SHA-256 of the full key. */
  hash: string;
  /** Scopes of this key; empty means the consumer's scopes. */
  scopes: readonly string[];
  label: string | undefined;
  createdAt: number;
  /** Milliseconds since the epoch, or undefined for a key that does not expire. */
  expiresAt: number | undefined;
  revokedAt: number | undefined;
  rotatedFrom: string | undefined;
  rotatedTo: string | undefined;
  updatedAt: number;
}

/** What a key is now, as the CLI and the admin API show it. */
export type ApiKeyStatus = 'revoked' | 'expired' | 'rotating' | 'active';

export function apiKeyStatus(r: ApiKeyRecord, now: number): ApiKeyStatus {
  if (r.revokedAt !== undefined) return 'revoked';
  if (r.expiresAt !== undefined && r.expiresAt <= now) return 'expired';
  return r.rotatedTo !== undefined ? 'rotating' : 'active';
}

interface KeyRow {
  id: string;
  consumer: string;
  key_hash: string;
  scopes: string;
  label: string | null;
  created_at: number | string;
  expires_at: number | string | null;
  revoked_at: number | string | null;
  rotated_from: string | null;
  rotated_to: string | null;
  updated_at: number | string;
}

const COLUMNS =
  'id, consumer, key_hash, scopes, label, created_at, expires_at, revoked_at, rotated_from, rotated_to, updated_at';

function optionalNumber(v: number | string | null): number | undefined {
  return v === null ? undefined : Number(v);
}

function fromRow(row: KeyRow): ApiKeyRecord {
  return {
    id: row.id,
    consumer: row.consumer,
    hash: row.key_hash,
    scopes: Object.freeze(JSON.parse(row.scopes) as string[]),
    label: row.label ?? undefined,
    createdAt: Number(row.created_at),
    expiresAt: optionalNumber(row.expires_at),
    revokedAt: optionalNumber(row.revoked_at),
    rotatedFrom: row.rotated_from ?? undefined,
    rotatedTo: row.rotated_to ?? undefined,
    updatedAt: Number(row.updated_at),
  };
}

export class KeyNotFound extends Error {
  constructor(id: string) {
    super(`no API key with id "${id}"`);
    this.name = 'KeyNotFound';
  }
}

export interface CreateKeyOptions {
  consumer: string;
  scopes?: readonly string[];
  /** Lifetime in milliseconds; undefined: no expiry. */
  ttlMs?: number;
  label?: string;
}

export class KeyRepository {
  constructor(
    private readonly store: Store,
    private readonly events?: EventBus,
  ) {}

  async find(id: string, db: Queryable = this.store): Promise<ApiKeyRecord | undefined> {
    const rows = await db.query<KeyRow>(`SELECT ${COLUMNS} FROM api_keys WHERE id = $1`, [id]);
    return rows[0] ? fromRow(rows[0]) : undefined;
  }

  async list(consumer?: string): Promise<ApiKeyRecord[]> {
    const rows =
      consumer === undefined
        ? await this.store.query<KeyRow>(`SELECT ${COLUMNS} FROM api_keys ORDER BY created_at, id`)
        : await this.store.query<KeyRow>(
            `SELECT ${COLUMNS} FROM api_keys WHERE consumer = $1 ORDER BY created_at, id`,
            [consumer],
          );
    return rows.map(fromRow);
  }

  /** Creates a key; the returned `key` is the only time the full key exists outside the client. */
  async create(
    options: CreateKeyOptions,
    db: Queryable = this.store,
    rotatedFrom?: string,
  ): Promise<{ key: string; record: ApiKeyRecord }> {
    const now = Date.now();
    for (let attempt = 0; ; attempt++) {
      const generated = generateKey();
      try {
        await db.query(
          `INSERT INTO api_keys (id, consumer, key_hash, scopes, label, created_at, expires_at, revoked_at, rotated_from, rotated_to, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, $8, NULL, $6)`,
          [
            generated.id,
            options.consumer,
            generated.hash,
            JSON.stringify(options.scopes ?? []),
            options.label ?? null,
            now,
            options.ttlMs === undefined ? null : now + options.ttlMs,
            rotatedFrom ?? null,
          ],
        );
      } catch (err) {
        // A lookup-id collision (62^8 ids) is astronomically rare; try a fresh one a few times.
        if (attempt < 3 && /unique|duplicate|constraint/i.test((err as Error).message)) continue;
        throw err;
      }
      const record = (await this.find(generated.id, db))!;
      if (rotatedFrom === undefined) this.emit('key.created', record);
      return { key: generated.key, record };
    }
  }

  /**
   * Issues a replacement for key `id` (same consumer, scopes and lifetime) and lets the old key keep working for
   * `overlapMs` (never longer than it would have anyway).
   */
  async rotate(id: string, overlapMs: number): Promise<{ key: string; record: ApiKeyRecord; previous: ApiKeyRecord }> {
    const result = await this.store.transaction(async (tx) => {
      const old = await this.find(id, tx);
      if (!old) throw new KeyNotFound(id);
      if (old.revokedAt !== undefined) throw new Error(`API key "${id}" is revoked and cannot be rotated`);
      const now = Date.now();
      const lifetime = old.expiresAt === undefined ? undefined : old.expiresAt - old.createdAt;
      const created = await this.create(
        {
          consumer: old.consumer,
          scopes: old.scopes,
          ...(lifetime !== undefined ? { ttlMs: lifetime } : {}),
          ...(old.label !== undefined ? { label: old.label } : {}),
        },
        tx,
        old.id,
      );
      const oldExpiry = Math.min(old.expiresAt ?? Number.MAX_SAFE_INTEGER, now + overlapMs);
      await tx.query('UPDATE api_keys SET expires_at = $2, rotated_to = $3, updated_at = $4 WHERE id = $1', [
        old.id,
        oldExpiry,
        created.record.id,
        now,
      ]);
      const previous = (await this.find(old.id, tx))!;
      return { ...created, previous };
    });
    this.emit('key.rotated', result.record, {
      previous_key_id: result.previous.id,
      previous_expires_at: result.previous.expiresAt,
    });
    return result;
  }

  /** Revokes a key at once. Revoking twice is harmless; the first revocation time is kept. */
  async revoke(id: string): Promise<ApiKeyRecord> {
    const now = Date.now();
    const rows = await this.store.query<{ id: string }>(
      'UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $2), updated_at = $2 WHERE id = $1 RETURNING id',
      [id, now],
    );
    if (rows.length === 0) throw new KeyNotFound(id);
    const record = (await this.find(id))!;
    this.emit('key.revoked', record);
    return record;
  }

  private emit(type: string, record: ApiKeyRecord, extra: Record<string, unknown> = {}): void {
    this.events?.emit({
      type,
      outcome: type.slice(4),
      data: {
        key_id: record.id,
        consumer: record.consumer,
        scopes: record.scopes,
        expires_at: record.expiresAt,
        ...extra,
      },
    });
  }
}
