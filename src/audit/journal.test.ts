import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { memoryLogger } from '../../testing/harness.js';
import { Journal } from './journal.js';
import { signingKey, applyRetention, AuditRecorder, eventNeedsSync } from './subsystem.js';
import type { AuditConfig } from './schema.js';
import type { SinkRunner } from './sinks.js';
import { verifyJournal, loadPublicKey } from './verify.js';
import { listSegments } from './segments.js';
import { exportRecords, cefValue, cefHeader } from './export.js';
import { canonicalOf, sha256Hex, type AuditEntry } from './record.js';

function tmpAuditDir(): string {
  return path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'kycgate-audit-')), 'audit');
}

async function writeJournal(dir: string, count: number, segmentBytes = 1 << 20, checkpointRecords = 10): Promise<void> {
  const journal = new Journal({
    auditDir: dir,
    durability: 'group',
    groupCommitMs: 1,
    segmentBytes,
    checkpointRecords,
    checkpointSeconds: 60,
    maxPending: 100000,
    diskAlarmBytes: 0,
    privateKey: signingKey(dir, undefined),
    logger: memoryLogger().logger,
  });
  journal.open();
  for (let i = 0; i < count; i++) {
    const entry: AuditEntry = {
      kind: 'request',
      time: Date.now(),
      type: 'http.request',
      requestId: `r${i}`,
      route: 'r',
      method: 'GET',
      path: `/p/${i}`,
      status: 200,
      latencyMs: 1,
    };
    journal.append(entry);
    if (i % 7 === 0) await journal.flush();
  }
  await journal.close();
}

function linesOf(dir: string): Array<{ file: string; lines: string[] }> {
  return listSegments(dir).map((s) => ({
    file: s.file,
    lines: fs
      .readFileSync(s.file, 'utf8')
      .split('\n')
      .filter((l) => l !== ''),
  }));
}

function rewrite(file: string, lines: string[]): void {
  fs.writeFileSync(file, lines.map((l) => l + '\n').join(''));
}

test('an untouched journal verifies, across segments and checkpoints', async () => {
  const dir = tmpAuditDir();
  await writeJournal(dir, 60, 2000);
  assert.ok(listSegments(dir).length > 3, 'several segments');
  const r = verifyJournal(dir, loadPublicKey(dir));
  assert.equal(r.ok, true, r.problem?.message);
  assert.equal(r.records, 60);
  assert.equal(r.lastSeq, 60);
  assert.equal(r.signedThrough, 60, 'close writes a final checkpoint');
  assert.ok(r.checkpoints >= 4, `checkpoints: ${r.checkpoints}`);
});

test('every single-byte flip in any record is detected and names that record', async () => {
  const dir = tmpAuditDir();
  await writeJournal(dir, 30);
  const [seg] = linesOf(dir);
  const original = fs.readFileSync(seg!.file);
  // Flip one byte in several positions of several records, including the last one (covered by the checkpoint only).
  for (const recordIndex of [0, 5, 17, 29]) {
    const line = seg!.lines[recordIndex]!;
    for (const pos of [2, 12, Math.floor(line.length / 2), line.length - 5]) {
      const lines = [...seg!.lines];
      const chars = [...line];
      chars[pos] = chars[pos] === 'a' ? 'b' : 'a';
      lines[recordIndex] = chars.join('');
      rewrite(seg!.file, lines);
      const r = verifyJournal(dir, loadPublicKey(dir));
      assert.equal(r.ok, false, `flip at record ${recordIndex} pos ${pos} undetected`);
      assert.equal(r.problem!.line, recordIndex + 1, `names line ${recordIndex + 1}: ${r.problem!.message}`);
    }
  }
  fs.writeFileSync(seg!.file, original);
  assert.equal(verifyJournal(dir, loadPublicKey(dir)).ok, true);
});

