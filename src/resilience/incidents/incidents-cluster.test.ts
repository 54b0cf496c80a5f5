/**
 * Incident detection on two gateway instances sharing PostgreSQL: both upstream targets of a critical route are
 * killed under traffic, both instances see it, and the store holds ONE incident for the cause, classified from the
 * figures both measured, with a timeline from both, closed when the upstream recovers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestGateway, startUpstream, httpRequest, type TestGateway } from '../../../testing/harness.js';
import { startTcpRelay } from '../../../testing/tcp-relay.js';
import { POSTGRES_URL, requirePostgres, uniqueName } from '../../../testing/services.js';
import { PostgresStore } from '../../store/postgres.js';
import type { AuthService } from '../../auth/subsystem.js';
import { IncidentStore, type Incident } from './store.js';

async function until<T>(what: string, limitMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const started = Date.now();
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() - started > limitMs) throw new Error(`${what}: not within ${limitMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('an upstream killed under traffic: one incident on two instances, classified, closed on recovery (PostgreSQL)', async (t) => {
  if (!(await requirePostgres(t))) return;
  const schema = uniqueName('inc');
  const upstream = await startUpstream((req, res) => res.end(req.url === '/health' ? 'ok' : 'paid'));
  const relays = [await startTcpRelay(upstream.port), await startTcpRelay(upstream.port)];
  const config = (instance: string) => ({
    store: { driver: 'postgres', postgres: { url: POSTGRES_URL, schema, query_timeout_ms: 10_000 } },
    consumers: { shop: {}, bank: {} },
    upstreams: {
      core: {
        targets: relays.map((r) => ({ url: `http://127.0.0.1:${r.port}` })),
        active_health: { path: '/health', interval_ms: 200, unhealthy_after: 2, healthy_after: 1, timeout_ms: 2000 },
      },
    },
    routes: [
      {
        name: 'payments',
        match: { prefix: '/payments' },
        upstream: 'core',
        critical: true,
        function: 'payments',
        policies: [{ authenticate: { methods: [{ 'api-key': {} }] } }],
      },
    ],
    incidents: {
      enabled: true,
      instance,
      interval_ms: 200,
      window_ms: 1000,
      close_after_ms: 1500,
      confirm_ms: 300,
      slo: { default: { min_requests: 5 } },
      classification: {
        functions: { payments: { clients: 2, daily_transactions: 50 } },
        downtime_hours: 0.0001,
      },
    },
  });
  const a = await startTestGateway(config('gw-a'));
  const b = await startTestGateway(config('gw-b'));
  const pg = new PostgresStore({ connectionString: POSTGRES_URL, schema });
  const incidents = new IncidentStore(pg);
  let sending = true;
  const traffic: Promise<void>[] = [];
  t.after(async () => {
    sending = false;
    await Promise.allSettled(traffic);
    await a.close();
    await b.close();
    for (const r of relays) await r.close();
    await upstream.close();
    await pg.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => undefined);
    await pg.close();
  });
  const auth = a.gateway.services.get<AuthService>('auth');
  const keys = [(await auth.createKey({ consumer: 'shop' })).key, (await auth.createKey({ consumer: 'bank' })).key];
  const statuses: number[] = [];
  const drive = async (gw: TestGateway, key: string) => {
    while (sending) {
      const res = await httpRequest(gw.url + '/payments/1', { headers: { 'x-api-key': key } }).catch(() => undefined);
      if (res !== undefined) statuses.push(res.status);
      await new Promise((r) => setTimeout(r, 15));
    }
  };
  traffic.push(drive(a, keys[0]!), drive(b, keys[1]!), drive(a, keys[1]!), drive(b, keys[0]!));
  await until('traffic served', 20_000, async () =>
    statuses.filter((s) => s === 200).length >= 40 ? true : undefined,
  );
  assert.deepEqual(await incidents.list(0, Date.now() + 1000), [], 'no incident while the upstream serves');

  const killedAt = Date.now();
  for (const r of relays) await r.cut('refuse');
  const both = await until('incident seen by both instances', 30_000, async () => {
    const open = (await incidents.list(0, Date.now() + 1000)).filter((i) => i.cause === 'upstream:core');
    if (open.length === 0) return undefined;
    const timeline = await incidents.timeline(open[0]!.id);
    const by = new Set(timeline.filter((e) => e.type === 'opened' || e.type === 'seen').map((e) => e.instance));
    return by.has('gw-a') && by.has('gw-b') ? open : undefined;
  });
  assert.equal(both.length, 1, 'one incident for the cause across both instances');
  const incident = both[0]!;
  console.log(`# incident ${incident.id} opened ${incident.detectedAt - killedAt} ms after the upstream was killed`);
  // Let the outage last a little beyond the downtime threshold (0.36 s), then bring the upstream back.
  await new Promise((r) => setTimeout(r, 1000));
  for (const r of relays) await r.restore();
  const restoredAt = Date.now();
  const closed = await until('incident closed after recovery', 30_000, async () => {
    const i = await incidents.get(incident.id);
    return i?.status === 'closed' ? i : undefined;
  });
  console.log(
    `# closed ${closed.closedAt! - restoredAt} ms after the targets came back (passive ejection 10 s, close_after_ms 1.5 s)`,
  );

  const all: Incident[] = await incidents.list(0, Date.now() + 1000);
  assert.deepEqual(
    all.map((i) => i.cause),
    ['upstream:core'],
    'the route failures belong to the upstream incident, not to another one',
  );
  const timeline = await incidents.timeline(incident.id);
  const types = timeline.map((e) => `${e.type}@${e.instance}`);
  assert.equal(timeline[0]!.type, 'opened');
  assert.ok(types.includes('cleared@gw-a') && types.includes('cleared@gw-b'), types.join(', '));
  assert.equal(timeline.at(-1)!.type, 'closed');

  const c = closed.classification as Record<string, any>;
  assert.ok(c, 'classified');
  assert.deepEqual(c.affected.critical_routes, ['payments']);
  assert.ok(c.figures.routes.payments.failed > 0);
  assert.deepEqual(c.figures.instances, ['gw-a', 'gw-b'], 'figures measured by both instances');
  assert.equal(c.figures.consumers, 2, 'both consumers were affected');
  assert.equal(c.criteria.clients_transactions.met, true);
  assert.equal(c.criteria.duration_downtime.met, true, JSON.stringify(c.criteria.duration_downtime));
  assert.equal(c.major, true, c.reasons.join('; '));
  assert.ok(closed.classifiedAt! >= closed.detectedAt);
});
