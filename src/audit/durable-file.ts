/**
 * Durable appends for the journal's segment and checkpoint files, and reading back the last complete record of a
 * segment after a crash.
 */
import fs from 'node:fs';
import { canonicalOf } from './record.js';

/**
 * Journal and checkpoint files are opened with O_DSYNC where the platform has it: a write returns once its data is
 * on disk, so a group commit is one write in the thread pool instead of a write and an fdatasync (two round trips
 * and two thread switches). Where O_DSYNC is missing, each write is followed by fdatasync as before.
 */
const O_DSYNC: number = fs.constants.O_DSYNC ?? 0;
export const APPEND_FLAGS = fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT | O_DSYNC;
export const APPEND_READ_FLAGS = fs.constants.O_RDWR | fs.constants.O_APPEND | fs.constants.O_CREAT | O_DSYNC;

/** Writes all of `buf` to a journal file (opened with APPEND_FLAGS) and resolves once it is on disk. */
export function writeDurable(fd: number, buf: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const step = (off: number) => {
      fs.write(fd, buf, off, buf.length - off, null, (err, written) => {
        if (err) return reject(err);
        if (off + written < buf.length) step(off + written);
        else if (O_DSYNC !== 0) resolve();
        else fs.fdatasync(fd, (e) => (e ? reject(e) : resolve()));
      });
    };
    step(0);
  });
}

/** writeDurable, blocking (durability `sync`, and close). */
export function writeDurableSync(fd: number, buf: Buffer): void {
  let off = 0;
  while (off < buf.length) off += fs.writeSync(fd, buf, off);
  if (O_DSYNC === 0) fs.fdatasyncSync(fd);
}

/** The last newline-terminated, well-formed record line of a segment and the bytes up to its end. */
export function lastCompleteRecord(buf: Buffer): { line: string | undefined; keepBytes: number } {
  let end = buf.length;
  // Bytes after the last newline are an unfinished line, the only thing a crash can leave; they are cut. A
  // malformed complete line is never cut (it may be evidence of tampering; verify reports it).
  while (end > 0 && buf[end - 1] !== 10) end--;
  const keepBytes = end;
  while (end > 0) {
    const start = buf.lastIndexOf(10, end - 2) + 1;
    const line = buf.subarray(start, end - 1).toString('utf8');
    if (canonicalOf(line) !== undefined) {
      try {
        JSON.parse(line);
        return { line, keepBytes };
      } catch {
        /* torn: keep walking back */
      }
    }
    end = start;
  }
  return { line: undefined, keepBytes };
}
