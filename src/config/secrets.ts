/**
 * Secret references: `{env: NAME}`, `{file: PATH}` and `{vault: {path, key}}`. Values are resolved when a config is
 * compiled (so a bad reference fails validation of that config, not a request) and never appear in logs or errors.
 * Vault references are fetched before the config is compiled (src/secrets/vault-secrets.ts) and read here from that
 * cache, so resolution stays synchronous for subsystems and policies.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { timingSafeEqual, createHash } from 'node:crypto';
import type { SecretRef, VaultSecretRef } from './types.js';
import { ConfigError } from './load.js';

/** Values of vault references fetched ahead of compilation. */
export interface VaultSecretCache {
  /** The cached value, or undefined when the reference was never fetched. */
  cached(ref: VaultSecretRef['vault']): string | undefined;
}

export function isSecretRef(value: unknown): value is SecretRef {
  if (typeof value !== 'object' || value === null) return false;
  const keys = Object.keys(value);
  return keys.length === 1 && (keys[0] === 'env' || keys[0] === 'file' || keys[0] === 'vault');
}

export function isVaultRef(value: unknown): value is VaultSecretRef {
  if (!isSecretRef(value) || !('vault' in value)) return false;
  const v = value.vault as unknown;
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof (v as { path?: unknown }).path === 'string' &&
    typeof (v as { key?: unknown }).key === 'string'
  );
}

/** Resolves a reference; throws ConfigError naming the reference (never the value). */
export function resolveSecret(
  ref: unknown,
  baseDir: string,
  env: NodeJS.ProcessEnv = process.env,
  vault?: VaultSecretCache,
): string {
  if (!isSecretRef(ref))
    throw new ConfigError([
      'a secret must be a reference ({env: NAME}, {file: PATH} or {vault: {path, key}}), never an inline value',
    ]);
  if ('vault' in ref) {
    if (!isVaultRef(ref)) throw new ConfigError(['secret {vault: ...}: needs `path` and `key`']);
    const value = vault?.cached(ref.vault);
    if (value === undefined) {
      throw new ConfigError([
        `secret {vault: ${ref.vault.path}#${ref.vault.key}}: ` +
          (vault ? 'was not read from Vault' : 'Vault references are resolved by the running gateway only'),
      ]);
    }
    return value;
  }
  if ('env' in ref) {
    const value = env[ref.env];
    if (value === undefined || value === '')
      throw new ConfigError([`secret {env: ${ref.env}}: the environment variable is not set`]);
    return value;
  }
  const file = path.resolve(baseDir, ref.file);
  try {
    return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
  } catch (err) {
    throw new ConfigError([
      `secret {file: ${ref.file}}: cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    ]);
  }
}

/** Constant-time string comparison; the lengths are hidden by comparing fixed-size digests. */
export function safeEqual(a: string | Buffer, b: string | Buffer): boolean {
  const da = createHash('sha256').update(a).digest();
  const db = createHash('sha256').update(b).digest();
  return timingSafeEqual(da, db) && (typeof a === 'string' && typeof b === 'string' ? a.length === b.length : true);
}

/**
 * A connection URL setting (`store.postgres.url`, `redis.url`): a plain URL without credentials, or a secret
 * reference that may hold a URL with them. A password in a plain URL (in the user info, or as a `password` query
 * parameter, which the Postgres driver also reads) is refused: it would sit in the config file in clear.
 */
export function connectionUrl(value: unknown, key: string, resolve: (ref: unknown) => string): string {
  if (typeof value === 'string') {
    let parsed: URL;
    try {
      parsed = new URL(value);
    } catch {
      throw new ConfigError([`${key}: not a URL`]);
    }
    if (parsed.password !== '' || parsed.searchParams.has('password')) {
      throw new ConfigError([
        `${key}: contains a password; give it as a secret reference ({env: NAME} or {file: PATH})`,
      ]);
    }
    return value;
  }
  if (isSecretRef(value)) return resolve(value);
  throw new ConfigError([`${key}: must be a URL or a secret reference`]);
}
