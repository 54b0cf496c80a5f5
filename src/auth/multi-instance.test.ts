/**
 * Two gateway instances sharing PostgreSQL (and Redis): a key revoked through one instance, or with the CLI,
 * is refused by the other within a second.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { startTestGateway, startUpstream, httpRequest, type TestGateway } from '../../testing/harness.js';
import { POSTGRES_URL, REDIS_URL, requirePostgres, requireRedis, uniqueName } from '../../testing/services.js';
import { PostgresStore } from '../store/postgres.js';
import { watchLoopLag } from '../../testing/loop-lag.js';
import type { AuthService } from './subsystem.js';
import { createStoreConsumer } from './consumer-store.js';

const run = promisify(execFile);
const CLI = path.resolve('dist/src/cli/main.js');

async function pair(t: TestContext, withRedis: boolean) {
  const schema = uniqueName('auth');
  const upstream = await startUpstream((_req, res) => res.end('ok'));
  const config: Record<string, unknown> = {
    store: { driver: 'postgres', postgres: { url: POSTGRES_URL, schema } },
    ...(withRedis ? { redis: { url: REDIS_URL, key_prefix: `${uniqueName('kg')}:` } } : {}),
    consumers: { billing: { scopes: ['payments:read'] } },
    upstreams: { app: { targets: [{ url: upstream.url }] } },
    routes: [
      {
        name: 'api',
        match: { prefix: '/api' },
        upstream: 'app',
        policies: [{ authenticate: { methods: [{ 'api-key': {} }] } }],
      },
    ],
  };
  const a = await startTestGateway(config);
  const b = await startTestGateway(config);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kycgate-auth-'));
  const file = path.join(dir, 'kycgate.yaml');
  writeFileSync(file, stringify({ listeners: [{ name: 'main', port: 0 }], ...config }));
  t.after(async () => {
    await a.close();
    await b.close();
    await upstream.close();
    const admin = new PostgresStore({ connectionString: POSTGRES_URL });
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => undefined);
    await admin.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { a, b, file, dir };
}

const status = async (gw: TestGateway, key: string) =>
  (await httpRequest(gw.url + '/api/x', { headers: { 'x-api-key': key } })).status;

/**
 * Milliseconds until `gw` refuses `key`, polling; fails after `limitMs` plus every delay of this process's event loop
 * meanwhile (both instances run in it: on a loaded machine their timers and answers are that much later).
 */
async function timeUntilRefused(gw: TestGateway, key: string, limitMs: number): Promise<number> {
  const started = Date.now();
  const lag = watchLoopLag();
  try {
    while (Date.now() - started <= limitMs + lag.totalMs()) {
      if ((await status(gw, key)) === 401) return Date.now() - started;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`still accepted after ${limitMs} ms (the event loop was late ${Math.round(lag.totalMs())} ms)`);
  } finally {
    lag.stop();
  }
}

test('a key revoked on one instance is refused by a second instance within 1 s (PostgreSQL + Redis)', async (t) => {
  if (!(await requirePostgres(t)) || !(await requireRedis(t))) return;
  const { a, b } = await pair(t, true);
  const auth = a.gateway.services.get<AuthService>('auth');
  const { key, record } = await auth.createKey({ consumer: 'billing' });
  assert.equal(await status(a, key), 200);
  assert.equal(await status(b, key), 200, 'cached on the second instance');
  await auth.revokeKey(record.id);
  assert.equal(await status(a, key), 401, 'the next request on the revoking instance');
  const ms = await timeUntilRefused(b, key, 1000);
  console.log(`# second instance refused the revoked key after ${ms} ms`);
});

test('a key rotated on one instance: both keys work on the other during the overlap, only the new one after (PostgreSQL + Redis)', async (t) => {
  if (!(await requirePostgres(t)) || !(await requireRedis(t))) return;
  const { a, b } = await pair(t, true);
  const auth = a.gateway.services.get<AuthService>('auth');
  const old = await auth.createKey({ consumer: 'billing', ttlMs: 86_400_000 });
  assert.equal(await status(b, old.key), 200);
  const rotated = await auth.rotateKey(old.record.id, 800);
  assert.equal(rotated.record.expiresAt! - rotated.record.createdAt, 86_400_000, 'the new key keeps the lifetime');
  assert.equal(await status(b, rotated.key), 200);
  assert.equal(await status(b, old.key), 200, 'inside the overlap');
  await new Promise((r) => setTimeout(r, Math.max(0, rotated.previous.expiresAt! - Date.now()) + 20));
  assert.equal(await status(b, old.key), 401);
  assert.equal(await status(b, rotated.key), 200);
});

test('kycgate keys create / revoke via the CLI reach running instances within 1 s (PostgreSQL + Redis)', async (t) => {
  if (!(await requirePostgres(t)) || !(await requireRedis(t))) return;
  const { a, b, file, dir } = await pair(t, true);
  const env = { ...process.env, KYCGATE_DATA_DIR: dir };
  const created = await run(
    process.execPath,
    [
      CLI,
      'keys',
      'create',
      '--consumer',
      'billing',
      '--scopes',
      'payments:read',
      '--expires',
      '1d',
      '--json',
      '--config',
      file,
    ],
    { env },
  );
  const { key, id } = JSON.parse(created.stdout) as { key: string; id: string };
  assert.equal(await status(a, key), 200);
  assert.equal(await status(b, key), 200);
  const listed = await run(process.execPath, [CLI, 'keys', 'list', '--json', '--config', file], { env });
  assert.ok(listed.stdout.includes(id));
  assert.ok(!listed.stdout.includes(key), 'list never shows keys');
  await run(process.execPath, [CLI, 'keys', 'revoke', id, '--config', file], { env });
  const msA = await timeUntilRefused(a, key, 1000);
  const msB = await timeUntilRefused(b, key, 1000);
  console.log(`# after the CLI acknowledged the revocation: refused after ${msA} ms and ${msB} ms`);
});

test('without Redis, instances notice a revocation by polling the store (within about a second)', async (t) => {
  if (!(await requirePostgres(t))) return;
  const { a, b } = await pair(t, false);
  const auth = a.gateway.services.get<AuthService>('auth');
  const { key, record } = await auth.createKey({ consumer: 'billing' });
  assert.equal(await status(b, key), 200);
  await auth.revokeKey(record.id);
  await timeUntilRefused(b, key, 2000);
});

test('a consumer made on one instance, and a key for it, pass on the other at its first request (without Redis)', async (t) => {
  if (!(await requirePostgres(t))) return;
  const { a, b } = await pair(t, false);
  const auth = a.gateway.services.get<AuthService>('auth');
  const onB = b.gateway.services.get<AuthService>('auth');
  assert.equal(onB.consumers.get('acme'), undefined);
  // The other instance learns of consumers by polling (every second); its keys it reads when they are presented.
  await createStoreConsumer(auth.store, 'acme', { scopes: ['payments:read'] });
  await auth.consumersChanged();
  const { key } = await auth.createKey({ consumer: 'acme' });
  assert.equal(await status(b, key), 200, 'the key names a consumer B did not know: B reads the consumers first');
  assert.equal(onB.consumers.get('acme')?.scopes[0], 'payments:read');
  assert.equal(await status(b, key), 200);
});
