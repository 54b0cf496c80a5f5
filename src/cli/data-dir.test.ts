/**
 * The store belongs to the config: every command given the same config file uses the same data directory, from
 * whatever directory it is run, and says which store it used.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { dataDirectory } from '../config/data-dir.js';
import { cliEnv, runCli, spawnCli } from '../../testing/cli-process.js';
import { resolveTarget } from './admin.js';

function workDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kycgate-datadir-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('data dir: relative to the config file, KYCGATE_DATA_DIR overrides, the demo keeps ./.kycgate', () => {
  assert.equal(dataDirectory({ data_dir: 'state' }, '/etc/kycgate', {}), '/etc/kycgate/state');
  assert.equal(dataDirectory({ data_dir: '/var/lib/kycgate' }, '/etc/kycgate', {}), '/var/lib/kycgate');
  assert.equal(dataDirectory({}, '/etc/kycgate', {}), '/etc/kycgate/.kycgate');
  assert.equal(dataDirectory({ data_dir: 'state' }, '/etc/kycgate', { KYCGATE_DATA_DIR: '/srv/data' }), '/srv/data');
  assert.equal(dataDirectory(undefined, process.cwd(), {}), path.resolve('.kycgate'));
});

test('data dir: a key created from one directory authenticates at a gateway started from another', async (t) => {
  const root = workDir(t);
  const confDir = path.join(root, 'conf');
  const elsewhere = path.join(root, 'elsewhere');
  const third = path.join(root, 'third');
  for (const d of [confDir, elsewhere, third]) mkdirSync(d);
  const file = path.join(confDir, 'kycgate.yaml');
  writeFileSync(
    file,
    [
      'data_dir: state',
      'listeners:',
      '  - { name: http, port: 0 }',
      'admin: { enabled: false }',
      'consumers:',
      '  billing: { scopes: [read] }',
      'routes:',
      '  - name: hello',
      '    match: { path: /hello }',
      '    policies:',
      '      - authenticate: { methods: [{ api-key: {} }] }',
      '      - static-response: { status: 200, body: "hello\\n" }',
      '',
    ].join('\n'),
  );
  const store = path.join(confDir, 'state', 'kycgate.db');

  const created = await runCli(['keys', 'create', '--consumer', 'billing', '--config', '../conf/kycgate.yaml'], {
    cwd: elsewhere,
  });
  assert.equal(created.code, 0, created.stderr);
  assert.match(created.stderr, new RegExp(`store: sqlite ${store.replace(/[.]/g, '\\.')}`));
  const key = created.stdout.trim();
  assert.ok(existsSync(store), 'the store is in the config directory');
  assert.ok(!existsSync(path.join(elsewhere, '.kycgate')), 'nothing written under the current directory');

  const listed = await runCli(['keys', 'list', '--json', '-c', file], { cwd: third });
  assert.equal(listed.code, 0, listed.stderr);
  assert.match(listed.stdout, /"consumer":"billing"/);

  const gateway = spawnCli(['start', '-c', path.relative(third, file)], { cwd: third, env: cliEnv() });
  t.after(() => gateway.stop());
  const line = await gateway.waitFor((l) => l.msg === 'listening' && l.listener === 'http');
  const url = String(line.url);
  const ok = await fetch(`${url}/hello`, { headers: { 'x-api-key': key } });
  assert.equal(ok.status, 200, 'the key created from elsewhere is in the store the gateway uses');
  assert.equal(await ok.text(), 'hello\n');
  const refused = await fetch(`${url}/hello`, { headers: { 'x-api-key': `${key.slice(0, -2)}xx` } });
  assert.equal(refused.status, 401);
  assert.equal(await gateway.stop(), 0);
  assert.ok(!existsSync(path.join(third, '.kycgate')), 'the gateway wrote nothing under its current directory');

  const verified = await runCli(['audit', 'verify', '-c', file], { cwd: elsewhere });
  assert.match(
    verified.stderr,
    new RegExp(`audit journal: ${path.join(confDir, 'state', 'audit').replace(/[.]/g, '\\.')}`),
  );
});

test('data dir: kycgate admin finds the admin listener and the key file of the config it is given', (t) => {
  const root = workDir(t);
  const file = path.join(root, 'kycgate.yaml');
  writeFileSync(
    file,
    'data_dir: state\nlisteners: [{ name: http, port: 0 }]\n' +
      'admin: { address: 127.0.0.2, port: 9911, api: { enabled: true, key_file: { path: keys/admin-key } } }\n',
  );
  const saved = { url: process.env.KYCGATE_ADMIN_URL, dir: process.env.KYCGATE_DATA_DIR };
  delete process.env.KYCGATE_ADMIN_URL;
  delete process.env.KYCGATE_DATA_DIR;
  t.after(() => {
    if (saved.url !== undefined) process.env.KYCGATE_ADMIN_URL = saved.url;
    if (saved.dir !== undefined) process.env.KYCGATE_DATA_DIR = saved.dir;
  });
  assert.deepEqual(resolveTarget({ config: file }), { url: 'http://127.0.0.2:9911', keyFile: undefined });
  mkdirSync(path.join(root, 'state', 'keys'), { recursive: true });
  writeFileSync(path.join(root, 'state', 'keys', 'admin-key'), 'kgadm_x\n');
  assert.deepEqual(resolveTarget({ config: file }), {
    url: 'http://127.0.0.2:9911',
    keyFile: path.join(root, 'state', 'keys', 'admin-key'),
  });
  assert.equal(resolveTarget({ config: file, adminUrl: 'https://gw:1' }).url, 'https://gw:1');
});
