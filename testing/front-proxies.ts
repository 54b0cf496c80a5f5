/**
 * Real front proxies (nginx, Caddy) in front of a kycgate decision listener, started from the recipes in
 * examples/ as non-daemon child processes on ephemeral ports, with their logs in temp files. Used by the
 * decision-service tests and reusable by benchmarks: `nginxConfig` and `caddyConfig` return the exact config run.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { freePort, waitForPort } from './ports.js';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';

export type FrontProxyName = 'nginx' | 'caddy';

export interface FrontProxyOptions {
  /** host:port of the kycgate decision listener. */
  decision: string;
  /** host:port of the application the proxy forwards allowed requests to. */
  upstream: string;
  /** nginx: keep the decision cache (proxy_cache on the auth subrequest). Default true. */
  cache?: boolean;
  /** nginx worker processes. Default 1. */
  workers?: number;
  /** nginx: write an access log (off by default, for benchmarks). */
  accessLog?: boolean;
  /** nginx: ask kycgate (auth_request). Default true; false gives bare nginx proxying, the benchmark baseline. */
  decide?: boolean;
}

export interface FrontProxy {
  readonly name: FrontProxyName;
  readonly url: string;
  readonly port: number;
  /** The config file the proxy runs. */
  readonly configFile: string;
  /** Error log (nginx) or combined log output (Caddy). */
  readonly logFile: string;
  log(): string;
  close(): Promise<void>;
}

const EXAMPLES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../examples');

export { freePort };

/** Path of a binary on PATH (or in /usr/sbin), or undefined. */
export function findBinary(name: string): string | undefined {
  for (const dir of [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/bin']) {
    const candidate = path.join(dir, name);
    if (dir !== '' && existsSync(candidate)) return candidate;
  }
  return undefined;
}

/**
 * The binary, or undefined after skipping the test with a printed reason. Under CI=true a missing binary fails the
 * test: CI installs nginx and caddy (.ci/run).
 */
export function requireBinary(t: TestContext, name: FrontProxyName): string | undefined {
  const found = findBinary(name);
  if (found) return found;
  const reason = `${name} is not installed (apt-get install -y ${name})`;
  if (process.env.CI === 'true') assert(false, `${reason}; CI must install it`);
  console.log(`# skipped: ${reason}`);
  t.skip(reason);
  return undefined;
}

function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

/** The nginx recipe (examples/nginx/kycgate.conf) pointed at the given addresses, wrapped in a runnable main config. */
export function nginxConfig(options: FrontProxyOptions & { port: number; dir: string }): string {
  let recipe = readFileSync(path.join(EXAMPLES, 'nginx/kycgate.conf'), 'utf8')
    .replace('server 127.0.0.1:9080;', `server ${options.decision};`)
    .replace('server 127.0.0.1:3000;', `server ${options.upstream};`)
    .replace('listen 8080;', `listen 127.0.0.1:${options.port};`)
    .replace('/var/cache/nginx/kycgate', path.join(options.dir, 'cache'));
  if (options.cache === false) recipe = recipe.replace(/^\s*proxy_cache(_path|_key)? .*$/gm, '');
  if (options.decide === false) recipe = recipe.replace(/^\s*auth_request \/_kycgate;$/m, '');
  const isRoot = process.getuid?.() === 0;
  return [
    'daemon off;',
    'master_process on;',
    isRoot ? 'user root;' : '',
    `worker_processes ${options.workers ?? 1};`,
    `pid ${path.join(options.dir, 'nginx.pid')};`,
    `error_log ${path.join(options.dir, 'error.log')} warn;`,
    'events { worker_connections 4096; }',
    'http {',
    options.accessLog ? `  access_log ${path.join(options.dir, 'access.log')};` : '  access_log off;',
    `  client_body_temp_path ${path.join(options.dir, 'body')};`,
    `  proxy_temp_path ${path.join(options.dir, 'proxy')};`,
    `  fastcgi_temp_path ${path.join(options.dir, 'fastcgi')};`,
    `  uwsgi_temp_path ${path.join(options.dir, 'uwsgi')};`,
    `  scgi_temp_path ${path.join(options.dir, 'scgi')};`,
    recipe,
    '}',
    '',
  ].join('\n');
}

/** The Caddy recipe (examples/caddy/Caddyfile) pointed at the given addresses, with the admin API off. */
export function caddyConfig(options: FrontProxyOptions & { port: number }): string {
  const recipe = readFileSync(path.join(EXAMPLES, 'caddy/Caddyfile'), 'utf8')
    .replace('forward_auth 127.0.0.1:9080', `forward_auth ${options.decision}`)
    .replace('reverse_proxy 127.0.0.1:3000', `reverse_proxy ${options.upstream}`)
    .replace('http://:8080', `http://127.0.0.1:${options.port}`);
  return `{\n\tadmin off\n\tauto_https off\n}\n\n${recipe}`;
}

/** Waits for the proxy's port; fails at once, with its log, if it exits first. */
function waitForProxy(port: number, child: ChildProcess, log: () => string): Promise<void> {
  return waitForPort(port, {
    timeoutMs: 10_000,
    failed: () => (child.exitCode !== null ? `front proxy exited with ${child.exitCode}:\n${log()}` : undefined),
  }).catch((err: Error) => {
    throw err.message.startsWith('front proxy exited')
      ? err
      : new Error(`front proxy did not listen on ${port}:\n${log()}`);
  });
}

function stopChild(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill(signal);
  });
}

