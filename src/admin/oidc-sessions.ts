/**
 * What the dashboard's OIDC sign-in keeps in the store (oidc.ts), so that every instance sharing the store sees the
 * same thing and a restart forgets nothing:
 * - `admin_sessions`: one row per dashboard session, keyed by the SHA-256 of the random id its cookie carries (the id
 *   itself is never stored), with the subject, its role, and when it was opened and expires. The admin API is not
 *   on the request path: every call that presents the cookie reads the row, so a sign-out holds on every instance at
 *   the next call. A row past its expiry is refused whether or not it has been deleted yet;
 * - `admin_oidc_flows`: one row per sign-in under way (state, nonce, PKCE verifier, expiry), keyed by the SHA-256 of
 *   the random id the flow cookie carries. The nonce and the verifier are sealed (AES-256-GCM) with a key derived
 *   from that id, which only the browser holds: whoever reads the store (a replica, a backup) cannot redeem an
 *   intercepted authorization code with the verifier PKCE keeps secret. The callback deletes the row as it reads it,
 *   so a flow serves once: a replayed callback finds nothing.
 * Expired rows of both tables are deleted whenever a row is added. A store that cannot be reached fails these with
 * StoreUnavailable (the API answers 503 with Retry-After).
 */
import { createCipheriv, createDecipheriv, hash, hkdfSync, randomBytes } from 'node:crypto';
import type { AdminRole } from '../config/admin-api-schema.js';
import type { Migration, Store } from '../store/store.js';
import { constantTimeEqual } from '../shared/credential-memo.js';

export const OIDC_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'dashboard sessions and sign-in flows',
    sql: `CREATE TABLE admin_sessions (
  id_hash TEXT PRIMARY KEY,
  subject TEXT NOT NULL,
  role TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL
);
CREATE INDEX admin_sessions_expiry ON admin_sessions (expires_at);
CREATE TABLE admin_oidc_flows (
  id_hash TEXT PRIMARY KEY,
  state TEXT NOT NULL,
  nonce TEXT NOT NULL,
  verifier TEXT NOT NULL,
  expires_at BIGINT NOT NULL
);
CREATE INDEX admin_oidc_flows_expiry ON admin_oidc_flows (expires_at)`,
  },
];

export interface Flow {
  state: string;
  nonce: string;
  verifier: string;
}

export interface Session {
  sub: string;
  role: AdminRole;
  /** Epoch milliseconds. */
  expiresAt: number;
}

/** Length of the ids cookies carry: 32 random bytes, base64url. */
const ID_LENGTH = 43;
const newId = () => randomBytes(32).toString('base64url');
const idHash = (id: string) => hash('sha256', id, 'hex');
/** The key that seals a flow's secrets: from the id its cookie carries, bound to this use. */
const flowKey = (id: string) => Buffer.from(hkdfSync('sha256', id, '', 'kycgate admin oidc flow v1', 32));
const SEALED = 'v1.';

/** `v1.` and base64url of IV (12 bytes), ciphertext and tag (16 bytes); the row's key is authenticated with it. */
function seal(key: Buffer, rowKey: string, value: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(rowKey));
  const body = Buffer.concat([cipher.update(value, 'utf8'), cipher.final()]);
  return SEALED + Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64url');
}

/** The sealed value, or undefined when it does not open with this key (another flow's, altered, not sealed). */
function unseal(key: Buffer, rowKey: string, sealed: string): string | undefined {
  if (!sealed.startsWith(SEALED)) return undefined;
  const raw = Buffer.from(sealed.slice(SEALED.length), 'base64url');
  if (raw.length < 12 + 16) return undefined;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
    decipher.setAAD(Buffer.from(rowKey));
    decipher.setAuthTag(raw.subarray(raw.length - 16));
    return Buffer.concat([decipher.update(raw.subarray(12, raw.length - 16)), decipher.final()]).toString('utf8');
  } catch {
    return undefined;
  }
}

/** An id of the right shape, else undefined (nothing else is looked up). */
const wellFormed = (id: string | undefined) =>
  id !== undefined && id.length === ID_LENGTH && /^[\w-]+$/.test(id) ? id : undefined;

export class OidcSessions {
  constructor(private readonly store: Store) {}

  migrate(): Promise<void> {
    return this.store.migrate('admin-oidc', OIDC_MIGRATIONS);
  }

