/**
 * Consumers: the client applications and services that call through the gateway. A consumer carries the scopes,
 * groups and plan that authorization and rate limits key on. Consumers are declared in config (`consumers:`,
 * synced to the store at start and on reload) or created in the store directly; every instance keeps all of them
 * in memory (there are few), so resolving a consumer on the request path is a map lookup.
 */
import type { Queryable, Store } from '../store/store.js';

export interface Consumer {
  name: string;
  scopes: readonly string[];
  groups: readonly string[];
  plan: string | undefined;
  metadata: Readonly<Record<string, unknown>>;
  /** `config` when declared in the config file (the file then owns it), `store` otherwise. */
  source: 'config' | 'store';
  /** A disabled consumer's API keys are refused (`consumer_disabled`); set through the admin API. */
  disabled: boolean;
  createdAt: number;
  updatedAt: number;
}

export interface ConsumerConfig {
  scopes: string[];
  groups: string[];
  plan?: string;
  metadata: Record<string, unknown>;
}

export interface ConsumerRow {
  name: string;
  scopes: string;
  group_names: string;
  plan: string | null;
  metadata: string;
  source: string;
  disabled: number | string | null;
  created_at: number | string;
  updated_at: number | string;
}

export const CONSUMER_COLUMNS = 'name, scopes, group_names, plan, metadata, source, disabled, created_at, updated_at';

export function fromRow(row: ConsumerRow): Consumer {
  return {
    name: row.name,
    scopes: Object.freeze(JSON.parse(row.scopes) as string[]),
    groups: Object.freeze(JSON.parse(row.group_names) as string[]),
    plan: row.plan ?? undefined,
    metadata: Object.freeze(JSON.parse(row.metadata) as Record<string, unknown>),
    source: row.source === 'config' ? 'config' : 'store',
    disabled: Number(row.disabled ?? 0) === 1,
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
}

export async function listConsumers(db: Queryable): Promise<Consumer[]> {
  const rows = await db.query<ConsumerRow>(`SELECT ${CONSUMER_COLUMNS} FROM consumers ORDER BY name`);
  return rows.map(fromRow);
}

export async function findConsumer(db: Queryable, name: string): Promise<Consumer | undefined> {
  const rows = await db.query<ConsumerRow>(`SELECT ${CONSUMER_COLUMNS} FROM consumers WHERE name = $1`, [name]);
  return rows[0] ? fromRow(rows[0]) : undefined;
}

export async function upsertConsumer(
  db: Queryable,
  name: string,
  c: ConsumerConfig,
  source: 'config' | 'store',
  now = Date.now(),
): Promise<void> {
  await db.query(
    `INSERT INTO consumers (name, scopes, group_names, plan, metadata, source, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
     ON CONFLICT (name) DO UPDATE SET scopes = $2, group_names = $3, plan = $4, metadata = $5, source = $6, disabled = 0, updated_at = $7`,
    [name, JSON.stringify(c.scopes), JSON.stringify(c.groups), c.plan ?? null, JSON.stringify(c.metadata), source, now],
  );
}

/**
 * Makes the store match the config's `consumers:` section: declared consumers are inserted or updated (only when
 * something changed, so `updated_at` stays meaningful), and consumers the config declared before but no longer
 * does are removed. Consumers created outside the config are left alone. Returns true when anything changed.
 */
export async function syncConfigConsumers(store: Store, declared: Record<string, ConsumerConfig>): Promise<boolean> {
  return store.transaction(async (tx) => {
    const existing = new Map((await listConsumers(tx)).map((c) => [c.name, c]));
    let changed = false;
    const now = Date.now();
    for (const [name, c] of Object.entries(declared)) {
      const old = existing.get(name);
      if (
        old &&
        old.source === 'config' &&
        !old.disabled &&
        JSON.stringify(old.scopes) === JSON.stringify(c.scopes) &&
        JSON.stringify(old.groups) === JSON.stringify(c.groups) &&
        old.plan === c.plan &&
        JSON.stringify(old.metadata) === JSON.stringify(c.metadata)
      ) {
        continue;
      }
      await upsertConsumer(tx, name, c, 'config', now);
      changed = true;
    }
    for (const old of existing.values()) {
      if (old.source === 'config' && !(old.name in declared)) {
        await tx.query('DELETE FROM consumers WHERE name = $1', [old.name]);
        changed = true;
      }
    }
    return changed;
  });
}

/** In-memory view of every consumer, refreshed when the store changes. */
export class ConsumerDirectory {
  private byName = new Map<string, Consumer>();

  replace(consumers: readonly Consumer[]): void {
    this.byName = new Map(consumers.map((c) => [c.name, c]));
  }

  get(name: string): Consumer | undefined {
    return this.byName.get(name);
  }

  get size(): number {
    return this.byName.size;
  }
}
