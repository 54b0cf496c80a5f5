/**
 * What a person starting kycgate reads: JSON lines with an ISO 8601 time when the output is not a terminal (readable
 * lines with `log.format: pretty`, as on a terminal), a start-up summary (version, config file, data directory,
 * store, listeners, admin and sandbox addresses, admin key file), and readiness checks named after what they check.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCli, spawnCli } from '../../testing/cli-process.js';
import { freePort } from '../../testing/ports.js';
import { isoTimestamp } from './logger.js';

const VERSION = (JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version;

function workDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kycgate-logs-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A file from `kycgate init` (TLS, sandbox, admin API, audit) on free ports. */
async function initFile(dir: string): Promise<{ file: string; ports: Record<string, number> }> {
  const ports = { https: await freePort(), http: await freePort(), admin: await freePort(), sandbox: await freePort() };
  const file = path.join(dir, 'kycgate.yaml');
  const init = await runCli([
    'init',
    ...['-o', file, '--address', '127.0.0.1', '--provider', 'sandbox', '--no-redis'],
    ...['--port', String(ports.https), '--http-port', String(ports.http), '--admin-port', String(ports.admin)],
    ...['--sandbox-port', String(ports.sandbox)],
  ]);
  assert.equal(init.code, 0, init.stderr);
  return { file, ports };
}

test('logs: JSON lines with ISO time, a start-up summary, readiness checks named after what they check', async (t) => {
  const dir = workDir(t);
  const { file, ports } = await initFile(dir);
  const gateway = spawnCli(['start', '-c', file]);
  t.after(() => gateway.stop());
  const summary = await gateway.waitFor((l) => l.msg === `kycgate ${VERSION} started`);
  assert.deepEqual(
    { ...summary, time: undefined, pid: undefined, hostname: undefined },
    {
      level: 30,
      time: undefined,
      pid: undefined,
      hostname: undefined,
      service: 'kycgate',
      msg: `kycgate ${VERSION} started`,
      version: VERSION,
      config: file,
      data_dir: path.join(dir, 'data'),
      store: `sqlite ${path.join(dir, 'data', 'kycgate.db')}`,
      listeners: { https: `https://127.0.0.1:${ports.https}`, http: `http://127.0.0.1:${ports.http}` },
      admin: `http://127.0.0.1:${ports.admin}`,
      admin_api: `http://127.0.0.1:${ports.admin}/admin/api/v1`,
      admin_key_file: path.join(dir, 'data', 'admin-key'),
      sandbox: `http://127.0.0.1:${ports.sandbox}`,
    },
  );
  for (const line of gateway.lines) assert.match(String(line.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);

  const ready = (await (await fetch(`http://127.0.0.1:${ports.admin}/readyz`)).json()) as { checks: object };
  const names = Object.keys(ready.checks);
  for (const name of ['config', 'tls:https', 'store', 'audit', 'kyc']) assert.ok(names.includes(name), names.join());
  for (const name of names) assert.doesNotMatch(name, /^module|:\d+$/, 'named after what it checks');
  assert.equal(await gateway.stop(), 0);
});

test('logs: log.format pretty writes readable lines, not JSON', async (t) => {
  const dir = workDir(t);
  const { file } = await initFile(dir);
  writeFileSync(file, readFileSync(file, 'utf8').replace('level: info', 'format: pretty\n  level: info'));
  const gateway = spawnCli(['start', '-c', file]);
  t.after(() => gateway.stop());
  const started = new RegExp(
    `^\\[\\d\\d:\\d\\d:\\d\\d\\.\\d{3}\\] INFO: kycgate ${VERSION.replace(/\./g, '\\.')} started$`,
    'm',
  );
  await new Promise<void>((resolve, reject) => {
    const check = () => (started.test(gateway.stdout()) ? resolve() : undefined);
    gateway.child.stdout!.on('data', check);
    void gateway.exited.then(() => reject(new Error(`exited: ${gateway.stdout()} ${gateway.stderr()}`)));
    check();
  });
  assert.match(gateway.stdout(), /^ {4}store: "sqlite .*kycgate\.db"$/m);
  assert.equal(gateway.lines.length, 0, 'no JSON line');
  assert.equal(await gateway.stop(), 0);
});

test('logs: the ISO time of a JSON line is exact to the millisecond, across second boundaries', () => {
  const times = [0, 1, 9, 10, 99, 100, 999, 1000, 1_773_480_413_589, 1_773_480_413_999, 1_773_480_414_000];
  let i = 0;
  const stamp = isoTimestamp(() => times[i]!);
  for (; i < times.length; i++) assert.equal(stamp(), `,"time":"${new Date(times[i]!).toISOString()}"`);
});
