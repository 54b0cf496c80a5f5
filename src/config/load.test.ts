/**
 * Configuration: errors name the key path and the reason; defaults are filled in; secrets are references only;
 * `kycgate validate` exits non-zero with those messages.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ConfigError, ConfigValidator, fullSchema, parseYaml } from './load.js';
import { resolveSecret, safeEqual } from './secrets.js';
import { SUBSYSTEMS, POLICIES } from '../bundled.js';

const run = promisify(execFile);
const CLI = path.resolve('dist/src/cli/main.js');

function problemsOf(raw: unknown): string[] {
  try {
    new ConfigValidator(SUBSYSTEMS, POLICIES).validate(raw);
    return [];
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.problems;
  }
}

test('config: errors name the key path and the reason', () => {
  const problems = problemsOf({
    listeners: [{ name: 'main', port: 'eighty' }],
    upstreams: { u: { targets: [{ url: 'ftp://x' }] } },
    routes: [
      { name: 'a', match: { path: '/a' }, upstream: 'missing', policies: [{ 'no-such-policy': {} }] },
      { name: 'b', match: {}, upstream: 'u', surprise: true, policies: [{ 'static-response': { status: 99 } }] },
      { name: 'a', match: { prefix: '/c' } },
    ],
  });
  const text = problems.join('\n');
  assert.match(text, /listeners\[0\]\.port: must be integer/);
  assert.match(text, /upstreams\.u\.targets\[0\]\.url: must match pattern/);
  assert.match(text, /routes\[1\]: has unknown key "surprise"/);
  assert.match(text, /routes\[1\]\.match: must match a schema in anyOf/);
  // Cross-reference checks run once the shape is right.
  const semantic = problemsOf({
    listeners: [{ name: 'main', port: 8080 }],
    routes: [
      { name: 'a', match: { path: '/a' }, upstream: 'missing', policies: [{ 'no-such-policy': {} }] },
      { name: 'b', match: { path: '/b' }, policies: [{ 'static-response': { status: 99 } }] },
      { name: 'a', match: { prefix: '/c' } },
    ],
  }).join('\n');
  assert.match(semantic, /routes\[0\]\.upstream: no upstream named "missing"/);
  assert.match(semantic, /routes\[0\]\.policies\[0\]: unknown policy "no-such-policy"/);
  assert.match(semantic, /routes\[1\]\.policies\[0\]\.static-response\.status: must be >= 200/);
  assert.match(semantic, /routes\[2\]\.name: route name "a" is used twice/);
});

test('config: defaults are filled in', () => {
  const config = new ConfigValidator(SUBSYSTEMS, POLICIES).validate({
    listeners: [{ name: 'main', port: 8080 }],
    routes: [{ name: 'r', match: { prefix: '/' }, policies: [{ 'static-response': {} }] }],
  });
  assert.equal(config.listeners[0]!.address, '127.0.0.1');
  assert.equal(config.server.max_header_bytes, 16384);
  assert.equal(config.defaults.max_body_bytes, 10485760);
  assert.equal(config.admin.port, 9901);
  assert.deepEqual(config.routes[0]!.policies[0], {
    'static-response': { status: 200, body: '', content_type: 'text/plain; charset=utf-8', headers: {} },
  });
});

test('config: YAML duplicate keys are refused', () => {
  assert.throws(() => parseYaml('listeners: []\nlisteners: []\n', 'x.yaml'), ConfigError);
});

test('config: secrets are references, resolved from the environment or a file, never inline', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kycgate-secret-'));
  try {
    writeFileSync(path.join(dir, 'token'), 's3cret-from-file\n');
    assert.equal(resolveSecret({ file: 'token' }, dir), 's3cret-from-file');
    assert.equal(resolveSecret({ env: 'KG_TEST_SECRET' }, dir, { KG_TEST_SECRET: 'from-env' }), 'from-env');
    assert.throws(() => resolveSecret('inline-value', dir), /never an inline value/);
    assert.throws(() => resolveSecret({ env: 'KG_UNSET' }, dir, {}), /KG_UNSET.*not set/);
    try {
      resolveSecret({ file: 'missing' }, dir);
      assert.fail('must throw');
    } catch (err) {
      assert.doesNotMatch((err as Error).message, /s3cret/);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.equal(safeEqual('abc', 'abc'), true);
  assert.equal(safeEqual('abc', 'abd'), false);
  assert.equal(safeEqual('abc', 'abcd'), false);
});

test('config: `kycgate validate` names the invalid keys and exits non-zero; a valid file exits 0', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kycgate-validate-'));
  try {
    const bad = path.join(dir, 'bad.yaml');
    writeFileSync(
      bad,
      'listeners:\n  - name: main\n    port: 99999\nroutes:\n  - name: r\n    match: {prefix: /}\n    upstream: nowhere\n',
    );
    await assert.rejects(run(process.execPath, [CLI, 'validate', bad]), (err: { code: number; stderr: string }) => {
      assert.equal(err.code, 1);
      assert.match(err.stderr, /listeners\[0\]\.port: must be <= 65535/);
      return true;
    });
    const good = path.join(dir, 'good.yaml');
    writeFileSync(
      good,
      'listeners:\n  - name: main\n    port: 8080\nupstreams:\n  api:\n    targets: [{url: ' +
        '"http://127.0.0.1:9000"}]\nroutes:\n  - name: r\n    match: {prefix: /}\n    upstream: api\n',
    );
    const ok = await run(process.execPath, [CLI, 'validate', good]);
    assert.match(ok.stdout, /valid/);
    // The example names certificate files of a real host: valid offline, and online it says which are missing.
    const example = await run(process.execPath, [CLI, 'validate', '--offline', path.resolve('examples/kycgate.yaml')]);
    assert.match(example.stdout, /valid/);
    await assert.rejects(
      run(process.execPath, [CLI, 'validate', path.resolve('examples/kycgate.yaml')]),
      (err: { code: number; stderr: string }) =>
        /listeners\[0\]\.tls\.cert: file \/etc\/kycgate\/tls\/cert\.pem/.test(err.stderr),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('config: the published schema (docs/config.schema.json) is the one the gateway validates with', () => {
  const published = JSON.parse(readFileSync('docs/config.schema.json', 'utf8'));
  assert.deepEqual(
    published,
    JSON.parse(JSON.stringify(fullSchema(SUBSYSTEMS, POLICIES))),
    'run `node dist/src/cli/main.js schema > docs/config.schema.json`',
  );
});
