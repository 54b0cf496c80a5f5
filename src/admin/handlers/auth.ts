/** Handlers: the caller, consumers, client API keys and admin keys. */
import type { AuthService } from '../../auth/subsystem.js';
import { findConsumer, type Consumer } from '../../auth/consumers.js';
import {
  ConsumerConflict,
  createStoreConsumer,
  deleteStoreConsumer,
  pageConsumers,
  updateStoreConsumer,
  type ConsumerFields,
} from '../../auth/consumer-store.js';
import { KeyNotFound, apiKeyStatus, type ApiKeyRecord } from '../../auth/api-keys/repository.js';
import { parseDuration } from '../../auth/api-keys/format.js';
import { adminKeyStatus, type AdminKeyRecord } from '../admin-keys.js';
import { decodeCursor, iso, isString, notFound, paged, refuse, type Call, type Handler } from '../call.js';
import { ADMIN_CONFLICT, ADMIN_READ_ONLY } from '../problems.js';
import type { AdminRole } from '../../config/admin-api-schema.js';

const auth = (call: Call): AuthService => call.api.services.get<AuthService>('auth');

export function consumerView(c: Consumer): Record<string, unknown> {
  return {
    name: c.name,
    scopes: c.scopes,
    groups: c.groups,
    plan: c.plan ?? null,
    metadata: c.metadata,
    disabled: c.disabled,
    source: c.source,
    read_only: c.source === 'config',
    created_at: iso(c.createdAt),
    updated_at: iso(c.updatedAt),
  };
}

export function keyView(r: ApiKeyRecord, now = Date.now()): Record<string, unknown> {
  const status = apiKeyStatus(r, now);
  return {
    id: r.id,
    consumer: r.consumer,
    status,
    scopes: r.scopes,
    label: r.label ?? null,
    created_at: iso(r.createdAt),
    expires_at: iso(r.expiresAt),
    revoked_at: iso(r.revokedAt),
    rotated_from: r.rotatedFrom ?? null,
    rotated_to: r.rotatedTo ?? null,
  };
}

function adminKeyView(r: AdminKeyRecord): Record<string, unknown> {
  return {
    id: r.id,
    name: r.name,
    role: r.role,
    status: adminKeyStatus(r),
    created_by: r.createdBy,
    created_at: iso(r.createdAt),
    expires_at: iso(r.expiresAt),
    revoked_at: iso(r.revokedAt),
  };
}

function consumerConflict(err: unknown): never {
  if (err instanceof ConsumerConflict) {
    if (err.reason === 'not_found') notFound(`Consumer "${err.message.split('"')[1]}"`);
    refuse(err.reason === 'read_only' ? ADMIN_READ_ONLY : ADMIN_CONFLICT, err.message);
  }
  throw err;
}

async function keyOr404(call: Call, id: string): Promise<ApiKeyRecord> {
  return (await auth(call).repository.find(id)) ?? notFound(`API key ${id}`);
}

const isKeyCursor = (v: unknown): v is [number, string] =>
  Array.isArray(v) && v.length === 2 && typeof v[0] === 'number' && typeof v[1] === 'string';

