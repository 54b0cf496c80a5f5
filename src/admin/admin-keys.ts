/**
 * Admin keys: credentials for the admin API, separate from client API keys (their own prefix, table and roles).
 *
 *   kga_<lookup id: 8 base62>_<secret: 32 base62><checksum: 6 base62>
 *
 * The store keeps the SHA-256 of the key and its lookup id; a presented key is looked up by id and its hash compared in
 * constant time. The admin API is not on the request path: every call reads the key's row, so a revocation holds on
 * every instance at the next call. Keys from the config file (`admin.api.keys`) are compared by hash the same way.
 */
import { hash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import type { AdminRole } from '../config/admin-api-schema.js';
import type { Migration, Store } from '../store/store.js';
import { randomBase62 } from '../auth/api-keys/format.js';
import { constantTimeEqual } from '../shared/credential-memo.js';

export const ADMIN_KEY_PREFIX = 'kga_';
const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const ADMIN_KEY_SHAPE = /^kga_([0-9A-Za-z]{8})_([0-9A-Za-z]{32})([0-9A-Za-z]{6})$/;

export const ADMIN_KEY_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'admin keys',
    sql: `CREATE TABLE admin_keys (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  role TEXT NOT NULL,
  key_hash TEXT NOT NULL,
  created_by TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT,
  revoked_at BIGINT
)`,
  },
];

export interface AdminKeyRecord {
  id: string;
  name: string;
  role: AdminRole;
  createdBy: string;
  createdAt: number;
  expiresAt: number | undefined;
  revokedAt: number | undefined;
}

interface Row {
  id: string;
  name: string;
  role: string;
  key_hash: string;
  created_by: string;
  created_at: number | string;
  expires_at: number | string | null;
  revoked_at: number | string | null;
}

const opt = (v: number | string | null): number | undefined => (v === null ? undefined : Number(v));

function fromRow(r: Row): AdminKeyRecord {
  return {
    id: r.id,
    name: r.name,
    role: r.role as AdminRole,
    createdBy: r.created_by,
    createdAt: Number(r.created_at),
    expiresAt: opt(r.expires_at),
    revokedAt: opt(r.revoked_at),
  };
}

function checksum(body: string): string {
  let n = crc32(body);
  let out = '';
  while (n > 0) {
    out = ALPHABET[n % 62] + out;
    n = Math.floor(n / 62);
  }
  return out.padStart(6, '0');
}

export function generateAdminKey(): { key: string; id: string; hash: string } {
  const id = randomBase62(8);
  const body = `${ADMIN_KEY_PREFIX}${id}_${randomBase62(32)}`;
  const key = body + checksum(body);
  return { key, id, hash: hash('sha256', key, 'hex') };
}

/** The lookup id of a well-formed admin key with a valid checksum, else undefined. */
export function adminKeyId(key: string): string | undefined {
  const m = ADMIN_KEY_SHAPE.exec(key);
  if (!m) return undefined;
  return checksum(key.slice(0, key.length - 6)) === m[3] ? m[1] : undefined;
}

export function adminKeyStatus(r: AdminKeyRecord, now = Date.now()): 'active' | 'revoked' | 'expired' {
  if (r.revokedAt !== undefined) return 'revoked';
  if (r.expiresAt !== undefined && r.expiresAt <= now) return 'expired';
  return 'active';
}

const COLUMNS = 'id, name, role, key_hash, created_by, created_at, expires_at, revoked_at';

export class AdminKeys {
  constructor(private readonly store: Store) {}

  migrate(): Promise<void> {
    return this.store.migrate('admin-keys', ADMIN_KEY_MIGRATIONS);
  }

  async create(o: { name: string; role: AdminRole; createdBy: string; ttlMs?: number }): Promise<{
    key: string;
    record: AdminKeyRecord;
  }> {
    const now = Date.now();
    for (let attempt = 0; ; attempt++) {
      const g = generateAdminKey();
      try {
        await this.store.query(`INSERT INTO admin_keys (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)`, [
          g.id,
          o.name,
          o.role,
          g.hash,
          o.createdBy,
          now,
          o.ttlMs === undefined ? null : now + o.ttlMs,
        ]);
      } catch (err) {
        if (attempt < 3 && /unique|duplicate|constraint/i.test((err as Error).message)) continue;
        throw err;
      }
      return { key: g.key, record: (await this.find(g.id))! };
    }
  }

  async find(id: string): Promise<AdminKeyRecord | undefined> {
    const rows = await this.store.query<Row>(`SELECT ${COLUMNS} FROM admin_keys WHERE id = $1`, [id]);
    return rows[0] ? fromRow(rows[0]) : undefined;
  }

  async list(limit: number, after?: string): Promise<AdminKeyRecord[]> {
    const rows = await this.store.query<Row>(`SELECT ${COLUMNS} FROM admin_keys WHERE id > $1 ORDER BY id LIMIT $2`, [
      after ?? '',
      limit,
    ]);
    return rows.map(fromRow);
  }

  async revoke(id: string): Promise<AdminKeyRecord | undefined> {
    const rows = await this.store.query(
      'UPDATE admin_keys SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1 RETURNING id',
      [id, Date.now()],
    );
    return rows.length === 0 ? undefined : this.find(id);
  }

  /** The active record of a presented key, or undefined (unknown, wrong secret, revoked, expired). */
  async verify(key: string): Promise<AdminKeyRecord | undefined> {
    const id = adminKeyId(key);
    if (id === undefined) return undefined;
    const rows = await this.store.query<Row>(`SELECT ${COLUMNS} FROM admin_keys WHERE id = $1`, [id]);
    const row = rows[0];
    if (!row || !constantTimeEqual(hash('sha256', key, 'hex'), row.key_hash)) return undefined;
    const record = fromRow(row);
    return adminKeyStatus(record) === 'active' ? record : undefined;
  }
}
