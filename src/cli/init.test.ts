/**
 * `kycgate init` writes a production-shaped configuration that starts as written (TLS, PostgreSQL, Redis, API keys,
 * a KYC-gated route, admin API, audit and access log), from flags or by answering its questions; `kycgate start
 * --print-config` prints the effective configuration of the demo or a file, secrets redacted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import { PostgresStore } from '../store/postgres.js';
import { CLI, cliEnv, runCli, spawnCli } from '../../testing/cli-process.js';
import { freePort } from '../../testing/ports.js';
import { POSTGRES_URL, REDIS_URL, requirePostgres, requireRedis, uniqueName } from '../../testing/services.js';
import { redact } from './print-config.js';

function workDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kycgate-init-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function get(url: string, ca: string, headers: Record<string, string> = {}): Promise<{ status: number; type: string }> {
  return new Promise((resolve, reject) => {
    https
      .get(url, { ca, headers, servername: 'localhost' }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']) }));
      })
      .on('error', reject);
  });
}

test('init: PostgreSQL, Redis, API keys and Didit, written from flags, start as written', async (t) => {
  if (!(await requirePostgres(t)) || !(await requireRedis(t))) return;
  const dir = workDir(t);
  const schema = uniqueName('init');
  t.after(async () => {
    const admin = new PostgresStore({ connectionString: POSTGRES_URL, schema, poolSize: 1 });
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => undefined);
    await admin.close();
  });
  const [port, httpPort, adminPort] = [await freePort(), await freePort(), await freePort()];
  const file = path.join(dir, 'etc', 'kycgate.yaml');
  const init = await runCli([
    'init',
    ...['--output', file, '--address', '127.0.0.1', '--port', String(port), '--http-port', String(httpPort)],
    ...['--admin-port', String(adminPort), '--store', 'postgres', '--postgres-schema', schema, '--provider', 'didit'],
  ]);
  assert.equal(init.code, 0, init.stderr);
  assert.match(init.stderr, /wrote a self-signed certificate/);
  const written = parse(readFileSync(file, 'utf8')) as Record<string, any>;
  assert.equal(written.audit.enabled, true);
  assert.equal(written.log.access, true);
  assert.deepEqual(written.redis.url, { env: 'KYCGATE_REDIS_URL' });
  assert.equal(written.kyc.providers.didit.type, 'didit');
  assert.equal(statSync(path.join(dir, 'etc', 'secrets', 'kyc-subject.key')).mode & 0o777, 0o600);
  assert.equal((await runCli(['init', '--output', file])).code, 1, 'an existing file is not replaced');

  const env = cliEnv({
    KYCGATE_POSTGRES_URL: POSTGRES_URL,
    KYCGATE_REDIS_URL: REDIS_URL,
    DIDIT_API_KEY: 'test-api-key',
    DIDIT_WEBHOOK_SECRET: 'test-webhook-secret',
  });
  const valid = await runCli(['validate', file], { env });
  assert.equal(valid.code, 0, valid.stderr);
  // Run from another directory: everything the file names is relative to the file.
  const gateway = spawnCli(['start', '-c', file], { cwd: os.tmpdir(), env });
  t.after(() => gateway.stop());
  await gateway.waitFor((l) => l.msg === 'listening' && l.listener === 'admin');
  // Ready once PostgreSQL and Redis answer (Redis connects in the background): bounded, not timed.
  let ready = await fetch(`http://127.0.0.1:${adminPort}/readyz`);
  for (let i = 0; i < 300 && ready.status !== 200; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    ready = await fetch(`http://127.0.0.1:${adminPort}/readyz`);
  }
  assert.equal(ready.status, 200, await ready.text());
  const redirect = await fetch(`http://127.0.0.1:${httpPort}/api/x`, { redirect: 'manual' });
  assert.equal(redirect.status, 308);
  const ca = readFileSync(path.join(dir, 'etc', 'tls', 'cert.pem'), 'utf8');
  const refused = await get(`https://127.0.0.1:${port}/api/accounts`, ca);
  assert.equal(refused.status, 401, 'the KYC route needs an API key first');
  assert.match(refused.type, /application\/problem\+json/);
  await gateway.waitFor((l) => l.status === 401 && l.route === 'api');
  assert.equal(await gateway.stop(), 0);
});

test('init: the questions on a terminal write a SQLite and sandbox config that starts', async (t) => {
  const dir = workDir(t);
  const file = path.join(dir, 'gw.yaml');
  const child = spawn(process.execPath, [CLI, 'init', '--interactive'], { cwd: dir, env: cliEnv() });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  // output, domain, port, store, redis, auth, provider, upstream
  const [port, sandboxPort] = [await freePort(), await freePort()];
  child.stdin.end(
    ['gw.yaml', '', String(port), 'sqlite', 'n', 'api-key', 'sandbox', 'http://127.0.0.1:9'].join('\n') + '\n',
  );
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  assert.equal(code, 0, stderr);
  const written = parse(readFileSync(file, 'utf8')) as Record<string, any>;
  assert.equal(written.listeners[0].port, port);
  assert.equal(written.store.driver, 'sqlite');
  assert.equal(written.redis, undefined);
  assert.equal(written.kyc.providers.sandbox.type, 'sandbox');
  // Ports free for this run (the written file keeps the defaults the person chose).
  const text = readFileSync(file, 'utf8')
    .replace(/port: 8080/, `port: ${await freePort()}`)
    .replace(/port: 9901/, `port: ${await freePort()}`)
    .replace(/port: 8090/, `port: ${sandboxPort}`);
  const runFile = path.join(dir, 'run.yaml');
  writeFileSync(runFile, text);
  const gateway = spawnCli(['start', '-c', runFile], { cwd: dir });
  t.after(() => gateway.stop());
  await gateway.waitFor((l) => l.msg === 'listening' && l.listener === 'admin');
  assert.equal(await gateway.stop(), 0);
});

test('print-config: the demo and a file, defaults filled in, credentials redacted', async (t) => {
  const dir = workDir(t);
  const demo = await runCli(['start', '--print-config'], { cwd: dir });
  assert.equal(demo.code, 0, demo.stderr);
  assert.match(demo.stdout, /^# Effective configuration of the built-in demo/);
  const config = parse(demo.stdout) as Record<string, any>;
  assert.deepEqual(
    config.listeners.map((l: { port: number }) => l.port),
    [8080, 8443],
  );
  assert.equal(config.server.drain_timeout_ms > 0, true, 'defaults filled in');
  assert.equal(config.kyc.providers.sandbox.type, 'sandbox');

  assert.deepEqual(
    redact({
      redis: { url: 'redis://:hunter2@cache:6379' },
      proxy: { token: 'Basic abc' },
      api_key: { env: 'DIDIT_API_KEY' },
      tls: { key: 'tls/key.pem' },
    }),
    {
      redis: { url: 'redis://:%5Bredacted%5D@cache:6379' },
      proxy: { token: '[redacted]' },
      api_key: { env: 'DIDIT_API_KEY' },
      tls: { key: 'tls/key.pem' },
    },
  );
});
