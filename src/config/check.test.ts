/**
 * `kycgate validate` names every problem of a file in one run (schema, references, policy options, provider types,
 * secrets, files), each with its key path, the reason and a suggestion for a mistyped name; `--offline` skips what
 * needs the environment; `start` refuses the same file before it binds anything.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, ConfigValidator } from './load.js';
import { checkConfigFile } from './check.js';
import { SUBSYSTEMS, POLICIES } from '../bundled.js';
import { closest } from '../shared/suggest.js';
import { runCli } from '../../testing/cli-process.js';

function workDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kycgate-check-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const BAD = `
listeners:
  - { name: http, port: 70000, adress: 0.0.0.0 }
  - name: https
    port: 8443
    tls: { cert: /nonexistent/kycgate/cert.pem, key: tls/key.pem }
upstreams:
  app: { targets: [{ url: "http://127.0.0.1:3000" }] }
kyc:
  providers:
    main: { type: jumio, api_key: { env: KYCGATE_TEST_JUMIO_KEY } }
    didit: { type: diditt, api_key: { env: KYCGATE_TEST_DIDIT_KEY }, webhook_secret: { file: secrets/didit } }
  workflows:
    w: { provider: mian, workflow_id: "7d3c9a52-1f0e-4b8a-9d6e-3c2b1a0f9e8d", claims: { ok: 'facts.status == "Approved"' } }
routes:
  - name: a
    match: { prefix: /a }
    upstream: ap
    policies:
      - rate-limt: {}
      - authenticate: { methods: [{ api-key: { headr: x } }] }
`;

const OFFLINE_PROBLEMS = [
  'listeners[0]: has unknown key "adress" (did you mean "address"?)',
  'listeners[0].port: must be <= 65535',
  'routes[0].upstream: no upstream named "ap" (did you mean "app"?)',
  'routes[0].policies[0]: unknown policy "rate-limt" (did you mean "rate-limit"?)',
  'routes[0].policies[1].authenticate.methods[0].api-key: has unknown key "headr" (did you mean "header"?)',
  'kyc.providers.main.type: unknown provider type "jumio" (known: didit, onfido, persona, sandbox, sumsub, veriff)',
  'kyc.providers.didit.type: unknown provider type "diditt" (did you mean "didit"?)',
  'kyc.workflows.w.provider: no provider named "mian" (did you mean "main"?)',
];

function problemsOf(file: string, offline: boolean): string[] {
  try {
    checkConfigFile(file, new ConfigValidator(SUBSYSTEMS, POLICIES), { offline, env: {} });
    return [];
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.problems;
  }
}

test('validate: every problem of a file in one run, each with key path, reason and suggestion', (t) => {
  const dir = workDir(t);
  const file = path.join(dir, 'kycgate.yaml');
  writeFileSync(file, BAD);
  assert.deepEqual(problemsOf(file, true), OFFLINE_PROBLEMS);
  assert.deepEqual(problemsOf(file, false), [
    ...OFFLINE_PROBLEMS,
    'listeners[1].tls.cert: file /nonexistent/kycgate/cert.pem cannot be read (ENOENT)',
    `listeners[1].tls.key: file ${path.join(dir, 'tls/key.pem')} cannot be read (ENOENT)`,
    'kyc.providers.main.api_key: secret {env: KYCGATE_TEST_JUMIO_KEY}: the environment variable is not set',
    'kyc.providers.didit.api_key: secret {env: KYCGATE_TEST_DIDIT_KEY}: the environment variable is not set',
    'kyc.providers.didit.webhook_secret: secret {file: secrets/didit}: cannot be read (ENOENT)',
  ]);
});

test('validate: files and secrets that resolve pass; a valid file with an unset variable fails only online', (t) => {
  const dir = workDir(t);
  mkdirSync(path.join(dir, 'tls'));
  writeFileSync(path.join(dir, 'tls', 'ca.pem'), 'not parsed by validate');
  writeFileSync(path.join(dir, 'webhook'), 'secret\n');
  const file = path.join(dir, 'kycgate.yaml');
  writeFileSync(
    file,
    'listeners: [{ name: http, port: 8080 }]\nupstreams:\n  app: { targets: [{ url: "https://127.0.0.1:3000" }], ' +
      'tls: { ca: tls/ca.pem } }\nkyc:\n  providers:\n    didit: { type: didit, api_key: { env: KYCGATE_TEST_KEY }, ' +
      'webhook_secret: { file: webhook } }\n',
  );
  const validator = new ConfigValidator(SUBSYSTEMS, POLICIES);
  assert.doesNotThrow(() => checkConfigFile(file, validator, { env: { KYCGATE_TEST_KEY: 'k' } }));
  assert.doesNotThrow(() => checkConfigFile(file, validator, { offline: true, env: {} }));
  assert.deepEqual(problemsOf(file, false), [
    'kyc.providers.didit.api_key: secret {env: KYCGATE_TEST_KEY}: the environment variable is not set',
  ]);
});

test('validate: a {vault} reference without a vault section is named, offline too', (t) => {
  const dir = workDir(t);
  const file = path.join(dir, 'kycgate.yaml');
  writeFileSync(
    file,
    'listeners: [{ name: http, port: 8080 }]\nkyc:\n  providers:\n    didit: { type: didit, ' +
      'api_key: { vault: { path: secret/data/didit, key: api } }, webhook_secret: { env: KYCGATE_TEST_S } }\n',
  );
  const vaultProblem =
    'kyc.providers.didit.api_key: a {vault: ...} reference needs a top-level `vault` section (address, auth)';
  assert.deepEqual(problemsOf(file, true), [vaultProblem]);
  assert.deepEqual(problemsOf(file, false), [
    vaultProblem,
    'kyc.providers.didit.webhook_secret: secret {env: KYCGATE_TEST_S}: the environment variable is not set',
  ]);
});

test('validate: suggestions are offered only for a plausible typo', () => {
  assert.equal(closest('adress', ['address', 'port']), 'address');
  assert.equal(closest('mian', ['main', 'didit']), 'main');
  assert.equal(closest('max_body_byte', ['max_body_bytes', 'timeouts']), 'max_body_bytes');
  assert.equal(closest('veriff', ['didit', 'sandbox']), undefined);
  assert.equal(closest('x', ['port']), undefined);
});

test('validate CLI: exit 1 with every problem, --offline skips the environment, exit 0 when valid', async (t) => {
  const dir = workDir(t);
  const file = path.join(dir, 'bad.yaml');
  writeFileSync(file, BAD);
  const online = await runCli(['validate', file]);
  assert.equal(online.code, 1);
  assert.equal(online.stderr.split('\n').filter((l) => l.startsWith('  - ')).length, OFFLINE_PROBLEMS.length + 5);
  const good = path.join(dir, 'good.yaml');
  writeFileSync(good, 'listeners: [{ name: http, port: 8080, tls: { cert: c.pem, key: k.pem } }]\n');
  const offline = await runCli(['validate', '--offline', good]);
  assert.equal(offline.code, 0, offline.stderr);
  assert.match(offline.stdout, /valid \(offline: secrets and files not checked\)/);
  const missing = await runCli(['validate', good]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /listeners\[0\]\.tls\.cert: file .*c\.pem cannot be read \(ENOENT\)/);
});

test('start: a missing variable is refused before any listener is bound, naming every variable', async (t) => {
  const dir = workDir(t);
  // A port held here: a start that bound before checking would fail on it instead.
  const held = net.createServer();
  await new Promise<void>((resolve) => held.listen(0, '127.0.0.1', resolve));
  t.after(() => held.close());
  const port = (held.address() as net.AddressInfo).port;
  const file = path.join(dir, 'kycgate.yaml');
  writeFileSync(
    file,
    `data_dir: state\nlisteners: [{ name: http, port: ${port} }]\nadmin: { enabled: false }\nkyc:\n  providers:\n` +
      '    didit: { type: didit, api_key: { env: KYCGATE_TEST_A }, webhook_secret: { env: KYCGATE_TEST_B } }\n',
  );
  const r = await runCli(['start', '-c', file]);
  assert.equal(r.code, 1);
  assert.match(
    r.stderr,
    /kyc\.providers\.didit\.api_key: secret \{env: KYCGATE_TEST_A\}: the environment variable is not set/,
  );
  assert.match(r.stderr, /kyc\.providers\.didit\.webhook_secret: secret \{env: KYCGATE_TEST_B\}/);
  assert.doesNotMatch(r.stderr, /EADDRINUSE|in use/);
  assert.ok(!existsSync(path.join(dir, 'state')), 'nothing written before the config was accepted');
});
