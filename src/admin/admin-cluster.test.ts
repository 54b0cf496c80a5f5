/**
 * Two gateways sharing a PostgreSQL schema (no Redis): what the admin API changes on one instance holds on the other
 * within about a second (the store poll), and the `kycgate admin` commands drive a remote gateway.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { startTestGateway, httpRequest, type TestGateway } from '../../testing/harness.js';
import { kycTestbed } from '../../testing/kyc-testbed.js';
import { POSTGRES_URL, requirePostgres, uniqueName } from '../../testing/services.js';
import { AdminClient } from '../../testing/admin-client.js';
import { watchLoopLag } from '../../testing/loop-lag.js';
import { PostgresStore } from '../store/postgres.js';

const run = promisify(execFile);
const CLI = path.resolve('dist/src/cli/main.js');

/**
 * The instances learn of changes by polling the store every second; on a loaded 2-core machine a poll (and the
 * request that checks) can be held for seconds, so the limits below bound that, and the figures are printed.
 */
const SETTLE_MS = 8000;

/**
 * Milliseconds until `check` returns true, polling; fails after `limitMs` with what it returned last. Wait only for
 * a refusal this way, never for a success: every refused attempt counts towards the failed-authentication throttle.
 */
async function timeUntil(check: () => Promise<boolean | string>, limitMs: number): Promise<number> {
  const started = Date.now();
  // A change reaches the other instance through its poll timer, a store query and the checking request: each can be
  // held by however long this process went unscheduled, so the bound grows by that lateness (three hops of it).
  const lag = watchLoopLag();
  try {
    for (;;) {
      const seen = await check();
      if (seen === true) return Date.now() - started;
      const bound = limitMs + 3 * lag.maxMs();
      assert.ok(
        Date.now() - started < bound,
        `not within ${bound.toFixed(0)} ms (the event loop ran up to ${lag.maxMs().toFixed(0)} ms late); last seen: ${String(seen)}`,
      );
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    lag.stop();
  }
}

test('admin API on two instances sharing PostgreSQL', async (t) => {
  if (!(await requirePostgres(t))) return;
  const bed = await kycTestbed(t);
  const schema = uniqueName('admin');
  const adminKey = randomBytes(32).toString('hex');
  const keyFile = path.join(bed.dir, 'admin-key');
  writeFileSync(keyFile, adminKey, { mode: 0o600 });
  const config = bed.config(
    {},
    {
      store: { driver: 'postgres', postgres: { url: POSTGRES_URL, schema } },
      kyc: bed.sharedKeys(),
      admin: { port: 0, api: { enabled: true, keys: [{ name: 'ops', role: 'admin', key: { file: keyFile } }] } },
      routes: [
        {
          name: 'keyed',
          match: { prefix: '/keyed' },
          upstream: 'api',
          policies: [{ authenticate: { methods: [{ 'api-key': {} }] } }],
        },
      ],
    },
  );
  const a = await startTestGateway(config);
  const b = await startTestGateway(config);
  t.after(async () => {
    await a.close();
    await b.close();
    const admin = new PostgresStore({ connectionString: POSTGRES_URL });
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => undefined);
    await admin.close();
  });
  const onA = new AdminClient(a.adminUrl, adminKey);
  const onB = new AdminClient(b.adminUrl, adminKey);
  const cli = async (gw: TestGateway, ...args: string[]) => {
    const { stdout } = await run(process.execPath, [CLI, 'admin', '--admin-url', gw.adminUrl, ...args], {
      env: { ...process.env, KYCGATE_ADMIN_KEY: adminKey },
    });
    return JSON.parse(stdout) as Record<string, unknown>;
  };
  const answer = (gw: TestGateway, key: string) => httpRequest(`${gw.url}/keyed/x`, { headers: { 'x-api-key': key } });
  const status = async (gw: TestGateway, key: string) => (await answer(gw, key)).status;
  /** True once `gw` answers `key` with `expected`; otherwise what it answered, for the failure message. */
  const answers = (gw: TestGateway, key: string, expected: number) => async () => {
    const res = await answer(gw, key);
    return res.status === expected || `${res.status} ${res.body}`;
  };

  // A consumer made with the CLI against A, a key made through A's API: B authenticates it at its first request (it
  // reads a key it has not seen from the store, and the consumers too when the key names one it does not know).
  const consumer = await cli(a, 'consumers', 'create', '--name', 'acme', '--scopes', 'orders:read,orders:write');
  assert.deepEqual(consumer.scopes, ['orders:read', 'orders:write']);
  const made = await onA.call<{ key: string; api_key: { id: string } }>('createKey', { body: { consumer: 'acme' } });
  assert.equal(await status(a, made.body.key), 200);
  assert.equal(await status(b, made.body.key), 200);

  // Revoked with the CLI against B: refused on B at once, on A within about a second.
  const revoked = await cli(b, 'keys', 'revoke', made.body.api_key.id);
  assert.equal(revoked.status, 'revoked');
  assert.equal(await status(b, made.body.key), 401);
  const refusedOnA = await timeUntil(answers(a, made.body.key, 401), SETTLE_MS);
  console.log(`# key revoked on B refused on A after ${refusedOnA} ms`);
  assert.ok(refusedOnA < SETTLE_MS);

  // A key made on B passes on A at once (A reads a key it has not seen); its consumer disabled on A: refused on B too.
  const second = await onB.call<{ key: string }>('createKey', { body: { consumer: 'acme' } });
  assert.equal(await status(a, second.body.key), 200);
  await onA.call('updateConsumer', { params: { name: 'acme' }, body: { disabled: true } });
  await timeUntil(answers(b, second.body.key, 401), SETTLE_MS);

  // A subject blocked on A is refused by B's gate.
  const gated = (gw: TestGateway) => httpRequest(`${gw.url}/api/x`, { headers: { 'x-user-id': 'mallory' } });
  const found = await onB.call<{ subject: string }>('lookupSubject', { body: { user_id: 'mallory', route: 'gated' } });
  const onAStatus = await onA.call<{ subject: string }>('lookupSubject', {
    body: { user_id: 'mallory', route: 'gated' },
  });
  assert.equal(found.body.subject, onAStatus.body.subject, 'both instances pseudonymise alike');
  await cli(a, 'subjects', 'block', found.body.subject, '--reason', 'fraud');
  const blockedOnB = await timeUntil(
    async () => JSON.parse((await gated(b)).body).type === 'https://kycgate.dev/problems/subject-blocked',
    SETTLE_MS,
  );
  console.log(`# subject blocked on A refused on B after ${blockedOnB} ms`);

  // Each instance sees both through the store.
  const instances = await onA.call<{ items: Array<{ alive: boolean; current: boolean }> }>('listInstances');
  assert.equal(instances.body.items.filter((i) => i.alive).length, 2);
  assert.equal(instances.body.items.filter((i) => i.current).length, 1);
  const me = await cli(b, 'me', 'show');
  assert.deepEqual(me, { actor: 'config-key:ops', role: 'admin', method: 'config-key' });
});
