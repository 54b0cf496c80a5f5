/**
 * The audit journal writer: entries queue in memory and are serialised, hash-chained, written and fsynced in one
 * batch per group-commit period (or synchronously in `sync` durability), so the request path only pushes an
 * object. Segments are append-only JSON-lines files; signed checkpoints are written every N records or T seconds
 * and on close. On start the tail of the last segment is checked: a torn final line (a crash mid-write) is cut
 * off and the chain continues from the last complete record; an unfinished last line of checkpoints.jsonl is cut
 * the same way, and a failed checkpoint write is truncated back at once.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createPublicKey, type KeyObject } from 'node:crypto';
import type { Logger } from 'pino';
import { GENESIS, LineBuffer, RecordIds, serialiseInto, canonicalOf, type AuditEntry } from './record.js';
import { journalDir, keyId, listSegments, segmentName, signCheckpoint, type Segment } from './segments.js';
import { APPEND_FLAGS, APPEND_READ_FLAGS, lastCompleteRecord, writeDurable, writeDurableSync } from './durable-file.js';

export interface JournalOptions {
  auditDir: string;
  durability: 'group' | 'sync';
  groupCommitMs: number;
  segmentBytes: number;
  checkpointRecords: number;
  checkpointSeconds: number;
  maxPending: number;
  diskAlarmBytes: number;
  privateKey: KeyObject;
  logger: Logger;
}

/** The position up to which the journal is written and fsynced: sinks never read past it. */
export interface CommittedPosition {
  seq: number;
  segment: number;
  bytes: number;
}

interface Staged {
  /** The entries serialised in the journal's line buffer, put back in front of `pending` when they are withdrawn. */
  entries: AuditEntry[];
  count: number;
  lastSeq: number;
  lastHash: string;
}

const RETRY_AFTER_ERROR_MS = 1000;

export class Journal {
  private readonly ids = new RecordIds();
  private pending: AuditEntry[] = [];
  private staged: Staged | undefined;
  /** The staged batch's lines: the bytes written (and written again after a failed write). */
  private readonly lines = new LineBuffer();
  private segments: Segment[] = [];
  private fd = -1;
  private checkpointFd = -1;
  private readonly keyId: string;
  /** Size of checkpoints.jsonl up to its last complete line: a failed write is cut back to it. */
  private checkpointBytes = 0;
  private segmentBytes = 0;
  private nextSeq = 1;
  private lastHash = GENESIS;
  private timer: NodeJS.Timeout | undefined;
  private checkpointTimer: NodeJS.Timeout | undefined;
  private writing: Promise<void> | undefined;
  private sinceCheckpoint = 0;
  private lastCheckpointSeq = 0;
  private closed = false;
  private readonly commitListeners: Array<() => void> = [];
  private errorLogged = false;
  private dropLogged = 0;
  committed: CommittedPosition = { seq: 0, segment: 1, bytes: 0 };
  /** Counters read by the metrics. */
  readonly stats = { records: 0, batches: 0, dropped: 0, writeErrors: 0, bytes: 0, alarm: false, checkpoints: 0 };

  constructor(private readonly o: JournalOptions) {
    this.keyId = keyId(createPublicKey(o.privateKey));
  }

  get pendingCount(): number {
    return this.pending.length + (this.staged?.count ?? 0);
  }

  /** False while the last write failed (records are held in memory and retried). */
  get writable(): boolean {
    return !this.errorLogged;
  }

  segmentList(): readonly Segment[] {
    return this.segments;
  }

  /** Opens (or creates) the journal, repairing a torn tail left by a crash. */
  open(): { recovered: number; truncatedBytes: number } {
    fs.mkdirSync(journalDir(this.o.auditDir), { recursive: true, mode: 0o700 });
    this.segments = listSegments(this.o.auditDir);
    let truncatedBytes = 0;
    let recovered = 0;
    for (const s of this.segments) this.stats.bytes += fs.statSync(s.file).size;
    // The newest segment may end in a torn line (crash mid-write): cut it. An empty newest segment (just rotated)
    // continues the chain from the previous segment's last record.
    for (let i = this.segments.length - 1; i >= 0; i--) {
      const seg = this.segments[i]!;
      const text = fs.readFileSync(seg.file);
      const tail = lastCompleteRecord(text);
      if (i === this.segments.length - 1 && tail.keepBytes < text.length) {
        fs.truncateSync(seg.file, tail.keepBytes);
        truncatedBytes = text.length - tail.keepBytes;
        this.stats.bytes -= truncatedBytes;
      }
      if (tail.line !== undefined) {
        const rec = JSON.parse(tail.line) as { seq: number };
        this.nextSeq = rec.seq + 1;
        this.lastHash = canonicalOf(tail.line)!.hash;
        recovered = rec.seq;
        break;
      }
      this.nextSeq = seg.firstSeq;
    }
    if (this.segments.length === 0) this.startSegment(1);
    else {
      const last = this.segments[this.segments.length - 1]!;
      this.fd = fs.openSync(last.file, APPEND_FLAGS, 0o600);
      this.segmentBytes = fs.fstatSync(this.fd).size;
    }
    const current = this.segments[this.segments.length - 1]!;
    this.committed = { seq: this.nextSeq - 1, segment: current.firstSeq, bytes: this.segmentBytes };
    this.openCheckpoints();
    this.lastCheckpointSeq = this.nextSeq - 1;
    this.checkpointTimer = setInterval(() => {
      if (this.sinceCheckpoint > 0) this.scheduleFlush(0);
    }, this.o.checkpointSeconds * 1000);
    this.checkpointTimer.unref();
    if (truncatedBytes > 0)
      this.o.logger.warn(
        { truncated_bytes: truncatedBytes, last_seq: this.nextSeq - 1 },
        'audit journal: incomplete last record from an unclean stop removed',
      );
    return { recovered, truncatedBytes };
  }