test('deleting, inserting and swapping records are each detected and named', async () => {
  const dir = tmpAuditDir();
  await writeJournal(dir, 30);
  const [seg] = linesOf(dir);
  const key = loadPublicKey(dir);
  for (const i of [0, 10, 29]) {
    const lines = [...seg!.lines];
    lines.splice(i, 1);
    rewrite(seg!.file, lines);
    const r = verifyJournal(dir, key);
    assert.equal(r.ok, false, `deleting record ${i + 1} undetected`);
    assert.ok(r.problem!.kind === 'deleted' || r.problem!.kind === 'truncated', r.problem!.message);
    assert.match(r.problem!.message, new RegExp(`seq ${i === 29 ? 29 : i + 1}\\b`));
  }
  {
    const lines = [...seg!.lines];
    lines.splice(12, 0, lines[5]!); // replay an old record
    rewrite(seg!.file, lines);
    const r = verifyJournal(dir, key);
    assert.equal(r.ok, false);
    assert.equal(r.problem!.kind, 'inserted');
    assert.equal(r.problem!.line, 13);
  }
  {
    const lines = [...seg!.lines];
    lines.splice(12, 0, lines[12]!.replace('"/p/', '"/q/')); // a forged record
    rewrite(seg!.file, lines);
    const r = verifyJournal(dir, key);
    assert.equal(r.ok, false);
    assert.equal(r.problem!.line, 13, r.problem!.message);
  }
  {
    const lines = [...seg!.lines];
    [lines[20], lines[21]] = [lines[21]!, lines[20]!];
    rewrite(seg!.file, lines);
    const r = verifyJournal(dir, key);
    assert.equal(r.ok, false);
    assert.equal(r.problem!.kind, 'reordered');
    assert.equal(r.problem!.seq, 22);
    assert.equal(r.problem!.line, 21);
  }
  {
    // Modified and rehashed so the record is self-consistent: the next record's link names it.
    const lines = [...seg!.lines];
    const canonical = canonicalOf(lines[9]!)!.canonical.replace('"/p/9"', '"/p/X"');
    lines[9] = `${canonical.slice(0, -1)},"hash":"${sha256Hex(canonical)}"}`;
    rewrite(seg!.file, lines);
    const r = verifyJournal(dir, key);
    assert.equal(r.ok, false);
    assert.equal(r.problem!.kind, 'modified');
    assert.equal(r.problem!.seq, 10, r.problem!.message);
  }
  rewrite(seg!.file, seg!.lines);
  assert.equal(verifyJournal(dir, key).ok, true);
});

test('a rewritten chain (all hashes recomputed) fails the signed checkpoint; a foreign key is refused', async () => {
  const dir = tmpAuditDir();
  await writeJournal(dir, 25);
  const other = tmpAuditDir();
  await writeJournal(other, 25);
  // Same shape, different content and chain: swap in the other journal's segment (valid chain, wrong signatures).
  const [seg] = linesOf(dir);
  const [otherSeg] = linesOf(other);
  rewrite(seg!.file, otherSeg!.lines);
  const r = verifyJournal(dir, loadPublicKey(dir));
  assert.equal(r.ok, false);
  assert.match(r.problem!.message, /signed checkpoint/);
  const foreign = verifyJournal(other, loadPublicKey(dir));
  assert.equal(foreign.ok, false);
  assert.equal(foreign.problem!.kind, 'bad-checkpoint');
});

test('a torn last line from a crash is cut on open and the chain continues', async () => {
  const dir = tmpAuditDir();
  await writeJournal(dir, 10);
  const [seg] = linesOf(dir);
  fs.appendFileSync(seg!.file, '{"v":1,"seq":11,"id":"X","ti');
  await writeJournal(dir, 5);
  const r = verifyJournal(dir, loadPublicKey(dir));
  assert.equal(r.ok, true, r.problem?.message);
  assert.equal(r.lastSeq, 15);
});

test('export: time window, JSON lines as stored, CEF escaping', async () => {
  const dir = tmpAuditDir();
  await writeJournal(dir, 5);
  const all = [...exportRecords(dir, { format: 'jsonl', version: '1' })];
  assert.equal(all.length, 5);
  assert.deepEqual(all, linesOf(dir)[0]!.lines);
  assert.equal(
    [...exportRecords(dir, { format: 'jsonl', version: '1', since: new Date(Date.now() + 60_000) })].length,
    0,
  );
  const cef = [...exportRecords(dir, { format: 'cef', version: '1' })];
  assert.match(
    cef[0]!,
    /^CEF:0\|kycgate\|kycgate\|1\|http\.request\|GET r 200\|3\|rt=\d+ externalId=\S+ cn1=1 cn1Label=seq /,
  );
  assert.equal(cefValue('a=b\\c\nd'), 'a\\=b\\\\c\\nd');
  assert.equal(cefHeader('a|b\\c'), 'a\\|b\\\\c');
});

