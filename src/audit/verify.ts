/**
 * Journal verification: recomputes every record's hash, checks the sequence and the chain, and checks each signed
 * checkpoint against the records it covers. Stops at the FIRST problem and names it: the record (seq, id), the
 * segment file and the line number, and what kind of change explains it (modified, deleted, inserted, reordered).
 */
import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { createPublicKey, type KeyObject } from 'node:crypto';
import { canonicalOf, sha256Hex, GENESIS } from './record.js';
import { listSegments, checkpointValid, type Checkpoint } from './segments.js';

export interface VerifyResult {
  ok: boolean;
  records: number;
  checkpoints: number;
  firstSeq: number;
  lastSeq: number;
  /** Seq of the last record covered by a valid signed checkpoint. */
  signedThrough: number;
  problem?: { seq?: number; id?: string; file: string; line: number; kind: 'modified' | 'deleted' | 'inserted' | 'reordered' | 'truncated' | 'bad-checkpoint'; message: string };
}

interface Located {
  line: string;
  file: string;
  lineNo: number;
}

export function* journalLines(auditDir: string): Generator<Located> {
  for (const seg of listSegments(auditDir)) {
    const text = readFileSync(seg.file, 'utf8');
    const lines = text.split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    for (let i = 0; i < lines.length; i++) yield { line: lines[i]!, file: path.basename(seg.file), lineNo: i + 1 };
  }
}

export function loadPublicKey(auditDir: string, publicKeyFile?: string): KeyObject {
  const file = publicKeyFile ?? path.join(auditDir, 'signing-key.pub.pem');
  return createPublicKey(readFileSync(file, 'utf8'));
}

export function verifyJournal(auditDir: string, publicKey: KeyObject): VerifyResult {
  const segments = listSegments(auditDir);
  const all: Array<Located & { seq?: number; id?: string; hash?: string; prev?: string; selfOk: boolean }> = [];
  for (const l of journalLines(auditDir)) {
    const c = canonicalOf(l.line);
    let rec: { seq?: unknown; id?: unknown; prev?: unknown } | undefined;
    try {
      rec = JSON.parse(l.line) as typeof rec;
    } catch {
      rec = undefined;
    }
    const selfOk = c !== undefined && rec !== undefined && sha256Hex(c.canonical) === c.hash;
    all.push({
      ...l,
      ...(rec && typeof rec.seq === 'number' ? { seq: rec.seq } : {}),
      ...(rec && typeof rec.id === 'string' ? { id: rec.id } : {}),
      ...(rec && typeof rec.prev === 'string' ? { prev: rec.prev } : {}),
      ...(c ? { hash: c.hash } : {}),
      selfOk,
    });
  }
  const result: VerifyResult = { ok: true, records: all.length, checkpoints: 0, firstSeq: segments[0]?.firstSeq ?? 1, lastSeq: 0, signedThrough: 0 };
  const fail = (r: { file: string; lineNo: number; seq?: number; id?: string }, kind: NonNullable<VerifyResult['problem']>['kind'], message: string): VerifyResult => {
    result.ok = false;
    result.problem = { ...(r.seq !== undefined ? { seq: r.seq } : {}), ...(r.id !== undefined ? { id: r.id } : {}), file: r.file, line: r.lineNo, kind, message };
    return result;
  };
  const describe = (r: { seq?: number; id?: string; file: string; lineNo: number }) => `record seq ${r.seq ?? '?'}${r.id ? ` (id ${r.id})` : ''} at ${r.file}:${r.lineNo}`;

  // Where each seq first appears, to tell a reordering from a deletion.
  const positions = new Map<number, number>();
  all.forEach((r, i) => {
    if (r.seq !== undefined && !positions.has(r.seq)) positions.set(r.seq, i);
  });

  let expected = result.firstSeq;
  let prevHash: string | undefined = expected === 1 ? GENESIS : undefined; // earlier segments removed by retention
  const hashBySeq = new Map<number, string>();
  for (let i = 0; i < all.length; i++) {
    const r = all[i]!;
    if (!r.selfOk || r.seq === undefined) return fail(r, 'modified', `${describe(r)} was modified: its content does not match its hash`);
    if (r.seq !== expected) {
      if (r.seq < expected) {
        const firstAt = positions.get(r.seq)!;
        if (firstAt < i) return fail(r, 'inserted', `${describe(r)} duplicates the seq of ${describe(all[firstAt]!)}: a record was inserted`);
        return fail(r, 'reordered', `${describe(r)} comes after seq ${expected - 1}: records were reordered`);
      }
      const laterAt = positions.get(expected);
      if (laterAt !== undefined && laterAt > i) return fail(r, 'reordered', `${describe(r)} stands where seq ${expected} should be (found later at ${all[laterAt]!.file}:${all[laterAt]!.lineNo}): records were reordered`);
      return fail(r, 'deleted', `record seq ${expected} is missing before ${describe(r)}: a record was deleted`);
    }
    if (prevHash !== undefined && r.prev !== prevHash) {
      const before = all[i - 1];
      if (before) return fail(before, 'modified', `${describe(before)} was modified (rehashed): ${describe(r)} does not chain to it`);
      return fail(r, 'modified', `${describe(r)} does not chain to the start of the journal`);
    }
    prevHash = r.hash!;
    hashBySeq.set(r.seq, r.hash!);
    result.lastSeq = r.seq;
    expected++;
  }

  // Checkpoints: each must carry a valid signature; those whose seq is in the journal must match its hash.
  const cpFile = path.join(auditDir, 'checkpoints.jsonl');
  const cpLines = existsSync(cpFile) ? readFileSync(cpFile, 'utf8').split('\n').filter((l) => l !== '') : [];
  for (let i = 0; i < cpLines.length; i++) {
    const where = { file: 'checkpoints.jsonl', lineNo: i + 1 };
    let cp: Checkpoint;
    try {
      cp = JSON.parse(cpLines[i]!) as Checkpoint;
    } catch {
      return fail(where, 'bad-checkpoint', `checkpoint at checkpoints.jsonl:${i + 1} is not valid JSON`);
    }
    if (!checkpointValid(publicKey, cp)) return fail(where, 'bad-checkpoint', `checkpoint at checkpoints.jsonl:${i + 1} (seq ${cp.seq}) has an invalid signature for this public key`);
    result.checkpoints++;
    if (cp.seq < result.firstSeq) continue; // covers segments removed by retention
    const h = hashBySeq.get(cp.seq);
    if (h === undefined) {
      const last = all[all.length - 1];
      return fail(last ? { ...last } : { ...where }, 'truncated', `the signed checkpoint at seq ${cp.seq} (checkpoints.jsonl:${i + 1}) is past the last record (seq ${result.lastSeq}): records after seq ${result.lastSeq} were deleted`);
    }
    if (h !== cp.hash) {
      // The chain is internally consistent but differs from what was signed: find the record, report the oldest
      // unsigned-for position (the first record after the previous good checkpoint).
      const firstBad = all.find((r) => r.seq! > result.signedThrough);
      return fail(firstBad ?? where, 'modified', `records between seq ${result.signedThrough + 1} and ${cp.seq} do not match the signed checkpoint (checkpoints.jsonl:${i + 1}): they were rewritten${firstBad ? `, starting at or after ${describe(firstBad)}` : ''}`);
    }
    result.signedThrough = Math.max(result.signedThrough, cp.seq);
  }
  return result;
}