export const AUTH_HANDLERS: Record<string, Handler> = {
  async whoami(call) {
    return { body: call.principal };
  },

  async listConsumers(call) {
    const limit = call.query.limit as number;
    const after = decodeCursor(call.query.cursor, isString);
    const rows = await pageConsumers(auth(call).store, limit + 1, after);
    const page = paged(rows, limit, (c) => c.name);
    return { body: { items: page.items.map(consumerView), next_cursor: page.next_cursor } };
  },

  async getConsumer(call) {
    const c = (await findConsumer(auth(call).store, call.params.name!)) ?? notFound(`Consumer "${call.params.name}"`);
    return { body: consumerView(c) };
  },

  async createConsumer(call) {
    const b = call.body as ConsumerFields & { name: string };
    const a = auth(call);
    const created = await createStoreConsumer(a.store, b.name, b).catch(consumerConflict);
    await a.consumersChanged();
    call.audit({ consumer: created.name, scopes: created.scopes, plan: created.plan, disabled: created.disabled });
    return { body: consumerView(created) };
  },

  async updateConsumer(call) {
    const a = auth(call);
    const b = call.body as ConsumerFields;
    const updated = await updateStoreConsumer(a.store, call.params.name!, b).catch(consumerConflict);
    await a.consumersChanged();
    call.audit({ consumer: updated.name, changed: Object.keys(b), disabled: updated.disabled });
    return { body: consumerView(updated) };
  },

  async deleteConsumer(call) {
    const a = auth(call);
    const name = call.params.name!;
    const revoked = await deleteStoreConsumer(a.store, name).catch(consumerConflict);
    await a.consumersChanged(revoked);
    call.audit({ consumer: name, revoked_keys: revoked });
    return { body: { name, revoked_keys: revoked } };
  },

  async listKeys(call) {
    const limit = call.query.limit as number;
    const after = decodeCursor(call.query.cursor, isKeyCursor);
    const params: unknown[] = [after?.[0] ?? -1, after?.[1] ?? '', limit + 1];
    let where = '(created_at > $1 OR (created_at = $1 AND id > $2))';
    if (call.query.consumer !== undefined) {
      params.push(call.query.consumer);
      where += ' AND consumer = $4';
    }
    const a = auth(call);
    const ids = await a.store.query<{ id: string }>(
      `SELECT id FROM api_keys WHERE ${where} ORDER BY created_at, id LIMIT $3`,
      params,
    );
    const records: ApiKeyRecord[] = [];
    for (const { id } of ids) {
      const r = await a.repository.find(id);
      if (r) records.push(r);
    }
    const page = paged(records, limit, (r) => [r.createdAt, r.id]);
    return { body: { items: page.items.map((r) => keyView(r)), next_cursor: page.next_cursor } };
  },

  async getKey(call) {
    return { body: keyView(await keyOr404(call, call.params.id!)) };
  },

  async createKey(call) {
    const b = call.body as { consumer: string; scopes?: string[]; expires_in?: string; label?: string };
    const a = auth(call);
    if (!(await findConsumer(a.store, b.consumer))) notFound(`Consumer "${b.consumer}"`);
    const ttlMs = b.expires_in === undefined ? undefined : parseDuration(b.expires_in);
    const { key, record } = await a.createKey({
      consumer: b.consumer,
      scopes: b.scopes ?? [],
      ...(ttlMs !== undefined ? { ttlMs } : {}),
      ...(b.label !== undefined ? { label: b.label } : {}),
    });
    call.audit({
      key_id: record.id,
      consumer: record.consumer,
      scopes: record.scopes,
      expires_at: iso(record.expiresAt),
    });
    return { body: { key, api_key: keyView(record) } };
  },

  async rotateKey(call) {
    const overlap = ((call.body as { overlap?: string } | undefined)?.overlap ?? '24h') as string;
    const id = call.params.id!;
    await keyOr404(call, id);
    const rotated = await auth(call)
      .rotateKey(id, parseDuration(overlap))
      .catch((err: unknown) => {
        if (err instanceof KeyNotFound) notFound(`API key ${id}`);
        return refuse(ADMIN_CONFLICT, (err as Error).message);
      });
    call.audit({
      key_id: rotated.record.id,
      previous_key_id: id,
      consumer: rotated.record.consumer,
      previous_expires_at: iso(rotated.previous.expiresAt),
    });
    return { body: { key: rotated.key, api_key: keyView(rotated.record), previous: keyView(rotated.previous) } };
  },

  async revokeKey(call) {
    const id = call.params.id!;
    await keyOr404(call, id);
    const record = await auth(call).revokeKey(id);
    call.audit({ key_id: id, consumer: record.consumer });
    return { body: keyView(record) };
  },

  async listAdminKeys(call) {
    const limit = call.query.limit as number;
    const after = decodeCursor(call.query.cursor, isString);
    const page = paged(await call.api.keys.list(limit + 1, after), limit, (r) => r.id);
    return { body: { items: page.items.map(adminKeyView), next_cursor: page.next_cursor } };
  },

  async createAdminKey(call) {
    const b = call.body as { name: string; role: AdminRole; expires_in?: string };
    const ttlMs = b.expires_in === undefined ? undefined : parseDuration(b.expires_in);
    const { key, record } = await call.api.keys.create({
      name: b.name,
      role: b.role,
      createdBy: call.principal.actor,
      ...(ttlMs !== undefined ? { ttlMs } : {}),
    });
    call.audit({ admin_key_id: record.id, name: record.name, role: record.role });
    return { body: { key, admin_key: adminKeyView(record) } };
  },

  async revokeAdminKey(call) {
    const record = (await call.api.keys.revoke(call.params.id!)) ?? notFound(`Admin key ${call.params.id}`);
    call.audit({ admin_key_id: record.id, name: record.name, role: record.role });
    return { body: adminKeyView(record) };
  },
};