test('retention deletes old segments only once every sink has delivered them; verify still passes', async () => {
  const dir = tmpAuditDir();
  const logger = memoryLogger().logger;
  const journal = new Journal({
    auditDir: dir,
    durability: 'group',
    groupCommitMs: 1,
    segmentBytes: 1500,
    checkpointRecords: 5,
    checkpointSeconds: 60,
    maxPending: 1000,
    diskAlarmBytes: 0,
    privateKey: signingKey(dir, undefined),
    logger,
  });
  journal.open();
  for (let i = 0; i < 40; i++) {
    journal.append({ kind: 'event', time: Date.now(), type: 'key.created', outcome: 'ok' });
    await journal.flush();
  }
  const segments = listSegments(dir);
  assert.ok(segments.length >= 4);
  const old = new Date(Date.now() - 3 * 86_400_000);
  for (const s of segments) fs.utimesSync(s.file, old, old);
  // A sink that has delivered up to the end of the second segment: only the first two may go.
  const delivered = segments[2]!.firstSeq - 1;
  applyRetention(
    journal,
    [{ cursor: { seq: delivered, segment: segments[2]!.firstSeq, offset: 0 } } as unknown as SinkRunner],
    1,
    logger,
  );
  assert.deepEqual(
    listSegments(dir).map((s) => s.firstSeq),
    segments.slice(2).map((s) => s.firstSeq),
  );
  // Not old enough: nothing goes even when delivered.
  applyRetention(journal, [{ cursor: { seq: 1e9, segment: 0, offset: 0 } } as unknown as SinkRunner], 30, logger);
  assert.equal(listSegments(dir).length, segments.length - 2);
  await journal.close();
  const r = verifyJournal(dir, loadPublicKey(dir));
  assert.equal(r.ok, true, r.problem?.message);
  assert.equal(r.firstSeq, segments[2]!.firstSeq);
});

function syncJournal(dir: string, maxPending: number, logger = memoryLogger().logger): Journal {
  return new Journal({
    auditDir: dir,
    durability: 'sync',
    groupCommitMs: 5000,
    segmentBytes: 1 << 20,
    checkpointRecords: 1000,
    checkpointSeconds: 60,
    maxPending,
    diskAlarmBytes: 0,
    privateKey: signingKey(dir, undefined),
    logger,
  });
}

const entryN = (i: number): AuditEntry => ({
  kind: 'request',
  time: Date.now(),
  type: 'http.request',
  requestId: `d${i}`,
  route: 'r',
  method: 'GET',
  path: `/d/${i}`,
  status: 200,
  latencyMs: 1,
});