  /**
   * Opens checkpoints.jsonl for appending. Bytes after its last newline are an unfinished checkpoint (a crash or a
   * failed write mid-line): they are cut, or `verify` would stop at that line for good.
   */
  private openCheckpoints(): void {
    const file = path.join(this.o.auditDir, 'checkpoints.jsonl');
    this.checkpointFd = fs.openSync(file, APPEND_READ_FLAGS, 0o600);
    const size = fs.fstatSync(this.checkpointFd).size;
    let keep = size;
    if (size > 0) {
      const buf = Buffer.alloc(Math.min(size, 64 * 1024));
      // Checkpoint lines are a few hundred bytes: the last newline is in the last block unless the file is garbage.
      let end = size;
      keep = 0;
      while (end > 0) {
        const start = Math.max(0, end - buf.length);
        const n = fs.readSync(this.checkpointFd, buf, 0, end - start, start);
        const nl = buf.subarray(0, n).lastIndexOf(10);
        if (nl !== -1) {
          keep = start + nl + 1;
          break;
        }
        end = start;
      }
    }
    if (keep < size) {
      fs.ftruncateSync(this.checkpointFd, keep);
      fs.fdatasyncSync(this.checkpointFd);
      this.o.logger.warn(
        { truncated_bytes: size - keep },
        'audit checkpoints: incomplete last checkpoint line removed',
      );
    }
    this.checkpointBytes = keep;
  }

  private startSegment(firstSeq: number): void {
    if (this.fd !== -1) fs.closeSync(this.fd);
    const file = path.join(journalDir(this.o.auditDir), segmentName(firstSeq));
    this.fd = fs.openSync(file, APPEND_FLAGS, 0o600);
    this.segments.push({ firstSeq, file });
    this.segmentBytes = 0;
    // Make the new file's directory entry durable.
    try {
      const dfd = fs.openSync(journalDir(this.o.auditDir), 'r');
      fs.fsyncSync(dfd);
      fs.closeSync(dfd);
    } catch {
      /* not supported on every platform */
    }
  }

  onCommit(listener: () => void): void {
    this.commitListeners.push(listener);
  }

  /** Queues an entry (the only work done on the request path). */
  append(entry: AuditEntry): void {
    if (this.closed || !this.admit()) return;
    this.pending.push(entry);
    this.scheduleFlush(this.o.groupCommitMs);
  }

  /** Applies the max_pending_records bound: false (counted and logged) when the entry must be dropped. */
  private admit(): boolean {
    if (this.pendingCount < this.o.maxPending) return true;
    this.stats.dropped++;
    const now = Date.now();
    if (now - this.dropLogged > 10_000) {
      this.dropLogged = now;
      this.o.logger.error(
        { dropped_total: this.stats.dropped, pending: this.pendingCount },
        'audit journal cannot keep up or cannot be written: records are being DROPPED',
      );
    }
    return false;
  }

  /**
   * Appends and fsyncs before returning (durability `sync`): the caller's answer waits for the disk. True only when
   * the entry (and everything queued before it) is written and fsynced. False when it was dropped (journal closed,
   * max_pending_records reached) or the write failed; after a failed write the entry stays queued and is retried
   * with the others unless the caller withdraws it.
   */
  appendDurable(entry: AuditEntry): boolean {
    if (this.closed || !this.admit()) return false;
    this.pending.push(entry);
    return this.flushSync();
  }

