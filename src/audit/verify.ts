/**
 * Journal verification: recomputes every record's hash, checks the sequence and the chain, and checks each signed
 * checkpoint against the records it covers. Stops at the FIRST problem and names it: the record (seq, id), the
 * segment file and the line number, and what kind of change explains it (modified, deleted, inserted, reordered).
 */
import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { createPublicKey, type KeyObject } from 'node:crypto';
import { canonicalOf, sha256Hex, GENESIS } from './record.js';
import { chainsOf, listSegments, checkpointValid, type Checkpoint } from './segments.js';

export interface VerifyResult {
  ok: boolean;
  records: number;
  checkpoints: number;
  firstSeq: number;
  lastSeq: number;
  /** Seq of the last record covered by a valid signed checkpoint. */
  signedThrough: number;
  problem?: {
    seq?: number;
    id?: string;
    file: string;
    line: number;
    kind: 'modified' | 'deleted' | 'inserted' | 'reordered' | 'truncated' | 'bad-checkpoint';
    message: string;
  };
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

interface Parsed extends Located {
  seq?: number;
  id?: string;
  hash?: string;
  prev?: string;
  selfOk: boolean;
}

function parseLine(l: Located): Parsed {
  const c = canonicalOf(l.line);
  let rec: { seq?: unknown; id?: unknown; prev?: unknown } | undefined;
  try {
    rec = JSON.parse(l.line) as typeof rec;
  } catch {
    rec = undefined;
  }
  return {
    ...l,
    ...(rec && typeof rec.seq === 'number' ? { seq: rec.seq } : {}),
    ...(rec && typeof rec.id === 'string' ? { id: rec.id } : {}),
    ...(rec && typeof rec.prev === 'string' ? { prev: rec.prev } : {}),
    ...(c ? { hash: c.hash } : {}),
    selfOk: c !== undefined && rec !== undefined && sha256Hex(c.canonical) === c.hash,
  };
}

/** Where record `seq` stands in the journal (first occurrence in file order), by a second pass. */
function findSeq(auditDir: string, seq: number, skip: Located): Parsed | undefined {
  for (const l of journalLines(auditDir)) {
    if (l.file === skip.file && l.lineNo === skip.lineNo) continue;
    const p = parseLine(l);
    if (p.seq === seq) return p;
  }
  return undefined;
}

const before = (a: Located, b: Located) => a.file < b.file || (a.file === b.file && a.lineNo < b.lineNo);

/**
 * One streaming pass (memory does not grow with the journal); a second pass runs only to explain a sequence
 * anomaly. Checkpoint signatures are checked first, then each record in order.
 */
export function verifyJournal(auditDir: string, publicKey: KeyObject): VerifyResult {
  const segments = listSegments(auditDir);
  const result: VerifyResult = {
    ok: true,
    records: 0,
    checkpoints: 0,
    firstSeq: segments[0]?.firstSeq ?? 1,
    lastSeq: 0,
    signedThrough: 0,
  };
  const fail = (
    r: { file: string; lineNo: number; seq?: number; id?: string },
    kind: NonNullable<VerifyResult['problem']>['kind'],
    message: string,
  ): VerifyResult => {
    result.ok = false;
    result.problem = {
      ...(r.seq !== undefined ? { seq: r.seq } : {}),
      ...(r.id !== undefined ? { id: r.id } : {}),
      file: r.file,
      line: r.lineNo,
      kind,
      message,
    };
    return result;
  };
  const describe = (r: { seq?: number; id?: string; file: string; lineNo: number }) =>
    `record seq ${r.seq ?? '?'}${r.id ? ` (id ${r.id})` : ''} at ${r.file}:${r.lineNo}`;

  // Checkpoints: each must carry a valid signature.
  const cpFile = path.join(auditDir, 'checkpoints.jsonl');
  const cpLines = existsSync(cpFile)
    ? readFileSync(cpFile, 'utf8')
        .split('\n')
        .filter((l) => l !== '')
    : [];
  const checkpoints = new Map<number, { cp: Checkpoint; lineNo: number }>();
  for (let i = 0; i < cpLines.length; i++) {
    const where = { file: 'checkpoints.jsonl', lineNo: i + 1 };
    let cp: Checkpoint;
    try {
      cp = JSON.parse(cpLines[i]!) as Checkpoint;
    } catch {
      return fail(where, 'bad-checkpoint', `checkpoint at checkpoints.jsonl:${i + 1} is not valid JSON`);
    }
    if (!checkpointValid(publicKey, cp))
      return fail(
        where,
        'bad-checkpoint',
        `checkpoint at checkpoints.jsonl:${i + 1} (seq ${cp.seq}) has an invalid signature for this public key`,
      );
    result.checkpoints++;
    if (cp.seq >= result.firstSeq) checkpoints.set(cp.seq, { cp, lineNo: i + 1 });
  }

  let expected = result.firstSeq;
  let prevHash: string | undefined = expected === 1 ? GENESIS : undefined; // earlier segments removed by retention
  let previous: Parsed | undefined;
  let firstUnsigned: Parsed | undefined;
  for (const l of journalLines(auditDir)) {
    const r = parseLine(l);
    result.records++;
    if (!r.selfOk || r.seq === undefined)
      return fail(r, 'modified', `${describe(r)} was modified: its content does not match its hash`);
    if (r.seq !== expected) {
      if (r.seq < expected) {
        const other = findSeq(auditDir, r.seq, r);
        if (other && before(other, r))
          return fail(r, 'inserted', `${describe(r)} duplicates the seq of ${describe(other)}: a record was inserted`);
        return fail(r, 'reordered', `${describe(r)} comes after seq ${expected - 1}: records were reordered`);
      }
      const later = findSeq(auditDir, expected, r);
      if (later && before(r, later))
        return fail(
          r,
          'reordered',
          `${describe(r)} stands where seq ${expected} should be (found later at ${later.file}:${later.lineNo}): records were reordered`,
        );
      return fail(r, 'deleted', `record seq ${expected} is missing before ${describe(r)}: a record was deleted`);
    }
    if (prevHash !== undefined && r.prev !== prevHash) {
      if (previous)
        return fail(
          previous,
          'modified',
          `${describe(previous)} was modified (rehashed): ${describe(r)} does not chain to it`,
        );
      return fail(r, 'modified', `${describe(r)} does not chain to the start of the journal`);
    }
    firstUnsigned ??= r;
    const signed = checkpoints.get(r.seq);
    if (signed !== undefined) {
      if (signed.cp.hash !== r.hash) {
        // The chain is consistent but not the one that was signed: it was rewritten after the last good checkpoint.
        return fail(
          firstUnsigned,
          'modified',
          `records between seq ${firstUnsigned.seq} and ${r.seq} do not match the signed checkpoint ` +
            `(checkpoints.jsonl:${signed.lineNo}): they were rewritten, starting at or after ${describe(firstUnsigned)}`,
        );
      }
      result.signedThrough = r.seq;
      firstUnsigned = undefined;
    }
    prevHash = r.hash!;
    previous = r;
    result.lastSeq = r.seq;
    expected++;
  }
  for (const [seq, { lineNo }] of checkpoints) {
    if (seq > result.lastSeq) {
      const where = previous ?? { file: 'checkpoints.jsonl', lineNo };
      return fail(
        where,
        'truncated',
        `the signed checkpoint at seq ${seq} (checkpoints.jsonl:${lineNo}) is past the last record (seq ` +
          `${result.lastSeq}): records after seq ${result.lastSeq} were deleted`,
      );
    }
  }
  return result;
}

/** One chain's result within an audit trail; `chain` is its directory relative to the audit directory. */
export interface ChainResult extends VerifyResult {
  chain: string;
}

export interface TrailResult extends VerifyResult {
  /** Each chain of the trail (one per worker with `server.workers` > 1); the totals above sum them. */
  chains: ChainResult[];
}

/**
 * Verifies every chain of an audit trail (the single-process chain and each worker's) against one public key and
 * reads them as one set: ok when every chain is, records and checkpoints summed, the first problem found named
 * with the chain's directory in its file (`workers/1/0000000000000001.jsonl`).
 */
export function verifyAuditTrail(auditDir: string, publicKey: KeyObject): TrailResult {
  const chains = chainsOf(auditDir).map((c) => ({ chain: c.name, ...verifyJournal(c.dir, publicKey) }));
  const trail: TrailResult = {
    ok: chains.every((c) => c.ok),
    records: 0,
    checkpoints: 0,
    firstSeq: chains[0]?.firstSeq ?? 1,
    lastSeq: 0,
    signedThrough: 0,
    chains,
  };
  for (const c of chains) {
    trail.records += c.records;
    trail.checkpoints += c.checkpoints;
    trail.lastSeq = Math.max(trail.lastSeq, c.lastSeq);
    trail.signedThrough = Math.max(trail.signedThrough, c.signedThrough);
  }
  const failed = chains.find((c) => !c.ok);
  if (failed?.problem) {
    const file = failed.chain === '' ? failed.problem.file : `${failed.chain}/${failed.problem.file}`;
    const message = failed.chain === '' ? failed.problem.message : `chain ${failed.chain}: ${failed.problem.message}`;
    trail.problem = { ...failed.problem, file, message };
  }
  return trail;
}
