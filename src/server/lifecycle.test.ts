/**
 * Lifecycle: config reload keeps traffic flowing (in-flight requests finish on the old config) and refuses an
 * invalid file; SIGTERM drains: in-flight requests finish, new connections are refused, the process exits 0.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { startTestGateway, startUpstream, httpRequest, rawRequest, statusOf } from '../../testing/harness.js';

function yamlFor(body: string, upstreamUrl: string): string {
  return (
    `listeners:\n  - name: main\n    port: 0\nadmin:\n  port: 0\nupstreams:\n  slow:\n    targets: ` +
    `[{url: "${upstreamUrl}"}]\nroutes:\n  - name: version\n    match: {path: /version}\n    policies:\n ` +
    `     - static-response: {body: "${body}"}\n  - name: slow\n    match: {path: /slow}\n    upstream: slow\n`
  );
}

test('reload: a changed file applies to new requests while in-flight ones finish; an invalid file is refused', async (t) => {
  let release: (() => void) | undefined;
  const upstream = await startUpstream((_req, res) => {
    release = () => res.end('slow done');
  });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kycgate-reload-'));
  const file = path.join(dir, 'kycgate.yaml');
  writeFileSync(file, yamlFor('one', upstream.url));
  const { ConfigValidator, loadConfigFile } = await import('../config/load.js');
  const { SUBSYSTEMS, POLICIES } = await import('../bundled.js');
  const loaded = loadConfigFile(file, new ConfigValidator(SUBSYSTEMS, POLICIES));
  const gw = await startTestGateway(loaded.config as unknown as Record<string, unknown>, { file, baseDir: dir });
  t.after(async () => {
    await gw.close();
    await upstream.close();
    rmSync(dir, { recursive: true, force: true });
  });
  assert.equal((await httpRequest(gw.url + '/version')).body, 'one');

  // A request in flight on the old config.
  const inflight = httpRequest(gw.url + '/slow');
  while (release === undefined) await new Promise((r) => setTimeout(r, 5));

  // Traffic keeps flowing while the file changes.
  let stop = false;
  const statuses: number[] = [];
  const load = (async () => {
    while (!stop) statuses.push((await httpRequest(gw.url + '/version')).status);
  })();
  writeFileSync(file, yamlFor('two', upstream.url));
  for (let i = 0; i < 500; i++) {
    if ((await httpRequest(gw.url + '/version')).body === 'two') break;
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.equal((await httpRequest(gw.url + '/version')).body, 'two');
  release!();
  const done = await inflight;
  assert.equal(done.status, 200);
  assert.equal(done.body, 'slow done');

  // An invalid file is refused with a log line; the current config keeps serving.
  writeFileSync(file, 'listeners: [{name: main, port: 0}]\nroutes:\n  - name: broken\n    match: {}\n');
  const refused = await gw.gateway.reload('test');
  assert.equal(refused, false);
  assert.ok(gw.logs.some((l) => l.msg === 'configuration refused; the previous configuration keeps serving'));
  assert.equal((await httpRequest(gw.url + '/version')).body, 'two');
  stop = true;
  await load;
  assert.ok(statuses.length > 0);
  assert.ok(
    statuses.every((s) => s === 200),
    `statuses during reload: ${[...new Set(statuses)].join(',')}`,
  );
});

test('drain: SIGTERM finishes the in-flight request, refuses new connections and exits 0', async (t) => {
  let release: (() => void) | undefined;
  const upstream = await startUpstream((_req, res) => {
    release = () => res.end('finished during drain');
  });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kycgate-drain-'));
  const file = path.join(dir, 'kycgate.yaml');
  writeFileSync(file, yamlFor('one', upstream.url));
  const child = spawn(process.execPath, [path.resolve('dist/src/cli/main.js'), 'start', '--config', file], {
    env: { ...process.env, KYCGATE_DATA_DIR: path.join(dir, 'data') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(async () => {
    child.kill('SIGKILL');
    await upstream.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const port = await new Promise<number>((resolve, reject) => {
    const lines = readline.createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      const entry = JSON.parse(line) as { msg: string; listener?: string; url?: string };
      if (entry.msg === 'listening' && entry.listener === 'main') resolve(Number(new URL(entry.url!).port));
    });
    child.on('exit', () => reject(new Error('gateway exited before listening')));
  });
  const inflight = httpRequest(`http://127.0.0.1:${port}/slow`);
  while (release === undefined) await new Promise((r) => setTimeout(r, 5));
  child.kill('SIGTERM');
  // New connections are refused once draining has begun.
  let refused = false;
  for (let i = 0; i < 200 && !refused; i++) {
    try {
      const answer = await rawRequest(port, 'GET /version HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n', 500);
      if (statusOf(answer) === 0) refused = true;
      else await new Promise((r) => setTimeout(r, 10));
    } catch {
      refused = true;
    }
  }
  assert.ok(refused, 'new connections are refused while draining');
  release!();
  const done = await inflight;
  assert.equal(done.status, 200);
  assert.equal(done.body, 'finished during drain');
  assert.equal(await exited, 0);
});
