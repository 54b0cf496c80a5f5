/**
 * Consumers managed at run time (the admin API): created, changed and deleted in the store, where every instance
 * finds them (docs/AUTH.md, "Consumers"). Consumers declared in the config file belong to the file and are refused
 * here. Deleting a consumer revokes its keys in the same transaction.
 */
import type { Queryable, Store } from '../store/store.js';
import { CONSUMER_COLUMNS, findConsumer, fromRow, type Consumer, type ConsumerRow } from './consumers.js';

export class ConsumerConflict extends Error {
  constructor(
    readonly reason: 'exists' | 'read_only' | 'not_found',
    message: string,
  ) {
    super(message);
  }
}

export interface ConsumerFields {
  scopes?: readonly string[];
  groups?: readonly string[];
  plan?: string | null;
  metadata?: Record<string, unknown>;
  disabled?: boolean;
}

/** Consumers ordered by name, after `after` (pagination). */
export async function pageConsumers(db: Queryable, limit: number, after?: string): Promise<Consumer[]> {
  const rows = await db.query<ConsumerRow>(
    `SELECT ${CONSUMER_COLUMNS} FROM consumers WHERE name > $1 ORDER BY name LIMIT $2`,
    [after ?? '', limit],
  );
  return rows.map(fromRow);
}

export async function createStoreConsumer(store: Store, name: string, f: ConsumerFields): Promise<Consumer> {
  const now = Date.now();
  const rows = await store.query(
    `INSERT INTO consumers (name, scopes, group_names, plan, metadata, source, disabled, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, 'store', $6, $7, $7) ON CONFLICT (name) DO NOTHING RETURNING name`,
    [
      name,
      JSON.stringify(f.scopes ?? []),
      JSON.stringify(f.groups ?? []),
      f.plan ?? null,
      JSON.stringify(f.metadata ?? {}),
      f.disabled === true ? 1 : 0,
      now,
    ],
  );
  if (rows.length === 0) throw new ConsumerConflict('exists', `a consumer named "${name}" exists`);
  return (await findConsumer(store, name))!;
}

export async function updateStoreConsumer(store: Store, name: string, f: ConsumerFields): Promise<Consumer> {
  return store.transaction(async (tx) => {
    const old = await findConsumer(tx, name);
    if (!old) throw new ConsumerConflict('not_found', `no consumer named "${name}"`);
    if (old.source === 'config')
      throw new ConsumerConflict('read_only', `consumer "${name}" is declared in the config file; change it there`);
    await tx.query(
      'UPDATE consumers SET scopes = $2, group_names = $3, plan = $4, metadata = $5, disabled = $6, updated_at = $7 WHERE name = $1',
      [
        name,
        JSON.stringify(f.scopes ?? old.scopes),
        JSON.stringify(f.groups ?? old.groups),
        f.plan === undefined ? (old.plan ?? null) : f.plan,
        JSON.stringify(f.metadata ?? old.metadata),
        (f.disabled ?? old.disabled) ? 1 : 0,
        Math.max(Date.now(), old.updatedAt + 1),
      ],
    );
    return (await findConsumer(tx, name))!;
  });
}

/** Deletes a store consumer and revokes its keys; returns the ids of the keys it revoked. */
export async function deleteStoreConsumer(store: Store, name: string): Promise<string[]> {
  return store.transaction(async (tx) => {
    const old = await findConsumer(tx, name);
    if (!old) throw new ConsumerConflict('not_found', `no consumer named "${name}"`);
    if (old.source === 'config')
      throw new ConsumerConflict('read_only', `consumer "${name}" is declared in the config file; remove it there`);
    const now = Date.now();
    const revoked = await tx.query<{ id: string }>(
      'UPDATE api_keys SET revoked_at = $2, updated_at = $2 WHERE consumer = $1 AND revoked_at IS NULL RETURNING id',
      [name, now],
    );
    await tx.query('DELETE FROM consumers WHERE name = $1', [name]);
    return revoked.map((r) => r.id);
  });
}
