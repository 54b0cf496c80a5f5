/**
 * Reading the audit trail for the admin API without holding up the event loop (the request path shares it):
 * segments are read asynchronously, records are parsed in slices with a yield between them, a time window skips
 * whole segments, and a query stops after a bounded number of records with a cursor to go on from. With
 * `server.workers` > 1 the trail has one chain per worker; queries and exports read them as one, merged in time
 * order, as `kycgate audit export` does. Verification runs in a worker thread.
 */
import { open, readFile } from 'node:fs/promises';
import { Worker } from 'node:worker_threads';
import { chainsOf, listSegments, type Segment } from '../audit/segments.js';
import { toCef } from '../audit/export.js';
import type { VerifyResult } from '../audit/verify.js';

export interface AuditFilter {
  since?: number;
  until?: number;
  request_id?: string;
  consumer?: string;
  subject?: string;
  outcome?: string;
  type?: string;
  route?: string;
}

const SLICE = 2000;
const yieldTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Time of a segment's first record (read from its first bytes), or undefined for an empty or damaged one. */
async function firstTime(seg: Segment): Promise<number | undefined> {
  const fd = await open(seg.file, 'r');
  try {
    const buf = Buffer.alloc(1024);
    const { bytesRead } = await fd.read(buf, 0, buf.length, 0);
    const m = /"time":"([^"]+)"/.exec(buf.subarray(0, bytesRead).toString('utf8'));
    return m ? Date.parse(m[1]!) : undefined;
  } finally {
    await fd.close();
  }
}

async function lines(seg: Segment): Promise<string[]> {
  const text = await readFile(seg.file, 'utf8').catch(() => '');
  const out = text.split('\n');
  if (out[out.length - 1] === '') out.pop();
  return out;
}

type Rec = Record<string, unknown> & { seq: number; time: string };

function matches(r: Rec, f: AuditFilter): boolean {
  const t = Date.parse(r.time);
  if (f.since !== undefined && !(t >= f.since)) return false;
  if (f.until !== undefined && !(t < f.until)) return false;
  if (f.request_id !== undefined && r.request_id !== f.request_id) return false;
  if (f.consumer !== undefined && r.consumer !== f.consumer) return false;
  if (f.type !== undefined && r.type !== f.type) return false;
  if (f.route !== undefined && r.route !== f.route) return false;
  const data = r.data as Record<string, unknown> | undefined;
  if (f.subject !== undefined && r.subject !== f.subject && data?.subject !== f.subject) return false;
  const decision = r.decision as { outcome?: string } | undefined;
  if (f.outcome !== undefined && decision?.outcome !== f.outcome && r.outcome !== f.outcome) return false;
  return true;
}

/** Strings a matching line must contain: tested before parsing, to skip most lines cheaply. */
function needles(f: AuditFilter): string[] {
  return [f.request_id, f.consumer, f.subject, f.type, f.route]
    .filter((v): v is string => v !== undefined)
    .map((v) => JSON.stringify(v));
}

export interface AuditPage {
  items: Rec[];
  /** Seq to continue after (asc) or before (desc), when there may be more. */
  next: number | undefined;
  scanned: number;
  complete: boolean;
}

export async function queryJournal(
  auditDir: string,
  filter: AuditFilter,
  o: { order: 'asc' | 'desc'; limit: number; after?: number; maxScan?: number },
): Promise<AuditPage> {
  const maxScan = o.maxScan ?? 50_000;
  const desc = o.order === 'desc';
  let segments = listSegments(auditDir);
  if (desc) segments = segments.reverse();
  const want = needles(filter);
  const items: Rec[] = [];
  let scanned = 0;
  let last: number | undefined;
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i]!;
    // Skip segments wholly outside the cursor or the time window.
    if (o.after !== undefined) {
      if (desc && seg.firstSeq >= o.after) continue;
      const next = desc ? undefined : segments[i + 1];
      if (!desc && next !== undefined && next.firstSeq <= o.after + 1) continue;
    }
    if (!desc && filter.since !== undefined && segments[i + 1] !== undefined) {
      const nextStart = await firstTime(segments[i + 1]!);
      if (nextStart !== undefined && nextStart < filter.since - 60_000) continue;
    }
    if (desc && filter.until !== undefined) {
      const start = await firstTime(seg);
      if (start !== undefined && start >= filter.until + 60_000) continue;
    }
    const all = await lines(seg);
    if (desc) all.reverse();
    for (let j = 0; j < all.length; j++) {
      if (j % SLICE === SLICE - 1) await yieldTurn();
      const line = all[j]!;
      const m = /^\{"v":1,"seq":(\d+),/.exec(line);
      if (!m) continue; // `verify` reports damaged lines
      const seq = Number(m[1]);
      if (o.after !== undefined && (desc ? seq >= o.after : seq <= o.after)) continue;
      scanned++;
      last = seq;
      if (want.every((w) => line.includes(w))) {
        let rec: Rec;
        try {
          rec = JSON.parse(line) as Rec;
        } catch {
          continue;
        }
        if (matches(rec, filter)) {
          items.push(rec);
          if (items.length >= o.limit) return { items, next: seq, scanned, complete: true };
        }
      }
      if (scanned >= maxScan && last !== undefined) return { items, next: last, scanned, complete: false };
    }
  }
  return { items, next: undefined, scanned, complete: true };
}

/** Where a query over several chains goes on from: the last seq read in each chain, by chain name. */
export type TrailCursor = Record<string, number>;

export interface TrailPage {
  items: Rec[];
  next: TrailCursor | undefined;
  scanned: number;
  complete: boolean;
}

