/**
 * `kycgate faults` against running gateways: the command writes to the store the configuration names, and every
 * instance injects the fault within poll_ms, until it is disarmed or its time is up.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { httpRequest, startTestGateway, startUpstream } from '../../testing/harness.js';
import { POSTGRES_URL, requirePostgres, uniqueName } from '../../testing/services.js';
import { PostgresStore } from '../store/postgres.js';
import type { GatewayEvent } from '../pipeline/events.js';

const CLI = path.resolve('dist/src/cli/main.js');

function cli(args: string[], dataDir: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { env: { ...process.env, KYCGATE_DATA_DIR: dataDir }, timeout: 120_000 },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? -1) : 0, stdout, stderr }),
    );
  });
}

async function setup(t: TestContext, store?: Record<string, unknown>) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kycgate-faults-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const upstream = await startUpstream((_req, res) => res.end('ok'));
  t.after(() => upstream.close());
  const config = {
    listeners: [{ name: 'main', port: 0 }],
    ...(store ? { store } : {}),
    upstreams: { backend: { targets: [{ url: upstream.url }] } },
    defaults: { policies: [{ 'fault-injection': {} }] },
    routes: [
      { name: 'orders', match: { prefix: '/orders' }, upstream: 'backend' },
      { name: 'payments', match: { prefix: '/payments' }, upstream: 'backend', critical: true },
    ],
    resilience: { faults: { enabled: true, poll_ms: 100 } },
  };
  const file = path.join(dir, 'kycgate.yaml');
  writeFileSync(file, JSON.stringify(config));
  return { dir, file, config, upstream };
}

/** Resolves when the gateway has read a fault armed (or ended) in the store. */
function next(
  gw: Awaited<ReturnType<typeof startTestGateway>>,
  type: 'fault.armed' | 'fault.disarmed',
): Promise<GatewayEvent> {
  return new Promise((resolve) => {
    const off = gw.gateway.services.events.on(type, (e) => {
      off();
      resolve(e);
    });
  });
}

test('faults CLI: arm on a running gateway, list, disarm; refusals name the reason', async (t) => {
  const { dir, file, config } = await setup(t);
  const gw = await startTestGateway(config, { dataDir: dir });
  t.after(() => gw.close());
  assert.equal((await httpRequest(`${gw.url}/orders`)).status, 200);

  const armedSeen = next(gw, 'fault.armed');
  const arm = await cli(
    [
      'faults',
      'arm',
      '-c',
      file,
      '--route',
      'orders',
      '--abort',
      '503',
      '--for',
      '10m',
      '--reason',
      'Q4 drill',
      '--by',
      'ops',
      '--json',
    ],
    dir,
  );
  assert.equal(arm.code, 0, arm.stderr);
  const armed = JSON.parse(arm.stdout) as Record<string, unknown>;
  assert.equal(armed.state, 'armed');
  assert.deepEqual(armed.routes, ['orders']);
  const event = await armedSeen;
  assert.equal(event.data?.fault, armed.id);
  assert.equal(event.data?.armed_by, 'ops');
  assert.equal(event.data?.reason, 'Q4 drill');
  assert.equal((await httpRequest(`${gw.url}/orders`)).status, 503);
  assert.equal((await httpRequest(`${gw.url}/payments`)).status, 200);

  const list = await cli(['faults', 'list', '-c', file, '--json'], dir);
  assert.equal(list.code, 0, list.stderr);
  const listed = list.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(
    listed.map((f) => [f.id, f.target, (f.abort as { status: number }).status]),
    [[armed.id, 'orders', 503]],
  );

  const disarmedSeen = next(gw, 'fault.disarmed');
  const disarm = await cli(['faults', 'disarm', '-c', file, String(armed.id)], dir);
  assert.equal(disarm.code, 0, disarm.stderr);
  assert.match(disarm.stdout, new RegExp(`disarmed ${String(armed.id)}`));
  await disarmedSeen;
  assert.equal((await httpRequest(`${gw.url}/orders`)).status, 200);
  const history = await cli(['faults', 'list', '-c', file, '--since', '1h', '--json'], dir);
  const record = JSON.parse(history.stdout.trim()) as Record<string, unknown>;
  assert.equal(record.state, 'disarmed');
  assert.equal(record.disarmed_by, os.userInfo().username);

  const refused = async (args: string[], message: RegExp) => {
    const r = await cli(['faults', 'arm', '-c', file, ...args], dir);
    assert.equal(r.code, 1, `${args.join(' ')}: ${r.stdout}`);
    assert.match(r.stderr, message);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  };
  await refused(['--route', 'payments', '--abort', '503', '--for', '1m'], /route "payments" is marked critical/);
  await refused(['--route', 'nope', '--abort', '503', '--for', '1m'], /no route named "nope"/);
  await refused(['--route', 'orders', '--for', '1m'], /nothing to inject/);
  await refused(['--route', 'orders', '--abort', '503'], /give either --for or --until/);
  await refused(['--route', 'orders', '--abort', '503', '--for', '30d'], /max_duration_s/);
  await refused(['--route', 'orders', '--upstream', 'backend', '--abort', '503', '--for', '1m'], /exactly one target/);
  assert.equal((await cli(['faults', 'list', '-c', file, '--json'], dir)).stdout, '', 'nothing was armed by a refusal');

  const withOverride = await cli(
    ['faults', 'arm', '-c', file, '--route', 'payments', '--delay', '50ms', '--for', '1m', '--allow-critical'],
    dir,
  );
  assert.equal(withOverride.code, 0, withOverride.stderr);
  assert.match(withOverride.stdout, /armed flt_\w+ on route payments/);
});

test('faults CLI: refuses when the configuration has fault injection off', async (t) => {
  const { dir, config } = await setup(t);
  const file = path.join(dir, 'off.yaml');
  writeFileSync(file, JSON.stringify({ ...config, resilience: { faults: { enabled: false } } }));
  const r = await cli(['faults', 'arm', '-c', file, '--route', 'orders', '--abort', '503', '--for', '1m'], dir);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /fault injection is off/);
});

test('faults CLI: one arming reaches every instance sharing PostgreSQL', async (t) => {
  if (!(await requirePostgres(t))) return;
  const schema = uniqueName('faults');
  t.after(async () => {
    const admin = new PostgresStore({ connectionString: POSTGRES_URL, schema, poolSize: 1 });
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => undefined);
    await admin.close();
  });
  const { dir, file, config } = await setup(t, {
    driver: 'postgres',
    postgres: { url: POSTGRES_URL, schema, pool_size: 2 },
  });
  const a = await startTestGateway(config);
  t.after(() => a.close());
  const b = await startTestGateway(config);
  t.after(() => b.close());
  const seen = [next(a, 'fault.armed'), next(b, 'fault.armed')];
  const arm = await cli(['faults', 'arm', '-c', file, '--upstream', 'backend', '--abort', '502', '--for', '5m'], dir);
  assert.equal(arm.code, 0, arm.stderr);
  await Promise.all(seen);
  for (const gw of [a, b]) {
    assert.equal((await httpRequest(`${gw.url}/orders`)).status, 502);
    assert.equal((await httpRequest(`${gw.url}/payments`)).status, 200, 'the critical route is spared');
  }
  const ended = [next(a, 'fault.disarmed'), next(b, 'fault.disarmed')];
  const disarm = await cli(['faults', 'disarm', '-c', file, '--all'], dir);
  assert.equal(disarm.code, 0, disarm.stderr);
  await Promise.all(ended);
  for (const gw of [a, b]) assert.equal((await httpRequest(`${gw.url}/orders`)).status, 200);
});
