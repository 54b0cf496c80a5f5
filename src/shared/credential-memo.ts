/**
 * Constant-time string comparison, and a per-connection memo of the last credential a method verified.
 *
 * API clients send the same bearer token or key on every request of a keep-alive connection. Remembering, on the
 * connection, the exact credential string that was verified (and what it proved) lets the next request skip the
 * digest and the cache lookup: it costs one constant-time comparison with the remembered string. The memo belongs
 * to one authenticator instance (a route's method config; a reload makes new instances), holds one credential per
 * connection, and expires with what it proved. It lives as long as the socket, in this process's memory only.
 */
import type { Socket } from 'node:net';

/** Compares two strings without an early exit, so timing reveals at most their lengths. */
export function constantTimeEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

const MEMO = Symbol('kycgate.credential-memo');

interface Memo {
  owner: object;
  credential: string;
  value: unknown;
  /** Epoch milliseconds after which the memo is ignored. */
  expiresAt: number;
}

type MemoSocket = Socket & { [MEMO]?: Memo };

/** What `owner` remembered for exactly this credential on this connection, if it has not expired. */
export function recall<T>(socket: Socket | undefined, owner: object, credential: string): T | undefined {
  const memo = (socket as MemoSocket | undefined)?.[MEMO];
  if (memo === undefined || memo.owner !== owner || !constantTimeEqual(memo.credential, credential)) return undefined;
  if (Date.now() >= memo.expiresAt) return undefined;
  return memo.value as T;
}

/** Remembers a verified credential on the connection, replacing what was there. */
export function remember(
  socket: Socket | undefined,
  owner: object,
  credential: string,
  value: unknown,
  expiresAt: number,
): void {
  if (socket === undefined) return;
  const s = socket as MemoSocket;
  const memo = s[MEMO];
  if (memo === undefined) {
    s[MEMO] = { owner, credential, value, expiresAt };
    return;
  }
  memo.owner = owner;
  memo.credential = credential;
  memo.value = value;
  memo.expiresAt = expiresAt;
}
