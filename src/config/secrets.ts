/**
 * Secret references: `{env: NAME}` and `{file: PATH}`. Values are resolved when a config is compiled (so a bad
 * reference fails validation of that config, not a request) and never appear in logs or errors.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { timingSafeEqual, createHash } from 'node:crypto';
import type { SecretRef } from './types.js';
import { ConfigError } from './load.js';

export function isSecretRef(value: unknown): value is SecretRef {
  if (typeof value !== 'object' || value === null) return false;
  const keys = Object.keys(value);
  return keys.length === 1 && (keys[0] === 'env' || keys[0] === 'file');
}

/** Resolves a reference; throws ConfigError naming the reference (never the value). */
export function resolveSecret(ref: unknown, baseDir: string, env: NodeJS.ProcessEnv = process.env): string {
  if (!isSecretRef(ref)) throw new ConfigError(['a secret must be a reference ({env: NAME} or {file: PATH}), never an inline value']);
  if ('env' in ref) {
    const value = env[ref.env];
    if (value === undefined || value === '') throw new ConfigError([`secret {env: ${ref.env}}: the environment variable is not set`]);
    return value;
  }
  const file = path.resolve(baseDir, ref.file);
  try {
    return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
  } catch (err) {
    throw new ConfigError([`secret {file: ${ref.file}}: cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`]);
  }
}

/** Constant-time string comparison; the lengths are hidden by comparing fixed-size digests. */
export function safeEqual(a: string | Buffer, b: string | Buffer): boolean {
  const da = createHash('sha256').update(a).digest();
  const db = createHash('sha256').update(b).digest();
  return timingSafeEqual(da, db) && (typeof a === 'string' && typeof b === 'string' ? a.length === b.length : true);
}