/**
 * A query over every chain of the trail. Each chain is queried from its own cursor for up to `limit` records; the
 * pages are merged by time (then chain and seq, so the order is stable) and the first `limit` kept. A chain's next
 * cursor is its last record kept, or where its scan stopped when all it returned was kept; no cursor when every
 * chain has been read to its end.
 */
export async function queryTrail(
  trailDir: string,
  filter: AuditFilter,
  o: { order: 'asc' | 'desc'; limit: number; after?: TrailCursor; maxScan?: number },
): Promise<TrailPage> {
  const chains = chainsOf(trailDir);
  const desc = o.order === 'desc';
  // The scan bound is the page's, shared by the chains.
  const maxScan = Math.ceil((o.maxScan ?? 50_000) / chains.length);
  const pages = await Promise.all(
    chains.map(async (c) => {
      const after = o.after?.[c.name];
      const page = await queryJournal(c.dir, filter, {
        order: o.order,
        limit: o.limit,
        ...(after !== undefined ? { after } : {}),
        maxScan,
      });
      return { chain: c.name, page };
    }),
  );
  const merged = pages.flatMap(({ chain, page }) => page.items.map((rec) => ({ chain, rec })));
  const key = (x: { chain: string; rec: Rec }) => Date.parse(x.rec.time);
  merged.sort((a, b) => {
    const d = key(a) - key(b) || a.chain.localeCompare(b.chain) || a.rec.seq - b.rec.seq;
    return desc ? -d : d;
  });
  const chosen = new Set(merged.slice(0, o.limit).map((x) => x.rec));
  // A chain's records are kept only as a prefix of its own scan order, so its cursor never skips one (times within
  // a chain can be a millisecond out of seq order); a record chosen past that prefix comes on the next page.
  const kept = new Set<Rec>();
  const next: TrailCursor = {};
  let more = false;
  for (const { chain, page } of pages) {
    let prefix = 0;
    while (prefix < page.items.length && chosen.has(page.items[prefix]!)) kept.add(page.items[prefix++]!);
    const position =
      prefix < page.items.length
        ? prefix > 0
          ? page.items[prefix - 1]!.seq
          : o.after?.[chain]
        : (page.next ?? (prefix > 0 ? page.items[prefix - 1]!.seq : o.after?.[chain]));
    if (position !== undefined) next[chain] = position;
    if (prefix < page.items.length || page.next !== undefined) more = true;
  }
  return {
    items: merged.filter((x) => kept.has(x.rec)).map((x) => x.rec),
    next: more ? next : undefined,
    scanned: pages.reduce((n, p) => n + p.page.scanned, 0),
    complete: pages.every((p) => p.page.complete),
  };
}

/** The records of one chain in [since, until), in order, read segment by segment with a yield between slices. */
async function* chainRecords(
  dir: string,
  since: number,
  until: number,
): AsyncGenerator<{ t: number; line: string; rec: Rec }> {
  const segments = listSegments(dir);
  for (let i = 0; i < segments.length; i++) {
    if (segments[i + 1] !== undefined) {
      const nextStart = await firstTime(segments[i + 1]!);
      if (nextStart !== undefined && nextStart < since - 60_000) continue;
    }
    const all = await lines(segments[i]!);
    for (let j = 0; j < all.length; j++) {
      if (j % SLICE === SLICE - 1) await yieldTurn();
      let rec: Rec;
      try {
        rec = JSON.parse(all[j]!) as Rec;
      } catch {
        continue;
      }
      const t = Date.parse(rec.time);
      if (t >= since && t < until) yield { t, line: all[j]!, rec };
    }
  }
}

/**
 * The lines of an export ([since, until), JSON lines as stored or CEF) of every chain of the trail, merged in time
 * order, read segment by segment.
 */
export async function* exportTrail(
  trailDir: string,
  o: { since?: number; until?: number; format: 'jsonl' | 'cef'; version: string },
): AsyncGenerator<string> {
  const chains = chainsOf(trailDir);
  const heads = await Promise.all(
    chains.map(async (c) => {
      const records = chainRecords(c.dir, o.since ?? -Infinity, o.until ?? Infinity);
      return { records, next: await records.next() };
    }),
  );
  let out = '';
  let n = 0;
  for (;;) {
    let pick: (typeof heads)[number] | undefined;
    for (const h of heads) if (!h.next.done && (pick === undefined || h.next.value.t < pick.next.value!.t)) pick = h;
    if (pick === undefined) break;
    const { line, rec } = pick.next.value!;
    out += (o.format === 'jsonl' ? line : toCef(rec, o.version)) + '\n';
    if (++n % SLICE === 0) {
      yield out;
      out = '';
    }
    pick.next = await pick.records.next();
  }
  if (out !== '') yield out;
}

let verifying: Promise<VerifyResult> | undefined;

/** Verifies the journal in a worker thread (one verification at a time; callers meanwhile share it). */
export function verifyInWorker(auditDir: string): Promise<VerifyResult> {
  verifying ??= new Promise<VerifyResult>((resolve, reject) => {
    const worker = new Worker(new URL('./verify-worker.js', import.meta.url), { workerData: { auditDir } });
    worker.once('message', (m: { result?: VerifyResult; error?: string }) =>
      m.result ? resolve(m.result) : reject(new Error(m.error ?? 'verification failed')),
    );
    worker.once('error', reject);
    worker.once('exit', (code) => code !== 0 && reject(new Error(`verification worker exited with ${code}`)));
  }).finally(() => {
    verifying = undefined;
  });
  return verifying;
}
