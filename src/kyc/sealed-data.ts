/**
 * Encryption at rest for personal data and webhook payloads: AES-256-GCM with a random 96-bit nonce and the row's
 * identity as associated data (a ciphertext copied to another row does not decrypt). Several keys support
 * rotation: the first encrypts, every key decrypts; the key id travels with the ciphertext.
 *
 * Format: `v1.<key id>.<nonce b64url>.<ciphertext+tag b64url>`.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

export interface DataKey {
  id: string;
  key: Buffer;
}

export class DataSealer {
  private readonly byId: Map<string, Buffer>;
  readonly currentKeyId: string;

  constructor(private readonly keys: readonly DataKey[]) {
    if (keys.length === 0) throw new Error('kyc.encryption_keys: at least one key is needed');
    this.byId = new Map(keys.map((k) => [k.id, k.key]));
    if (this.byId.size !== keys.length) throw new Error('kyc.encryption_keys: key ids must be unique');
    this.currentKeyId = keys[0]!.id;
  }

  seal(plaintext: string, associated: string): string {
    const key = this.keys[0]!;
    const nonce = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key.key, nonce);
    cipher.setAAD(Buffer.from(associated, 'utf8'));
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
    return `v1.${key.id}.${nonce.toString('base64url')}.${body.toString('base64url')}`;
  }

  /** Throws when the key id is unknown or the ciphertext or its associated data was altered. */
  open(sealed: string, associated: string): string {
    const parts = sealed.split('.');
    if (parts.length !== 4 || parts[0] !== 'v1') throw new Error('sealed value has an unknown format');
    const key = this.byId.get(parts[1]!);
    if (!key) throw new Error(`sealed value uses key "${parts[1]}", which is not configured`);
    const nonce = Buffer.from(parts[2]!, 'base64url');
    const body = Buffer.from(parts[3]!, 'base64url');
    if (body.length < 16) throw new Error('sealed value is truncated');
    const decipher = createDecipheriv('aes-256-gcm', key, nonce);
    decipher.setAAD(Buffer.from(associated, 'utf8'));
    decipher.setAuthTag(body.subarray(body.length - 16));
    return Buffer.concat([decipher.update(body.subarray(0, body.length - 16)), decipher.final()]).toString('utf8');
  }
}
