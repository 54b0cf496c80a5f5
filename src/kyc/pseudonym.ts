/**
 * Subject pseudonymisation: the raw end-user id (a JWT `sub`, a consumer name, a SPIFFE id ...) is replaced by a
 * keyed HMAC-SHA256 before it is stored, logged or sent to a provider as vendor_data. Without the key the
 * pseudonym cannot be linked back to the id; the same id always gives the same pseudonym. A small memo keeps the
 * hot path from computing an HMAC per request.
 */
import { createHmac } from 'node:crypto';

export class SubjectPseudonymiser {
  private readonly memo = new Map<string, string>();

  constructor(
    private readonly key: Buffer,
    private readonly memoSize = 50_000,
  ) {
    if (key.length < 32) throw new Error('kyc.subject_key: must be at least 32 bytes');
  }

  /** Whether this pseudonymiser uses `key` (a reload with the same subject key keeps it, and its memo). */
  usesKey(key: Buffer): boolean {
    return this.key.equals(key);
  }

  /** `namespace` separates identity systems whose ids could collide (e.g. two JWT issuers). */
  pseudonymise(namespace: string, rawId: string): string {
    const input = namespace === '' ? rawId : namespace + '\u0000' + rawId;
    const memo = this.memo;
    let out = memo.get(input);
    if (out !== undefined) return out;
    out = 'sub_' + createHmac('sha256', this.key).update(input, 'utf8').digest('base64url');
    if (memo.size >= this.memoSize) memo.delete(memo.keys().next().value!);
    memo.set(input, out);
    return out;
  }
}