export async function startNginx(
  options: FrontProxyOptions,
  binary = findBinary('nginx') ?? 'nginx',
): Promise<FrontProxy> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kycgate-nginx-'));
  const port = await freePort();
  const configFile = path.join(dir, 'nginx.conf');
  const logFile = path.join(dir, 'error.log');
  writeFileSync(configFile, nginxConfig({ ...options, port, dir }));
  writeFileSync(logFile, '');
  const check = spawnSync(binary, ['-t', '-q', '-p', dir, '-e', logFile, '-c', configFile], { encoding: 'utf8' });
  if (check.status !== 0) throw new Error(`nginx refused the config:\n${check.stderr}`);
  const child = spawn(binary, ['-p', dir, '-e', logFile, '-c', configFile], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const log = () => stderr + readFileSync(logFile, 'utf8');
  await waitForProxy(port, child, log);
  return {
    name: 'nginx',
    url: `http://127.0.0.1:${port}`,
    port,
    configFile,
    logFile,
    log,
    async close() {
      await stopChild(child, 'SIGQUIT');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function startCaddy(
  options: FrontProxyOptions,
  binary = findBinary('caddy') ?? 'caddy',
): Promise<FrontProxy> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kycgate-caddy-'));
  const port = await freePort();
  const configFile = path.join(dir, 'Caddyfile');
  const logFile = path.join(dir, 'caddy.log');
  writeFileSync(configFile, caddyConfig({ ...options, port }));
  const env = {
    ...process.env,
    HOME: dir,
    XDG_CONFIG_HOME: path.join(dir, 'config'),
    XDG_DATA_HOME: path.join(dir, 'data'),
  };
  const child = spawn(binary, ['run', '--config', configFile, '--adapter', 'caddyfile'], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const append = (c: Buffer) => {
    output += c.toString();
  };
  child.stdout!.on('data', append);
  child.stderr!.on('data', append);
  const log = () => output;
  await waitForProxy(port, child, log);
  return {
    name: 'caddy',
    url: `http://127.0.0.1:${port}`,
    port,
    configFile,
    logFile,
    log: () => {
      writeFileSync(logFile, output);
      return output;
    },
    async close() {
      await stopChild(child, 'SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function startFrontProxy(name: FrontProxyName, options: FrontProxyOptions): Promise<FrontProxy> {
  return name === 'nginx' ? startNginx(options) : startCaddy(options);
}