test('appendDurable: true only once on disk; a failed write (ENOSPC) returns false and is retried in order; the bound counts drops', async () => {
  const dir = tmpAuditDir();
  const { logger, raw } = memoryLogger();
  const journal = syncJournal(dir, 4, logger);
  journal.open();
  assert.equal(journal.appendDurable(entryN(1)), true);
  assert.equal(journal.committed.seq, 1);
  // Writes to /dev/full fail with ENOSPC: a real failing disk under the journal.
  const full = fs.openSync('/dev/full', 'w');
  let segmentFd = journal.swapSegmentFdForTest(full);
  try {
    assert.equal(journal.appendDurable(entryN(2)), false, 'a failed write is reported');
    assert.equal(journal.writable, false);
    assert.ok(journal.stats.writeErrors >= 1);
    assert.equal(journal.committed.seq, 1);
    assert.equal(journal.appendDurable(entryN(3)), false);
    assert.equal(journal.pendingCount, 2, 'entries of failed writes are held, not lost');
    // A withdrawn entry (the audit policy answered 503 instead) is never written.
    const withdrawn = entryN(99);
    assert.equal(journal.appendDurable(withdrawn), false);
    assert.equal(journal.withdraw(withdrawn), true);
    journal.append(entryN(4));
    journal.append(entryN(5));
    assert.equal(journal.pendingCount, 4);
    // max_pending_records reached: the durable path drops like the queued one, and both are counted.
    assert.equal(journal.appendDurable(entryN(6)), false);
    journal.append(entryN(7));
    assert.equal(journal.stats.dropped, 2);
    assert.equal(journal.pendingCount, 4);
    assert.ok(
      raw.some((l) => l.includes('records are being DROPPED')),
      'drops are logged',
    );
  } finally {
    journal.swapSegmentFdForTest(segmentFd);
  }
  // The disk is back: the retry scheduled by the failure writes what was held.
  await new Promise<void>((resolve) => journal.onCommit(() => resolve()));
  assert.equal(journal.committed.seq, 5);
  assert.equal(journal.pendingCount, 0);
  assert.equal(journal.writable, true);
  // Fail once more, then the next durable append writes the held entry and itself before returning true.
  segmentFd = journal.swapSegmentFdForTest(full);
  assert.equal(journal.appendDurable(entryN(8)), false);
  journal.swapSegmentFdForTest(segmentFd);
  fs.closeSync(full);
  assert.equal(journal.appendDurable(entryN(9)), true);
  assert.equal(journal.pendingCount, 0);
  assert.equal(journal.committed.seq, 7);
  await journal.close();
  const r = verifyJournal(dir, loadPublicKey(dir));
  assert.equal(r.ok, true, r.problem?.message);
  const ids = [...linesOf(dir)[0]!.lines].map((l) => (JSON.parse(l) as { request_id: string }).request_id);
  assert.deepEqual(ids, ['d1', 'd2', 'd3', 'd4', 'd5', 'd8', 'd9']);
});

test('an unfinished last line of checkpoints.jsonl is cut on open (logged), and verify passes after more writes', async () => {
  const dir = tmpAuditDir();
  await writeJournal(dir, 10);
  const cpFile = path.join(dir, 'checkpoints.jsonl');
  const complete = fs.readFileSync(cpFile, 'utf8');
  fs.appendFileSync(cpFile, '{"v":1,"seq":11,"hash":"ab');
  assert.equal(verifyJournal(dir, loadPublicKey(dir)).ok, false, 'the fragment is what breaks verify');
  const { logger, raw } = memoryLogger();
  const journal = syncJournal(dir, 1000, logger);
  journal.open();
  assert.ok(
    raw.some((l) => l.includes('incomplete last checkpoint line removed')),
    'the cut is logged',
  );
  assert.equal(fs.readFileSync(cpFile, 'utf8'), complete);
  for (let i = 0; i < 5; i++) assert.equal(journal.appendDurable(entryN(i)), true);
  await journal.close();
  const r = verifyJournal(dir, loadPublicKey(dir));
  assert.equal(r.ok, true, r.problem?.message);
  assert.equal(r.lastSeq, 15);
  assert.equal(r.signedThrough, 15);
});

test('durability sync: state-changing events are fsynced inside emit, refusals of single requests are group-committed', async () => {
  const dir = tmpAuditDir();
  const journal = syncJournal(dir, 1000);
  journal.open();
  const recorder = new AuditRecorder(journal, true, {
    request_headers: [],
    response_headers: [],
    redact_headers: [],
    separate_request_events: true,
  } as unknown as AuditConfig);
  for (const type of [
    'ratelimit.rejected',
    'auth.failure',
    'network.refused',
    'validation.failed',
    'webhook.refused',
    'authz.denied',
    'kyc.decision',
  ]) {
    recorder.onEvent({ type, requestId: 'bad', outcome: 'refused' });
    assert.equal(journal.committed.seq, 0, `${type} is not fsynced on the event loop`);
  }
  assert.equal(journal.pendingCount, 7, 'but queued for the group commit');
  recorder.onEvent({ type: 'key.revoked', outcome: 'revoked', data: { key_id: 'k1' } });
  assert.equal(journal.committed.seq, 8, 'key.revoked is on disk when emit returns (with everything queued before it)');
  for (const type of [
    'key.created',
    'key.rotated',
    'secret.rotated',
    'config.reloaded',
    'webhook.accepted',
    'kyc.status.changed',
  ])
    assert.equal(eventNeedsSync(type), true, type);
  await journal.close();
  assert.equal(verifyJournal(dir, loadPublicKey(dir)).ok, true);
});

