/**
 * Who is calling the admin API: an admin key from the store (`kga_…`), a key declared in `admin.api.keys`, or a
 * client certificate on the admin listener's TLS whose SPIFFE ID `admin.api.mtls` maps to a role. A key is read from
 * `Authorization: Bearer <key>` or `x-admin-key`; both present, or a key that matches nothing, is refused. Without a
 * key: the client certificate, else the dashboard's OIDC session (oidc.ts).
 */
import { hash } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import type { AdminApiConfig, AdminRole } from '../config/admin-api-schema.js';
import { constantTimeEqual } from '../shared/credential-memo.js';
import { ADMIN_KEY_PREFIX, adminKeyId, type AdminKeys } from './admin-keys.js';
import type { ApiContext, Principal } from './call.js';

/** Hashes of the config keys, made once per config (the values are secret references, resolved here). */
const configKeyHashes = new WeakMap<AdminApiConfig['keys'], Array<{ name: string; role: AdminRole; hash: string }>>();

function configKeys(ctx: ApiContext): Array<{ name: string; role: AdminRole; hash: string }> {
  const keys = ctx.config().keys;
  let hashed = configKeyHashes.get(keys);
  if (hashed === undefined) {
    hashed = keys.map((k) => {
      const value = ctx.sources.resolveSecret(k.key);
      if (value.length < 32) throw new Error(`admin.api.keys "${k.name}": the key must be at least 32 characters`);
      return { name: k.name, role: k.role, hash: hash('sha256', value, 'hex') };
    });
    configKeyHashes.set(keys, hashed);
  }
  return hashed;
}

/** Checks the config keys can be resolved (at start, so a missing secret fails the start, not the first call). */
export function checkConfigKeys(ctx: ApiContext): void {
  configKeys(ctx);
}

function presentedKey(req: IncomingMessage): string | undefined | null {
  const header = req.headers['x-admin-key'];
  const auth = req.headers.authorization;
  const bearer = auth !== undefined && /^bearer /i.test(auth) ? auth.slice(7).trim() : undefined;
  if (Array.isArray(header) || (header !== undefined && bearer !== undefined)) return null; // ambiguous
  return header ?? bearer;
}

function certificatePrincipal(req: IncomingMessage, ctx: ApiContext): Principal | undefined {
  const socket = req.socket as TLSSocket;
  if (typeof socket.getPeerCertificate !== 'function' || socket.authorized !== true) return undefined;
  const san = socket.getPeerCertificate().subjectaltname ?? '';
  const uris = san
    .split(', ')
    .filter((n) => n.startsWith('URI:'))
    .map((n) => n.slice(4));
  // An SVID carries exactly one URI SAN; a certificate with several is ambiguous and maps to nothing.
  if (uris.length !== 1) return undefined;
  const entry = ctx.config().mtls.find((m) => m.spiffe_id === uris[0]);
  return entry ? { actor: entry.spiffe_id, role: entry.role, method: 'mtls' } : undefined;
}

export async function authenticate(req: IncomingMessage, ctx: ApiContext): Promise<Principal | undefined> {
  const key = presentedKey(req);
  if (key === null) return undefined;
  if (key === undefined) return certificatePrincipal(req, ctx) ?? ctx.session?.(req);
  if (key.startsWith(ADMIN_KEY_PREFIX) && adminKeyId(key) !== undefined && ctx.config().store_keys) {
    const record = await ctx.keys.verify(key);
    if (record) return { actor: `admin-key:${record.id}`, role: record.role, method: 'admin-key' };
  }
  const presented = hash('sha256', key, 'hex');
  let match: Principal | undefined;
  for (const k of configKeys(ctx)) {
    // Every key is compared, in constant time, whichever matches.
    if (constantTimeEqual(presented, k.hash) && match === undefined)
      match = { actor: `config-key:${k.name}`, role: k.role, method: 'config-key' };
  }
  return match;
}

export interface KeyFileResult {
  path: string;
  id: string;
  created: boolean;
}

/**
 * The key file of `admin.api.key_file`: kept when it holds a valid key of the store, else a new key is created and
 * written (mode 0600) before the API serves.
 */
export async function ensureKeyFile(
  keys: AdminKeys,
  file: { path: string; role: AdminRole },
  dataDir: string,
): Promise<KeyFileResult> {
  const full = path.resolve(dataDir, file.path);
  if (existsSync(full)) {
    const existing = readFileSync(full, 'utf8').trim();
    const record = await keys.verify(existing);
    if (record) return { path: full, id: record.id, created: false };
  }
  const { key, record } = await keys.create({ name: 'key-file', role: file.role, createdBy: 'key-file' });
  writeFileSync(full, key + '\n', { mode: 0o600 });
  chmodSync(full, 0o600);
  return { path: full, id: record.id, created: true };
}