  /**
   * Takes back an entry that is still queued (its appendDurable failed and the caller answers differently).
   * False when it is already being written.
   */
  withdraw(entry: AuditEntry): boolean {
    // A staged batch (kept serialised after a failed write) is unstaged to take the entry out; the rest is staged
    // again, with fresh sequence numbers, by the next write. Not while an asynchronous write of it is in flight.
    if (this.pending.lastIndexOf(entry) === -1 && this.writing === undefined && this.staged?.entries.includes(entry)) {
      this.pending = this.staged.entries.concat(this.pending);
      this.staged = undefined;
    }
    const i = this.pending.lastIndexOf(entry);
    if (i === -1) return false;
    this.pending.splice(i, 1);
    return true;
  }

  /**
   * Test seam: replaces the current segment's file descriptor (e.g. with one on /dev/full) and returns the old one.
   * Writes to it are durable only if it was opened like the journal's (APPEND_FLAGS).
   */
  swapSegmentFdForTest(fd: number): number {
    const old = this.fd;
    this.fd = fd;
    return old;
  }

  private scheduleFlush(ms: number): void {
    if (this.timer !== undefined || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.o.durability === 'sync') this.flushSync();
      else void this.write(false);
    }, ms);
  }

  private stage(): void {
    if (this.staged !== undefined || this.pending.length === 0) return;
    const entries = this.pending;
    this.pending = [];
    // The line buffer holds the staged batch only: emptied here, when the next batch is staged.
    const lines = this.lines;
    lines.reset();
    let hash = this.lastHash;
    let seq = this.nextSeq;
    for (const e of entries) {
      hash = serialiseInto(lines, e, seq, this.ids.next(e.time, seq), hash);
      seq++;
    }
    this.staged = { entries, count: entries.length, lastSeq: seq - 1, lastHash: hash };
  }

  /** Writes and fsyncs everything pending, off the request path; resolves when it is on disk. */
  flush(): Promise<void> {
    return this.write(true);
  }

  /**
   * One group commit (the timer's, `drain` false): what is pending now is written and fsynced as one batch, and
   * what arrives meanwhile waits for the next window, so under steady load the journal fsyncs once per window
   * rather than back to back. `drain` (flush, close) also writes what was queued during the write.
   */
  private write(drain: boolean): Promise<void> {
    if (this.writing) return this.writing.then(() => (this.pendingCount > 0 ? this.write(drain) : undefined));
    this.writing = this.writeBatch(drain).finally(() => {
      this.writing = undefined;
    });
    return this.writing;
  }

  /** Writes the staged batch (one a failed write left, else what is pending); with `drain`, then anything queued meanwhile. */
  private async writeBatch(drain: boolean): Promise<void> {
    for (this.stage(); this.staged !== undefined; this.stage()) {
      const staged = this.staged;
      const buf = this.lines.view();
      const fd = this.fd;
      const before = this.segmentBytes;
      try {
        await writeDurable(fd, buf);
      } catch (err) {
        this.writeFailed(err as Error, fd, before);
        return;
      }
      this.committedBatch(staged, buf.length);
      if (!drain) break;
    }
    await this.maybeCheckpoint(false);
  }

  /**
   * Synchronous write and fsync of everything pending (durability `sync`, and close): a batch a failed write left
   * staged first, then what is queued. False when a write failed or an asynchronous batch is in flight (nothing
   * written now).
   */
  flushSync(): boolean {
    if (this.writing) {
      // An asynchronous batch is in flight (group mode closing): let it finish first to keep the order.
      return false;
    }
    for (this.stage(); this.staged !== undefined; this.stage()) {
      const staged = this.staged;
      const buf = this.lines.view();
      const before = this.segmentBytes;
      try {
        writeDurableSync(this.fd, buf);
      } catch (err) {
        this.writeFailed(err as Error, this.fd, before);
        return false;
      }
      this.committedBatch(staged, buf.length);
    }
    this.checkpointSyncIfDue(false);
    return true;
  }

  private writeFailed(err: Error, fd: number, before: number): void {
    this.stats.writeErrors++;
    // The failed batch stays staged: the retry writes the same text (nothing is serialised or hashed again) before
    // anything queued since.
    // Cut any partial write so the retry appends whole lines after the last committed one.
    try {
      fs.ftruncateSync(fd, before);
    } catch {
      /* retried on the next attempt */
    }
    if (!this.errorLogged) {
      this.errorLogged = true;
      this.o.logger.error(
        { err: err.message, pending: this.pendingCount },
        'audit journal write failed; records are kept in memory and retried',
      );
    }
    this.scheduleFlush(RETRY_AFTER_ERROR_MS);
  }

  private committedBatch(staged: Staged, bytes: number): void {
    this.staged = undefined;
    if (this.errorLogged) {
      this.errorLogged = false;
      this.o.logger.info('audit journal writable again');
    }
    this.nextSeq = staged.lastSeq + 1;
    this.lastHash = staged.lastHash;
    this.segmentBytes += bytes;
    this.stats.bytes += bytes;
    this.stats.records += staged.count;
    this.stats.batches++;
    this.sinceCheckpoint += staged.count;
    const seg = this.segments[this.segments.length - 1]!;
    this.committed = { seq: staged.lastSeq, segment: seg.firstSeq, bytes: this.segmentBytes };
    this.checkDiskAlarm();
    if (this.segmentBytes >= this.o.segmentBytes) {
      this.startSegment(this.nextSeq);
      this.committed = { seq: staged.lastSeq, segment: this.nextSeq, bytes: 0 };
    }
    for (const l of this.commitListeners) l();
    if (this.pending.length > 0) this.scheduleFlush(this.o.durability === 'sync' ? 0 : this.o.groupCommitMs);
  }

  private checkDiskAlarm(): void {
    const limit = this.o.diskAlarmBytes;
    if (limit === 0) return;
    const over = this.stats.bytes > limit;
    if (over !== this.stats.alarm) {
      this.stats.alarm = over;
      if (over)
        this.o.logger.error(
          { journal_bytes: this.stats.bytes, limit_bytes: limit },
          'audit journal disk usage over the alarm threshold: a sink is behind or retention is too long',
        );
      else
        this.o.logger.info(
          { journal_bytes: this.stats.bytes },
          'audit journal disk usage back under the alarm threshold',
        );
    }
  }

  /** Bytes recorded as removed by retention. */
  forgetBytes(bytes: number): void {
    this.stats.bytes -= bytes;
    this.checkDiskAlarm();
  }

  /** Drops the given segments from the in-memory list (after retention deleted their files). */
  forgetSegments(firstSeqs: Set<number>): void {
    this.segments = this.segments.filter((s) => !firstSeqs.has(s.firstSeq));
  }

  private checkpointLine(): { seq: number; buf: Buffer } {
    const c = signCheckpoint(this.o.privateKey, this.nextSeq - 1, this.lastHash, new Date().toISOString(), this.keyId);
    return { seq: c.seq, buf: Buffer.from(JSON.stringify(c) + '\n', 'utf8') };
  }

  private checkpointWritten(seq: number, bytes: number): void {
    this.checkpointBytes += bytes;
    this.lastCheckpointSeq = seq;
    this.sinceCheckpoint = 0;
    this.stats.checkpoints++;
  }

  /** A checkpoint write failed: cut what part of the line reached the file, so the next one starts a clean line. */
  private checkpointFailed(err: Error): void {
    try {
      fs.ftruncateSync(this.checkpointFd, this.checkpointBytes);
    } catch {
      /* cut on the next open */
    }
    this.o.logger.error({ err: err.message }, 'audit checkpoint write failed');
  }

  private lastCheckpointAt = Date.now();

  private async maybeCheckpoint(force: boolean): Promise<void> {
    if (!this.timeOrCountDue(force)) return;
    const line = this.checkpointLine();
    try {
      await writeDurable(this.checkpointFd, line.buf);
    } catch (err) {
      this.checkpointFailed(err as Error);
      return;
    }
    this.checkpointWritten(line.seq, line.buf.length);
  }

  private checkpointSyncIfDue(force: boolean): void {
    if (!this.timeOrCountDue(force)) return;
    const line = this.checkpointLine();
    try {
      writeDurableSync(this.checkpointFd, line.buf);
    } catch (err) {
      this.checkpointFailed(err as Error);
      return;
    }
    this.checkpointWritten(line.seq, line.buf.length);
  }

  private timeOrCountDue(force: boolean): boolean {
    const seq = this.nextSeq - 1;
    if (seq === 0 || seq === this.lastCheckpointSeq) return false;
    const now = Date.now();
    if (
      force ||
      this.sinceCheckpoint >= this.o.checkpointRecords ||
      now - this.lastCheckpointAt >= this.o.checkpointSeconds * 1000
    ) {
      this.lastCheckpointAt = now;
      return true;
    }
    return false;
  }

  /** Writes everything pending and a final checkpoint, then closes the files. */
  async close(): Promise<void> {
    if (this.closed) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    clearInterval(this.checkpointTimer);
    while (this.writing) await this.writing;
    this.closed = true;
    for (let attempt = 0; attempt < 3 && this.pendingCount > 0; attempt++) await this.flush();
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pendingCount > 0)
      this.o.logger.error({ lost: this.pendingCount }, 'audit journal closed with records that could not be written');
    await this.maybeCheckpoint(true);
    fs.closeSync(this.fd);
    fs.closeSync(this.checkpointFd);
  }
}
