/**
 * The tick-record pin. Without it, `kycgate start` left the stores that build Node's nextTick records megamorphic
 * after start-up in every run, and optimized nextTick called into the V8 runtime for each record, a dozen times per
 * proxied request. These tests read V8's own feedback for nextTick (`%DebugPrint` under --allow-natives-syntax) in
 * the real CLI process after it served traffic, and check the pinned record against Node's.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import { promisify } from 'node:util';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { startUpstream } from '../../testing/harness.js';

const run = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const MAIN = path.join(here, '../cli/main.js');

/** The kind and state of each literal-store feedback slot of process.nextTick, from a %DebugPrint dump. */
function literalStoreStates(dump: string): string[] {
  return [...dump.matchAll(/slot #\d+ DefineKeyedOwnPropertyInLiteral (\w+)/g)].map((m) => m[1]!);
}

function get(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get(url, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      })
      .on('error', reject);
  });
}

test("tick records: the pinned object is a real nextTick record built with Node's own symbols", async () => {
  const moduleUrl = pathToFileURL(path.join(here, 'tick-records.js')).href;
  const { stdout } = await run(process.execPath, [
    '--input-type=module',
    '-e',
    `import { pinTickRecordShape } from '${moduleUrl}';
     const record = pinTickRecordShape();
     console.log(JSON.stringify({
       same: record === pinTickRecordShape(),
       symbols: Object.getOwnPropertySymbols(record).map((s) => s.description),
       keys: Object.keys(record),
     }));`,
  ]);
  const out = JSON.parse(stdout) as { same: boolean; symbols: string[]; keys: string[] };
  assert.equal(out.same, true, 'pinning twice returns the one record');
  // Node's own record: its async ids (and, from Node 24, its async context frame).
  assert.deepEqual(
    out.symbols.filter((s) => s !== 'kAsyncContextFrame'),
    ['async_id_symbol', 'trigger_async_id_symbol'],
  );
  assert.deepEqual(out.keys, ['callback', 'args']);
});

test('tick records: after start-up and traffic, kycgate builds nextTick records on one map (no megamorphic store)', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kycgate-tick-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const upstream = await startUpstream((_req, res) => res.end('ok'));
  t.after(() => upstream.close());
  const config = path.join(dir, 'config.yaml');
  fs.writeFileSync(
    config,
    JSON.stringify({
      listeners: [{ name: 'main', port: 0 }],
      admin: { enabled: false },
      upstreams: { app: { targets: [{ url: upstream.url }] } },
      routes: [{ name: 'app', match: { prefix: '/' }, upstream: 'app' }],
    }),
  );
  // On SIGUSR2 the process prints V8's view of nextTick (feedback slots included) and a marker.
  const preload = path.join(dir, 'print-feedback.cjs');
  fs.writeFileSync(
    preload,
    // The dump fills the pipe: the marker is written once the test has read enough (EAGAIN on a non-blocking fd).
    `process.on('SIGUSR2', () => { new Function('%DebugPrint(process.nextTick)')(); const fs = require('node:fs'); ` +
      `const b = Buffer.from('\\nFEEDBACK-END\\n'); for (let o = 0; o < b.length; ) { try { o += fs.writeSync(1, b, o); } ` +
      `catch (e) { if (e.code !== 'EAGAIN') throw e; } } });\n`,
  );
  const child = spawn(
    process.execPath,
    ['--allow-natives-syntax', '--require', preload, MAIN, 'start', '--config', config],
    {
      env: { ...process.env, KYCGATE_DATA_DIR: path.join(dir, 'data') },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  t.after(() => child.kill('SIGKILL'));
  let out = '';
  const waiters: Array<() => void> = [];
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
    for (const w of waiters.splice(0)) w();
  });
  // A gateway that dies is a failure, never a wait without end.
  child.on('exit', () => {
    for (const w of waiters.splice(0)) w();
  });
  const seen = (pattern: RegExp) =>
    new Promise<RegExpMatchArray>((resolve, reject) => {
      const check = () => {
        const m = out.match(pattern);
        if (m) return resolve(m);
        if (child.exitCode !== null) return reject(new Error(`gateway exited (${child.exitCode}): ${out}`));
        waiters.push(check);
      };
      check();
    });
  const [, url] = await seen(/"url":"(http:\/\/[^"]+)"/);
  // Serve traffic through the proxy path (streams, sockets, undici) until the runtime answers, then some more.
  let ok = 0;
  for (let i = 0; i < 2000 && ok < 300; i++) if ((await get(`${url}/x`)) === 200) ok++;
  assert.equal(ok, 300, 'the gateway proxied requests');
  child.kill('SIGUSR2');
  await seen(/FEEDBACK-END/);
  const states = literalStoreStates(out);
  assert.ok(states.length >= 3, `nextTick's literal stores are in the dump (found ${states.length})`);
  assert.deepEqual(
    states.filter((s) => s !== 'MONOMORPHIC'),
    [],
    `every store building a tick record sees one map (states: ${states.join(', ')})`,
  );
});
