/**
 * The admin API's reading of an audit trail with one chain per worker (`server.workers` > 1): a query pages
 * through every worker's records as one list in time order, each exactly once, and an export merges them the
 * same way.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { memoryLogger } from '../../testing/harness.js';
import { Journal } from '../audit/journal.js';
import type { AuditEntry } from '../audit/record.js';
import { workerChainDir } from '../audit/segments.js';
import { signingKey } from '../audit/subsystem.js';
import { exportTrail, queryTrail, type TrailCursor } from './audit-query.js';

const T0 = Date.parse('2026-12-07T10:00:00.000Z');

/** Writes one worker's chain: requests at the given offsets (ms after T0), named by worker and position. */
async function writeChain(trailDir: string, slot: number, offsets: number[]): Promise<void> {
  const dir = workerChainDir(trailDir, slot);
  const journal = new Journal({
    auditDir: dir,
    durability: 'group',
    groupCommitMs: 1,
    segmentBytes: 1 << 20,
    checkpointRecords: 1000,
    checkpointSeconds: 60,
    maxPending: 10_000,
    diskAlarmBytes: 0,
    privateKey: signingKey(trailDir, undefined),
    logger: memoryLogger().logger,
  });
  journal.open();
  offsets.forEach((ms, i) => {
    const entry: AuditEntry = {
      kind: 'request',
      time: T0 + ms,
      type: 'http.request',
      requestId: `w${slot}-${i}`,
      route: i % 3 === 0 ? 'payments' : 'orders',
      method: 'GET',
      path: '/',
      status: 200,
    };
    journal.append(entry);
  });
  await journal.close();
}

async function trail(): Promise<string> {
  const trailDir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'kycgate-trail-')), 'audit');
  // Interleaved in time, and worker 1 busier than worker 0.
  await writeChain(trailDir, 0, [0, 10, 20, 30, 40, 50, 60]);
  await writeChain(trailDir, 1, [5, 6, 7, 15, 25, 26, 27, 28, 45, 55, 65, 66]);
  return trailDir;
}

async function pageThrough(trailDir: string, order: 'asc' | 'desc', limit: number, route?: string) {
  const seen: string[] = [];
  let after: TrailCursor | undefined;
  let pages = 0;
  for (;;) {
    const page = await queryTrail(trailDir, route ? { route } : {}, { order, limit, ...(after ? { after } : {}) });
    assert.ok(page.items.length <= limit);
    for (const r of page.items) seen.push(`${r.request_id}@${Date.parse(r.time) - T0}`);
    pages++;
    assert.ok(pages < 50, 'the cursor moves on');
    if (page.next === undefined) return seen;
    after = page.next;
  }
}

test('a query over several workers pages through every record once, in time order, either way', async () => {
  const trailDir = await trail();
  const times = (list: string[]) => list.map((s) => Number(s.split('@')[1]));
  for (const limit of [1, 3, 5, 50]) {
    const asc = await pageThrough(trailDir, 'asc', limit);
    assert.equal(asc.length, 19, `limit ${limit}: every record`);
    assert.equal(new Set(asc).size, 19, `limit ${limit}: none twice`);
    assert.deepEqual(
      times(asc),
      [...times(asc)].sort((a, b) => a - b),
      `limit ${limit}: oldest first`,
    );
    const desc = await pageThrough(trailDir, 'desc', limit);
    assert.deepEqual(desc, [...asc].reverse(), `limit ${limit}: newest first is the same list reversed`);
  }
  const payments = await pageThrough(trailDir, 'desc', 2, 'payments');
  assert.deepEqual(
    payments,
    ['w1-9@55', 'w0-6@60', 'w1-6@27', 'w0-3@30', 'w1-3@15', 'w0-0@0', 'w1-0@5'].sort(
      (a, b) => Number(b.split('@')[1]) - Number(a.split('@')[1]),
    ),
  );
});

test('an export of several workers merges their records in time order', async () => {
  const trailDir = await trail();
  let text = '';
  for await (const chunk of exportTrail(trailDir, { format: 'jsonl', version: 'test' })) text += chunk;
  const records = text
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { request_id: string; time: string });
  assert.equal(records.length, 19);
  const t = records.map((r) => Date.parse(r.time));
  assert.deepEqual(
    t,
    [...t].sort((a, b) => a - b),
  );
  let windowed = '';
  const since = T0 + 20;
  const until = T0 + 50;
  for await (const chunk of exportTrail(trailDir, { format: 'jsonl', version: 'test', since, until }))
    windowed += chunk;
  const inWindow = windowed
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { request_id: string });
  assert.deepEqual(
    inWindow.map((r) => r.request_id),
    ['w0-2', 'w1-4', 'w1-5', 'w1-6', 'w1-7', 'w0-3', 'w0-4', 'w1-8'],
  );
});
