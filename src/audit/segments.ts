/**
 * Journal layout on disk, shared by the writer, the sinks and `kycgate audit verify/export`:
 *   <audit dir>/journal/<first seq, 16 digits>.jsonl   segments of records, append-only, one JSON line each
 *   <audit dir>/checkpoints.jsonl                      signed checkpoints
 *   <audit dir>/signing-key.pem, signing-key.pub.pem   generated Ed25519 key pair (when no key is configured)
 *   <audit dir>/cursors/<sink>.json                    each sink's delivered position
 *   <audit dir>/workers/<n>/                           with `server.workers` > 1: worker n's own chain (journal/,
 *                                                      checkpoints.jsonl, cursors/), signed with the key above
 */
import { readdirSync, mkdirSync, existsSync } from 'node:fs';
import path from 'node:path';
import { createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { createHash } from 'node:crypto';

export interface Segment {
  firstSeq: number;
  file: string;
}

export function journalDir(auditDir: string): string {
  return path.join(auditDir, 'journal');
}

/** The directory worker `slot` writes its own chain in. */
export function workerChainDir(auditDir: string, slot: number): string {
  return path.join(auditDir, 'workers', String(slot));
}

/**
 * Every chain of an audit trail: the single-process chain in the audit directory itself (when it holds records,
 * or when there is nothing else), then each worker's, by slot. `name` is the chain's directory relative to the
 * audit directory ('' for the single-process one).
 */
export function chainsOf(auditDir: string): Array<{ name: string; dir: string }> {
  const workersDir = path.join(auditDir, 'workers');
  const slots = existsSync(workersDir)
    ? readdirSync(workersDir)
        .filter((n) => /^\d+$/.test(n))
        .map(Number)
        .sort((a, b) => a - b)
    : [];
  const chains = slots.map((n) => ({ name: `workers/${n}`, dir: path.join(workersDir, String(n)) }));
  const own = existsSync(journalDir(auditDir)) && readdirSync(journalDir(auditDir)).some((n) => n.endsWith('.jsonl'));
  if (own || chains.length === 0) chains.unshift({ name: '', dir: auditDir });
  return chains;
}

export function segmentName(firstSeq: number): string {
  return `${String(firstSeq).padStart(16, '0')}.jsonl`;
}

export function listSegments(auditDir: string): Segment[] {
  const dir = journalDir(auditDir);
  mkdirSync(dir, { recursive: true });
  return readdirSync(dir)
    .filter((n) => /^\d{16}\.jsonl$/.test(n))
    .sort()
    .map((n) => ({ firstSeq: Number(n.slice(0, 16)), file: path.join(dir, n) }));
}

export interface Checkpoint {
  seq: number;
  hash: string;
  time: string;
  key_id: string;
  sig: string;
}

function checkpointMessage(seq: number, hash: string, time: string): Buffer {
  return Buffer.from(`kycgate-audit-checkpoint/v1\n${seq}\n${hash}\n${time}`, 'utf8');
}

/** First 16 hex digits of the SHA-256 of the public key (SPKI DER): names the key that signed a checkpoint. */
export function keyId(publicKey: KeyObject): string {
  return createHash('sha256')
    .update(publicKey.export({ type: 'spki', format: 'der' }))
    .digest('hex')
    .slice(0, 16);
}

/** Signs a checkpoint; `kid` is keyId of the private key's public half (callers that sign often pass it precomputed). */
export function signCheckpoint(
  privateKey: KeyObject,
  seq: number,
  hash: string,
  time: string,
  kid = keyId(createPublicKey(privateKey)),
): Checkpoint {
  return {
    seq,
    hash,
    time,
    key_id: kid,
    sig: sign(null, checkpointMessage(seq, hash, time), privateKey).toString('base64'),
  };
}

export function checkpointValid(publicKey: KeyObject, c: Checkpoint): boolean {
  try {
    return verify(null, checkpointMessage(c.seq, c.hash, c.time), publicKey, Buffer.from(c.sig, 'base64'));
  } catch {
    return false;
  }
}
