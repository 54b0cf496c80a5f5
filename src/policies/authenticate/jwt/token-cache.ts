/**
 * Verified tokens, keyed by the SHA-256 of the token and kept until the token expires, so that a client repeating
 * its token pays a hash and a map lookup instead of a signature check. Bounded: the oldest entry goes first.
 */
import { hash } from 'node:crypto';
import type { Identity } from '../../../pipeline/context.js';

interface Entry {
  readonly identity: Identity;
  /** `exp` in milliseconds. */
  readonly expiresAt: number;
}

export class VerifiedTokenCache {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly maxEntries: number) {}

  static keyOf(token: string): string {
    return hash('sha256', token, 'base64');
  }

  get(key: string): Identity | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (Date.now() >= entry.expiresAt) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.identity;
  }

  /** When the entry under `key` expires (epoch ms), or 0 when there is none. */
  expiresAt(key: string): number {
    return this.entries.get(key)?.expiresAt ?? 0;
  }

  set(key: string, identity: Identity, expiresAt: number): void {
    if (this.maxEntries === 0) return;
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.set(key, { identity, expiresAt });
  }

  get size(): number {
    return this.entries.size;
  }
}
