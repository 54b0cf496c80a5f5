/**
 * Reads committed journal records from a position, for sinks. Positions name a segment (its first seq) and a byte
 * offset in it, plus the seq of the last record before that offset; they are what a sink persists as its cursor.
 */
import fs from 'node:fs';
import { listSegments } from './segments.js';
import type { CommittedPosition } from './journal.js';

export interface Cursor {
  /** Seq of the last delivered record (0: none). */
  seq: number;
  segment: number;
  offset: number;
}

export interface Batch {
  lines: string[];
  next: Cursor;
}

/** Reads up to `maxRecords` whole lines after `from`, never past `committed`. */
export async function readBatch(
  auditDir: string,
  from: Cursor,
  committed: CommittedPosition,
  maxRecords: number,
): Promise<Batch> {
  if (from.seq >= committed.seq) return { lines: [], next: from };
  let cursor = from;
  const segments = listSegments(auditDir);
  // A cursor whose segment is gone (or which predates everything) restarts at the oldest segment still there.
  let index = segments.findIndex((s) => s.firstSeq === cursor.segment);
  if (index === -1) {
    index = segments.findIndex((s) => s.firstSeq > cursor.seq);
    if (index === -1) return { lines: [], next: from };
    cursor = { seq: segments[index]!.firstSeq - 1, segment: segments[index]!.firstSeq, offset: 0 };
  }
  const lines: string[] = [];
  while (lines.length < maxRecords && index < segments.length) {
    const seg = segments[index]!;
    const limit =
      seg.firstSeq === committed.segment
        ? committed.bytes
        : seg.firstSeq < committed.segment
          ? fs.statSync(seg.file).size
          : 0;
    if (cursor.offset < limit) {
      const fd = await fs.promises.open(seg.file, 'r');
      try {
        const want = Math.min(limit - cursor.offset, 4 * 1024 * 1024);
        const buf = Buffer.alloc(want);
        const { bytesRead } = await fd.read(buf, 0, want, cursor.offset);
        let pos = 0;
        while (lines.length < maxRecords) {
          const nl = buf.indexOf(10, pos);
          if (nl === -1 || nl >= bytesRead) break;
          lines.push(buf.subarray(pos, nl).toString('utf8'));
          pos = nl + 1;
        }
        cursor = {
          seq: lines.length > 0 ? seqOf(lines[lines.length - 1]!, cursor.seq) : cursor.seq,
          segment: seg.firstSeq,
          offset: cursor.offset + pos,
        };
      } finally {
        await fd.close();
      }
      if (cursor.offset < limit) break; // batch full
    }
    const nextSeg = segments[index + 1];
    if (nextSeg === undefined || nextSeg.firstSeq > committed.segment) break;
    index++;
    cursor = { seq: cursor.seq, segment: nextSeg.firstSeq, offset: 0 };
  }
  return { lines, next: cursor };
}

const SEQ = /^\{"v":1,"seq":(\d+),/;

/** Seq of a record line (read from its fixed prefix), or `fallback` for a line that is not shaped like one. */
export function seqOf(line: string, fallback: number): number {
  const m = SEQ.exec(line);
  return m ? Number(m[1]) : fallback;
}
