/**
 * Local limits across workers: the supervisor's counters and two workers' leases, wired in-process through a channel
 * that answers asynchronously as IPC does. Whatever the interleaving, the workers together admit exactly what one
 * counter admits; unspent leases go back; a multi-limit request charges all limits or none.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ClusterChannel, ClusterHub } from '../../pipeline/cluster.js';
import { compileLimit, type CompiledLimit } from './limits.js';
import { ClusterCounters, LEASE_MS, serveClusterCounters, type LeaseTable } from './cluster-counters.js';
import { Verdict } from './verdict.js';

function cluster(workers: number): ClusterChannel[] {
  const handlers = new Map<string, (body: unknown, slot: number) => unknown>();
  const hub: ClusterHub = {
    workers,
    handle: (topic, handler) => void handlers.set(topic, handler),
    broadcast: () => undefined,
  };
  serveClusterCounters(hub);
  // Structured clones and a later turn, as over IPC.
  const call = (topic: string, body: unknown, slot: number) =>
    new Promise((resolve) => setImmediate(() => resolve(handlers.get(topic)!(structuredClone(body), slot))));
  return Array.from({ length: workers }, (_, slot) => ({
    slot,
    workers,
    shared: {},
    request: <T>(topic: string, body: unknown) => call(topic, body, slot) as Promise<T>,
    send: (topic: string, body: unknown) => void call(topic, body, slot),
    on: () => () => undefined,
    broadcast: () => undefined,
    share: () => undefined,
  }));
}

/** One request through a worker's leases (asking the supervisor when it must): admitted or not. */
async function decide(
  counters: ClusterCounters,
  tables: LeaseTable[],
  keys: string[],
  limits: CompiledLimit[],
  now = Date.now(),
): Promise<boolean> {
  const v = new Verdict();
  if (!counters.decideLocally(tables, keys, tables.length, now, false, v))
    await counters.acquire(tables, keys, limits, tables.length, false, v);
  return v.allowed;
}

test('two workers together admit exactly the limit, whichever worker each request reaches', async () => {
  const [a, b] = cluster(2).map((c) => new ClusterCounters(c));
  const limit = compileLimit({ rate: 25, per: 'hour', key: ['ip'] });
  const ta = a!.table('r', limit.name);
  const tb = b!.table('r', limit.name);
  let admitted = 0;
  // Uneven and concurrent: bursts of parallel requests on either worker.
  for (let round = 0; round < 20; round++) {
    const batch = [
      ...Array.from({ length: round % 3 }, () => decide(a!, [ta], ['1.2.3.4'], [limit])),
      ...Array.from({ length: 2 + (round % 2) }, () => decide(b!, [tb], ['1.2.3.4'], [limit])),
    ];
    for (const ok of await Promise.all(batch)) if (ok) admitted++;
  }
  assert.equal(admitted, 25);
  // Another client has its own counter.
  assert.equal(await decide(a!, [ta], ['5.6.7.8'], [limit]), true);
});

test('a lease not spent in time goes back, so the other worker can still admit those requests', async () => {
  const [a, b] = cluster(2).map((c) => new ClusterCounters(c));
  const limit = compileLimit({ rate: 40, per: 'hour', key: ['ip'] });
  const ta = a!.table('r', limit.name);
  const tb = b!.table('r', limit.name);
  // Worker A takes a batch (more than the one request) and stops receiving traffic.
  assert.equal(await decide(a!, [ta], ['k'], [limit]), true);
  const held = ta.leases.get('k')!.tokens;
  assert.ok(held > 0, 'the first grant is a batch');
  a!.sweep(Date.now() + LEASE_MS + 1);
  await new Promise((r) => setImmediate(r));
  let admitted = 1;
  for (let i = 0; i < 80; i++) if (await decide(b!, [tb], ['k'], [limit])) admitted++;
  assert.equal(admitted, 40);
});

test('several limits: a request refused by one charges none of them', async () => {
  const [a, b] = cluster(2).map((c) => new ClusterCounters(c));
  const small = compileLimit({ name: 'small', rate: 3, per: 'hour', key: ['header:x-tenant'] });
  const large = compileLimit({ name: 'large', rate: 10, per: 'hour', key: ['ip'] });
  const tables = (c: ClusterCounters) => [c.table('r', 'small'), c.table('r', 'large')];
  // Tenant t1 exhausts `small` (3) through both workers; the refused requests leave `large` uncharged.
  let admitted = 0;
  for (let i = 0; i < 8; i++)
    if (await decide(i % 2 ? a! : b!, tables(i % 2 ? a! : b!), ['t1', 'ip'], [small, large])) admitted++;
  assert.equal(admitted, 3);
  for (const c of [a!, b!]) c.sweep(Date.now() + LEASE_MS + 1);
  await new Promise((r) => setImmediate(r));
  // The same IP under other tenants still has 10 − 3 = 7 requests.
  let more = 0;
  for (let i = 0; i < 20; i++) if (await decide(a!, tables(a!), [`t${2 + (i % 5)}`, 'ip'], [small, large])) more++;
  assert.equal(more, 7);
});