test('group commit: under a steady stream of records the journal writes and fsyncs once per window, not back to back', async () => {
  const dir = tmpAuditDir();
  const windowMs = 50;
  const journal = new Journal({
    auditDir: dir,
    durability: 'group',
    groupCommitMs: windowMs,
    segmentBytes: 1 << 26,
    checkpointRecords: 1_000_000,
    checkpointSeconds: 60,
    maxPending: 1_000_000,
    diskAlarmBytes: 0,
    privateKey: signingKey(dir, undefined),
    logger: memoryLogger().logger,
  });
  journal.open();
  const started = Date.now();
  let n = 0;
  // About 20 records per millisecond for at least 400 ms, and on until three commits are done (on a loaded machine
  // one fsync can take most of 400 ms): every commit finds new records waiting when its fsync returns.
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      for (let i = 0; i < 20; i++)
        journal.append({
          kind: 'request',
          time: Date.now(),
          type: 'http.request',
          requestId: `r${n++}`,
          route: 'r',
          method: 'GET',
          path: '/p',
          status: 200,
          latencyMs: 1,
        });
      if (Date.now() - started >= 400 && (journal.stats.batches >= 3 || Date.now() - started >= 30_000)) {
        clearInterval(tick);
        resolve();
      }
    }, 1);
  });
  const elapsed = Date.now() - started;
  const batches = journal.stats.batches;
  await journal.close();
  assert.ok(batches >= 2, `several commits (${batches})`);
  assert.ok(
    batches <= Math.ceil(elapsed / windowMs) + 1,
    `${batches} commits in ${elapsed} ms with a ${windowMs} ms window`,
  );
  const r = verifyJournal(dir, loadPublicKey(dir));
  assert.equal(r.ok, true, r.problem?.message);
  assert.equal(r.records, n, 'every record is written');
});

test('checkpoints: with few records a signed checkpoint is still written every checkpoint_seconds, by the timer alone', async (t) => {
  t.mock.timers.enable({ apis: ['Date', 'setInterval', 'setTimeout'], now: Date.now() });
  const dir = tmpAuditDir();
  const journal = new Journal({
    auditDir: dir,
    durability: 'group',
    groupCommitMs: 50,
    segmentBytes: 1 << 20,
    checkpointRecords: 10_000,
    checkpointSeconds: 2,
    maxPending: 1000,
    diskAlarmBytes: 0,
    privateKey: signingKey(dir, undefined),
    logger: memoryLogger().logger,
  });
  journal.open();
  for (let i = 0; i < 3; i++)
    journal.append({
      kind: 'request',
      time: Date.now(),
      type: 'http.request',
      requestId: `r${i}`,
      route: 'r',
      method: 'GET',
      path: '/p',
      status: 200,
      latencyMs: 1,
    });
  t.mock.timers.tick(50); // the group commit of the three records (its timer is used up)
  await journal.flush();
  assert.equal(journal.committed.seq, 3);
  assert.equal(journal.stats.batches, 1);
  assert.equal(journal.stats.checkpoints, 0, 'three records are far from checkpoint_records, and no time has passed');
  // Two seconds later, with nothing else happening, the checkpoint timer commits a checkpoint on its own.
  t.mock.timers.tick(2000);
  t.mock.timers.tick(1);
  for (let turns = 0; journal.stats.checkpoints === 0 && turns < 100_000; turns++)
    await new Promise((resolve) => setImmediate(resolve));
  assert.equal(journal.stats.checkpoints, 1);
  const r = verifyJournal(dir, loadPublicKey(dir));
  assert.equal(r.ok, true, r.problem?.message);
  assert.equal(r.signedThrough, 3, 'the checkpoint covers the three records');
  await journal.close();
});