  /** Records a sign-in under way for `ttlMs`; the id for the flow cookie. */
  async begin(flow: Flow, ttlMs: number): Promise<string> {
    const now = Date.now();
    await this.store.query('DELETE FROM admin_oidc_flows WHERE expires_at <= $1', [now]);
    const id = newId();
    const rowKey = idHash(id);
    const key = flowKey(id);
    await this.store.query(
      'INSERT INTO admin_oidc_flows (id_hash, state, nonce, verifier, expires_at) VALUES ($1, $2, $3, $4, $5)',
      [rowKey, flow.state, seal(key, rowKey, flow.nonce), seal(key, rowKey, flow.verifier), now + ttlMs],
    );
    return id;
  }

  /**
   * The unexpired flow of the cookie's id whose state is `state` (compared in constant time), deleted as it is
   * taken: a flow serves once. A state that does not match leaves the flow in place, so a forged callback (a
   * cross-site link carrying the victim's flow cookie) cannot cancel a sign-in under way; `no_flow` when there is
   * none (never started here, expired, or taken already).
   */
  async take(cookie: string | undefined, state: string): Promise<Flow | 'no_flow' | 'state_mismatch'> {
    const id = wellFormed(cookie);
    if (id === undefined) return 'no_flow';
    const key = idHash(id);
    const found = await this.store.query<{ state: string; expires_at: number | string }>(
      'SELECT state, expires_at FROM admin_oidc_flows WHERE id_hash = $1',
      [key],
    );
    const row = found[0];
    if (row === undefined || Number(row.expires_at) <= Date.now()) return 'no_flow';
    if (!constantTimeEqual(state, row.state)) return 'state_mismatch';
    // Deleted and read in one statement: of two callbacks racing with the same flow, one gets it.
    const taken = await this.store.query<{ state: string; nonce: string; verifier: string }>(
      'DELETE FROM admin_oidc_flows WHERE id_hash = $1 RETURNING state, nonce, verifier',
      [key],
    );
    const flow = taken[0];
    if (flow === undefined) return 'no_flow';
    const secret = flowKey(id);
    const nonce = unseal(secret, key, flow.nonce);
    const verifier = unseal(secret, key, flow.verifier);
    // A row that does not open (written before flows were sealed, or altered in the store) is no sign-in of ours.
    return nonce === undefined || verifier === undefined ? 'no_flow' : { state: flow.state, nonce, verifier };
  }

  /** Opens a session for `ttlMs`; the id for the session cookie. */
  async open(sub: string, role: AdminRole, ttlMs: number): Promise<string> {
    const now = Date.now();
    await this.store.query('DELETE FROM admin_sessions WHERE expires_at <= $1', [now]);
    const id = newId();
    await this.store.query(
      'INSERT INTO admin_sessions (id_hash, subject, role, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)',
      [idHash(id), sub, role, now, now + ttlMs],
    );
    return id;
  }

  /**
   * The unexpired session of the cookie's id, else undefined. The row is found by the hash of a 256-bit random id:
   * how long the lookup takes tells nothing about any stored hash.
   */
  async find(cookie: string | undefined): Promise<Session | undefined> {
    const id = wellFormed(cookie);
    if (id === undefined) return undefined;
    const rows = await this.store.query<{ subject: string; role: string; expires_at: number | string }>(
      'SELECT subject, role, expires_at FROM admin_sessions WHERE id_hash = $1 AND expires_at > $2',
      [idHash(id), Date.now()],
    );
    const row = rows[0];
    return row ? { sub: row.subject, role: row.role as AdminRole, expiresAt: Number(row.expires_at) } : undefined;
  }

  /** Ends the cookie's session; the session it ended, undefined when there was none (or it had expired). */
  async end(cookie: string | undefined): Promise<Session | undefined> {
    const id = wellFormed(cookie);
    if (id === undefined) return undefined;
    const rows = await this.store.query<{ subject: string; role: string; expires_at: number | string }>(
      'DELETE FROM admin_sessions WHERE id_hash = $1 RETURNING subject, role, expires_at',
      [idHash(id)],
    );
    const row = rows[0];
    if (row === undefined || Number(row.expires_at) <= Date.now()) return undefined;
    return { sub: row.subject, role: row.role as AdminRole, expiresAt: Number(row.expires_at) };
  }
}
