/**
 * The store's own outage is an incident too, though it cannot be written while the store is down: the instance
 * keeps what it saw and records it, with the times it was first and last seen, once PostgreSQL answers again.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestGateway, startUpstream } from '../../../testing/harness.js';
import { startTcpRelay } from '../../../testing/tcp-relay.js';
import { POSTGRES_URL, requirePostgres, uniqueName } from '../../../testing/services.js';
import { PostgresStore } from '../../store/postgres.js';
import type { GatewayEvent } from '../../pipeline/events.js';
import { IncidentStore } from './store.js';

test('PostgreSQL unreachable: the store incident is recorded once it answers, with when it was first and last seen', async (t) => {
  if (!(await requirePostgres(t))) return;
  const schema = uniqueName('inc');
  const relay = await startTcpRelay(5432);
  const upstream = await startUpstream((_req, res) => res.end('ok'));
  const gw = await startTestGateway({
    store: {
      driver: 'postgres',
      postgres: { url: `postgres://postgres@127.0.0.1:${relay.port}/test`, schema, query_timeout_ms: 1000 },
    },
    upstreams: { app: { targets: [{ url: upstream.url }] } },
    routes: [{ name: 'api', match: { prefix: '/api' }, upstream: 'app' }],
    incidents: {
      enabled: true,
      instance: 'gw',
      interval_ms: 100,
      window_ms: 1000,
      confirm_ms: 300,
      close_after_ms: 1000,
    },
  });
  const pg = new PostgresStore({ connectionString: POSTGRES_URL, schema });
  t.after(async () => {
    await gw.close();
    await upstream.close();
    await relay.close();
    await pg.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => undefined);
    await pg.close();
  });
  const opened = new Promise<GatewayEvent>((resolve) => {
    const off = gw.gateway.services.events.on('incident.opened', (e) => {
      off();
      resolve(e);
    });
  });
  const cutAt = Date.now();
  await relay.cut('refuse');
  // The detector's own queries fail, the store is down; hold the outage well past confirm_ms.
  await new Promise((r) => setTimeout(r, 2000));
  await relay.restore();
  const restoredAt = Date.now();
  const e = await opened;
  assert.equal(e.data?.cause, 'store');
  const incidents = new IncidentStore(pg);
  const incident = (await incidents.get(String(e.data?.incident)))!;
  assert.ok(incident.detectedAt >= cutAt && incident.detectedAt < restoredAt, 'opened at the time it was first seen');
  assert.ok(
    await (async () => {
      for (let i = 0; i < 200; i++) {
        if ((await incidents.get(incident.id))?.status === 'closed') return true;
        await new Promise((r) => setTimeout(r, 50));
      }
      return false;
    })(),
    'closed after close_after_ms',
  );
  // Recorded when the store answered again: at once if the outage was still seen then, or late, from memory.
  const timeline = await incidents.timeline(incident.id);
  const types = timeline.map((x) => x.type);
  assert.deepEqual([types[0], types.at(-1)], ['opened', 'closed'], types.join(','));
  const cleared = timeline.find((x) => x.type === 'cleared');
  assert.ok(cleared, types.join(','));
  assert.ok(cleared.at >= incident.detectedAt && cleared.at <= Date.now());
  const late = timeline[0]!.detail.recorded_late === true;
  console.log(
    `# store incident: first seen ${incident.detectedAt - cutAt} ms after the cut, ` +
      `cleared ${cleared.at - restoredAt} ms after the restore, recorded late: ${late}`,
  );
});
