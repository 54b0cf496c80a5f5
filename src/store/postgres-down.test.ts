/**
 * PostgreSQL that stops answering while the gateway runs (a real server behind a relay the test freezes): requests
 * that need the store fail within the query timeout with 503, the others keep flowing, and all recover on thaw.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestGateway, startUpstream, httpRequest } from '../../testing/harness.js';
import { requirePostgres, uniqueName } from '../../testing/services.js';
import { startTcpRelay } from '../../testing/tcp-relay.js';
import type { AuthService } from '../auth/module.js';
import { PostgresStore } from './postgres.js';

test('a hung PostgreSQL fails store-bound requests with 503 within the query timeout; they recover when it answers again', { timeout: 30_000 }, async (t) => {
  if (!(await requirePostgres(t))) return;
  const relay = await startTcpRelay(5432);
  const schema = uniqueName('down');
  const upstream = await startUpstream((_req, res) => res.end('ok'));
  const gw = await startTestGateway({
    store: { driver: 'postgres', postgres: { url: `postgres://postgres@127.0.0.1:${relay.port}/test`, schema, pool_size: 4, query_timeout_ms: 500 } },
    consumers: { billing: { scopes: ['payments:read'] } },
    upstreams: { app: { targets: [{ url: upstream.url }] } },
    routes: [
      { name: 'api', match: { prefix: '/api' }, upstream: 'app', policies: [{ authenticate: { methods: [{ 'api-key': {} }], failure_limit: { enabled: false } } }] },
      { name: 'open', match: { prefix: '/open' }, upstream: 'app' },
    ],
  });
  t.after(async () => {
    await gw.close();
    await relay.close();
    await upstream.close();
    const admin = new PostgresStore({ connectionString: 'postgres://postgres@127.0.0.1:5432/test' });
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => undefined);
    await admin.close();
  });
  const auth = gw.gateway.services.get<AuthService>('auth');
  const known = await auth.createKey({ consumer: 'billing' });
  const fresh = await auth.createKey({ consumer: 'billing' });
  assert.equal((await httpRequest(gw.url + '/api/x', { headers: { 'x-api-key': known.key } })).status, 200);

  relay.freeze();
  const started = Date.now();
  const r = await httpRequest(gw.url + '/api/x', { headers: { 'x-api-key': fresh.key } });
  const waited = Date.now() - started;
  assert.equal(r.status, 503, 'a key that must be read from the store cannot be checked');
  assert.equal(r.headers['content-type'], 'application/problem+json');
  assert.equal(JSON.parse(r.body).reason, 'key_store_unavailable');
  assert.ok(r.headers['retry-after']);
  assert.ok(waited < 3000, `answered after ${waited} ms, not held until the database returns`);
  assert.equal((await httpRequest(gw.url + '/api/x', { headers: { 'x-api-key': known.key } })).status, 200, 'a cached key needs no store');
  assert.equal((await httpRequest(gw.url + '/open/x')).status, 200, 'routes without the store are not affected');

  relay.thaw();
  let status = 0;
  for (let i = 0; i < 40 && status !== 200; i++) {
    status = (await httpRequest(gw.url + '/api/x', { headers: { 'x-api-key': fresh.key } })).status;
    if (status !== 200) await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.equal(status, 200, 'the store answers again: the key is checked');
});
