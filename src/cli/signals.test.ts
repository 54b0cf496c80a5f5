/**
 * Signals that arrive while the gateway is still starting (an orchestrator replacing an instance at once, a config
 * reload sent early): SIGTERM and SIGHUP must not kill the process with their default action. Start-up is held at
 * a known point by freezing the relay in front of its database: the test signals once the gateway connects, then
 * lets start-up finish.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnCli } from '../../testing/cli-process.js';
import { freePort } from '../../testing/ports.js';
import { POSTGRES_URL, requirePostgres, uniqueName } from '../../testing/services.js';
import { startTcpRelay } from '../../testing/tcp-relay.js';
import { PostgresStore } from '../store/postgres.js';

/** A gateway config on a fresh schema reached through `relayPort`; its HTTP listener's port. */
async function configFile(t: { after(fn: () => Promise<void> | void): void }, relayPort: number) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kycgate-signals-'));
  const schema = uniqueName('signals');
  t.after(async () => {
    rmSync(dir, { recursive: true, force: true });
    const admin = new PostgresStore({ connectionString: POSTGRES_URL });
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => undefined);
    await admin.close();
  });
  const port = await freePort();
  const url = new URL(POSTGRES_URL);
  url.host = `127.0.0.1:${relayPort}`;
  const file = path.join(dir, 'kycgate.yaml');
  writeFileSync(
    file,
    JSON.stringify({
      listeners: [{ name: 'http', port }],
      admin: { enabled: false },
      // A deadline far beyond the test's own steps: start-up waits on the frozen relay, it does not fail on it.
      store: {
        driver: 'postgres',
        postgres: { url: url.toString(), schema, query_timeout_ms: 60_000 },
      },
      upstreams: { app: { targets: [{ url: 'http://127.0.0.1:9' }] } },
      routes: [{ name: 'all', match: { prefix: '/' }, upstream: 'app' }],
    }),
  );
  return { dir, file, port };
}

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  test(`start: ${signal} while start-up waits on the database drains once it is done and exits 0`, async (t) => {
    if (!(await requirePostgres(t))) return;
    const relay = await startTcpRelay(Number(new URL(POSTGRES_URL).port || 5432));
    t.after(() => relay.close());
    const { dir, file } = await configFile(t, relay.port);
    relay.freeze();
    const connecting = relay.nextAccept();
    const gateway = spawnCli(['start', '-c', file], { cwd: dir, env: { KYCGATE_DATA_DIR: dir } });
    t.after(() => gateway.stop());
    await connecting;
    gateway.child.kill(signal);
    await gateway.waitFor((l) => l.msg === 'shutting down' && l.signal === signal);
    relay.thaw();
    assert.equal(await gateway.exited, 0, `exit code 0, not killed by ${signal}:\n${gateway.stderr()}`);
    assert.equal(gateway.child.signalCode, null);
    assert.ok(!gateway.lines.some((l) => / started$/.test(String(l.msg))), 'no start-up summary once stopping');
  });
}

test('start: SIGHUP while start-up waits on the database does not kill the gateway; it serves, then reloads', async (t) => {
  if (!(await requirePostgres(t))) return;
  const relay = await startTcpRelay(Number(new URL(POSTGRES_URL).port || 5432));
  t.after(() => relay.close());
  const { dir, file, port } = await configFile(t, relay.port);
  relay.freeze();
  const connecting = relay.nextAccept();
  const gateway = spawnCli(['start', '-c', file], { cwd: dir, env: { KYCGATE_DATA_DIR: dir } });
  t.after(() => gateway.stop());
  await connecting;
  gateway.child.kill('SIGHUP');
  relay.thaw();
  await gateway.waitFor((l) => /^kycgate \S+ started$/.test(String(l.msg)));
  await gateway.waitFor((l) => l.msg === 'configuration reloaded' && l.reason === 'SIGHUP');
  const r = await fetch(`http://127.0.0.1:${port}/x`);
  assert.equal(r.status, 502, 'it serves (the upstream is down)');
  await r.body?.cancel();
  assert.equal(await gateway.stop(), 0);
});
