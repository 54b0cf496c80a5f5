/**
 * PostgreSQL that stops answering (a real server behind a relay the test freezes) or goes away (the relay refuses
 * connections) while the gateway runs: every request that needs the store answers 503 within the configured
 * deadline, connecting included, whatever state the pool's connections are in; the others keep flowing; all
 * recover as soon as the database is back.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { startTestGateway, httpRequest } from '../../testing/harness.js';
import { requirePostgres, uniqueName, POSTGRES_URL } from '../../testing/services.js';
import { startTcpRelay } from '../../testing/tcp-relay.js';
import { kycTestbed, eventually } from '../../testing/kyc-testbed.js';
import type { AuthService } from '../auth/subsystem.js';
import { PostgresStore } from './postgres.js';

/** The deadline configured below, and what a loaded 2-core machine may add to it (timers, scheduling). */
const DEADLINE_MS = 1000;
const BOUND_MS = DEADLINE_MS + 100 + 400;

test('a hung or unreachable PostgreSQL fails store-bound requests with 503 within the operation deadline (connect included); they recover when it is back', {
  timeout: 60_000,
}, async (t) => {
  if (!(await requirePostgres(t))) return;
  const bed = await kycTestbed(t);
  const relay = await startTcpRelay(5432);
  const schema = uniqueName('down');
  t.after(async () => {
    await relay.close();
    const admin = new PostgresStore({ connectionString: POSTGRES_URL });
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => undefined);
    await admin.close();
  });
  const gw = await startTestGateway(
    bed.config(
      {},
      {
        store: {
          driver: 'postgres',
          postgres: {
            url: `postgres://postgres@127.0.0.1:${relay.port}/test`,
            schema,
            pool_size: 4,
            query_timeout_ms: DEADLINE_MS,
          },
        },
        kyc: bed.sharedKeys(),
        consumers: { billing: { scopes: ['payments:read'] } },
        routes: [
          {
            name: 'keyed',
            match: { prefix: '/keyed' },
            upstream: 'api',
            policies: [{ authenticate: { methods: [{ 'api-key': {} }], failure_limit: { enabled: false } } }],
          },
          { name: 'open', match: { prefix: '/open' }, upstream: 'api' },
        ],
      },
    ),
    { baseDir: bed.dir },
  );
  t.after(() => gw.close());
  const auth = gw.gateway.services.get<AuthService>('auth');
  const known = await auth.createKey({ consumer: 'billing' });
  /** Keys this instance has not read yet (created through the store, not presented): six per round. */
  let unseen: Array<{ key: string }> = [];
  const newKeys = async () => {
    unseen = await Promise.all(Array.from({ length: 6 }, () => auth.createKey({ consumer: 'billing' })));
  };
  assert.equal((await httpRequest(gw.url + '/keyed/x', { headers: { 'x-api-key': known.key } })).status, 200);

  const timed = async (
    label: string,
    run: () => Promise<{ status: number; headers: Record<string, unknown>; body: string }>,
  ) => {
    const started = performance.now();
    const r = await run();
    return { label, ...r, waited: performance.now() - started };
  };
  /** Everything that needs the store at once: more than the pool holds. */
  const storeBound = (round: string) => [
    ...unseen.map((k, i) =>
      timed(`unseen key ${i}`, () => httpRequest(gw.url + '/keyed/x', { headers: { 'x-api-key': k.key } })),
    ),
    ...['ana', 'ben', 'cy'].map((u) =>
      timed(`new user ${u}`, () =>
        httpRequest(gw.url + '/api/x', { headers: { 'x-user-id': `${u}-${round}`, accept: 'application/json' } }),
      ),
    ),
    timed('webhook', () => {
      const hook = bed.provider.webhook(`session-${round}`, 'Approved');
      return httpRequest(gw.url + '/webhooks/testprov', { method: 'POST', headers: hook.headers, body: hook.body });
    }),
    timed('readyz', () => httpRequest(gw.adminUrl + '/readyz')),
  ];
  const worst: Record<string, number> = {};
  const check = (phase: string, results: Array<Awaited<ReturnType<typeof timed>>>) => {
    for (const r of results) {
      assert.equal(r.status, 503, `${phase}: ${r.label} answered ${r.status}`);
      assert.ok(
        r.waited < BOUND_MS,
        `${phase}: ${r.label} waited ${Math.round(r.waited)} ms (deadline ${DEADLINE_MS} ms)`,
      );
      worst[phase] = Math.max(worst[phase] ?? 0, Math.round(r.waited));
      if (r.label === 'readyz') continue;
      assert.equal(r.headers['content-type'], 'application/problem+json', `${phase}: ${r.label}`);
      assert.ok(Number(r.headers['retry-after']) >= 1, `${phase}: ${r.label} says when to retry`);
      if (r.label.startsWith('unseen')) assert.equal(JSON.parse(r.body).reason, 'key_store_unavailable');
    }
  };
  const recovered = async (phase: string) => {
    const started = performance.now();
    assert.ok(
      await eventually(
        async () =>
          (await httpRequest(gw.url + '/keyed/x', { headers: { 'x-api-key': unseen[0]!.key } })).status === 200,
        3000,
        20,
      ),
      `${phase}: the key is checked again once the store answers`,
    );
    assert.equal((await httpRequest(gw.adminUrl + '/readyz')).status, 200);
    return Math.round(performance.now() - started);
  };

  await newKeys();
  relay.freeze();
  // First round: the pool's connections hang; second round: new connections are accepted and never answered.
  check('freeze', await Promise.all(storeBound('f1')));
  unseen = unseen.slice(3); // half of them again, half never tried
  check('freeze', await Promise.all(storeBound('f2')));
  assert.equal(
    (await httpRequest(gw.url + '/keyed/x', { headers: { 'x-api-key': known.key } })).status,
    200,
    'a cached key needs no store',
  );
  assert.equal((await httpRequest(gw.url + '/open/x')).status, 200, 'routes without the store are not affected');
  relay.thaw();
  const afterThaw = await recovered('thaw');

  await newKeys();
  await relay.cut('refuse');
  check('cut', await Promise.all(storeBound('c1')));
  await relay.restore();
  const afterRestore = await recovered('restore');

  await newKeys();
  await relay.cut('reset');
  check('reset', await Promise.all(storeBound('r1')));
  await relay.restore();
  await recovered('reset restored');
  t.diagnostic(
    `longest wait (deadline ${DEADLINE_MS} ms): ${JSON.stringify(worst)}; recovered ${afterThaw} ms after thaw, ${afterRestore} ms after restore`,
  );
});
