/**
 * Key material of the KYC subsystem: from a secret reference in production, or generated once and kept in the data
 * directory for the built-in demo and single-instance setups (file mode 0600, never logged).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';

/** Reads `file` under `dataDir`, creating it with `generate()` on first use. */
export function persistedSecret(dataDir: string, file: string, generate: () => string): string {
  const full = path.join(dataDir, file);
  if (existsSync(full)) return readFileSync(full, 'utf8').trim();
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const value = generate();
  // `wx`: two processes starting together must not overwrite each other's key.
  try {
    writeFileSync(full, value + '\n', { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return readFileSync(full, 'utf8').trim();
  }
  return value;
}

export function randomKeyHex(): string {
  return randomBytes(32).toString('hex');
}

/** Decodes a 32-byte key given as 64 hex characters or base64; throws naming `what`, never the value. */
export function decodeKey32(value: string, what: string): Buffer {
  const text = value.trim();
  let key: Buffer | undefined;
  if (/^[0-9a-fA-F]{64}$/.test(text)) key = Buffer.from(text, 'hex');
  else if (/^[A-Za-z0-9+/_-]{43}=?$/.test(text)) key = Buffer.from(text, 'base64');
  if (key?.length !== 32) throw new Error(`${what}: must be 32 bytes, as 64 hex characters or base64`);
  return key;
}
