/**
 * kycgate as a user installs it: this checkout packed with `npm pack`, the tarball installed into an empty directory
 * outside the repository, and the installed `kycgate` command run from there: --version, validate, and the built-in
 * demo answering on its echo route and /readyz until SIGTERM.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { isBuiltin } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { DEMO_PORTS, holdDemoPorts } from '../../testing/demo-ports.js';
import { waitForPort } from '../../testing/ports.js';

const REPO = process.cwd();
const manifest = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  bin: Record<string, string>;
  scripts: Record<string, string>;
  dependencies: Record<string, string>;
};

/**
 * The environment for child npm and kycgate processes. Under `npm test` the parent npm exports npm_* variables,
 * among them npm_config_local_prefix (this checkout) and npm_package_*: a child npm must find its own project, so
 * only the variables that locate npm's cache and config files are kept.
 */
function cleanEnv(): NodeJS.ProcessEnv {
  const keep = new Set(['npm_config_cache', 'npm_config_userconfig', 'npm_config_globalconfig', 'npm_config_registry']);
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env))
    if (!k.toLowerCase().startsWith('npm_') || keep.has(k.toLowerCase())) env[k] = v;
  delete env.KYCGATE_DATA_DIR;
  return env;
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(file: string, args: string[], cwd: string, timeoutMs: number): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      file,
      args,
      { cwd, env: cleanEnv(), timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr });
      },
    );
  });
}

function filesUnder(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) filesUnder(full, out);
    else out.push(full);
  }
  return out;
}

/** Module specifiers of the static and literal dynamic imports in compiled JavaScript. */
function importsOf(js: string): string[] {
  const found: string[] = [];
  const re =
    /^(?:import|export)\b[^;]*?\bfrom\s*(['"])([^'"\n]+)\1\s*;|\bimport\(\s*(['"])([^'"\n]+)\3\s*\)|^import\s*(['"])([^'"\n]+)\5/gm;
  for (let m = re.exec(js); m !== null; m = re.exec(js)) found.push((m[2] ?? m[4] ?? m[6])!);
  return found;
}

async function get(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  return { status: res.status, body: await res.text() };
}

function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null)
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

test('package: npm pack ships the built CLI without tests or sources, and installs into an empty ' +
  'directory where kycgate runs --version, validate and the demo', {
  timeout: 600_000,
}, async (t) => {
  const work = mkdtempSync(path.join(os.tmpdir(), 'kycgate-install-'));
  t.after(() => rmSync(work, { recursive: true, force: true }));
  const started = Date.now();

  // 1. The tarball. `npm test` has just built dist/; the prepack script (a clean build) is skipped here because it
  //    would empty dist/ under the tests running beside this one. That prepack builds is checked on its own.
  assert.match(
    manifest.scripts.prepack ?? '',
    /scripts\/build\.mjs --clean/,
    'npm pack builds the package from a clean dist/',
  );
  const packed = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], REPO, 120_000);
  assert.equal(packed.code, 0, packed.stderr);
  const [info] = JSON.parse(packed.stdout) as Array<{
    filename: string;
    size: number;
    unpackedSize: number;
    files: Array<{ path: string }>;
  }>;
  const files = info!.files.map((f) => f.path);
  t.diagnostic(`tarball: ${info!.size} bytes, ${files.length} files, ${info!.unpackedSize} bytes unpacked`);
  const bin = manifest.bin.kycgate!;
  for (const needed of [bin, 'package.json', 'README.md', 'examples/kycgate.yaml', 'examples/decision/kycgate.yaml'])
    assert.ok(files.includes(needed), `the package holds ${needed}`);
  // The dashboard as built (scripts/build.mjs): its page and hashed assets, nothing to fetch at run time.
  assert.ok(files.includes('dist/dashboard/index.html'), 'the package holds the built dashboard');
  assert.ok(
    files.some((f) => /^dist\/dashboard\/assets\/index-[\w-]+\.js$/.test(f)),
    'and its script',
  );
  const extra = files.filter((f) =>
    /\.test\.js$|\.map$|\.ts$|^(src|testing|bench|scripts|deploy|docs)\/|tsbuildinfo/.test(f),
  );
  assert.deepEqual(extra, [], 'no tests, source maps, TypeScript sources or build info in the package');
  // Every subsystem the shipped JavaScript imports is in the package or a declared runtime dependency.
  const shipped = new Set(files);
  const packages = new Set<string>();
  // (The dashboard's bundle is self-contained: it is served to browsers, never imported by Node.)
  for (const file of files.filter((f) => f.startsWith('dist/src/') && f.endsWith('.js'))) {
    for (const spec of importsOf(readFileSync(path.join(REPO, file), 'utf8'))) {
      if (spec.startsWith('.')) {
        const target = path.posix.normalize(path.posix.join(path.posix.dirname(file), spec));
        assert.ok(shipped.has(target), `${file} imports ${spec}, which is not in the package`);
      } else if (!isBuiltin(spec)) {
        const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
        assert.ok(
          name in manifest.dependencies,
          `${file} imports ${spec}: "${name}" must be a dependency, not a devDependency`,
        );
        packages.add(name);
      }
    }
  }
  for (const used of ['better-sqlite3', 'commander', 'pino', 'undici', 'yaml'])
    assert.ok(packages.has(used), `the import scan found ${used}`);

  // 2. Install into an empty directory. Dependencies come from the registry through npm's cache (`npm ci` filled it,
  //    so --prefer-offline fetches little). better-sqlite3's install script compiles its native module when no
  //    prebuilt binary can be downloaded, about a minute and a half on two cores: the install skips scripts, pins
  //    better-sqlite3 to the version this checkout built, and takes that build instead of compiling it again.
  const project = path.join(work, 'project');
  const cwd = path.join(work, 'elsewhere');
  for (const dir of [project, cwd]) mkdirSync(dir);
  writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'kycgate-install-check', private: true }));
  const sqliteVersion = (
    JSON.parse(readFileSync(path.join(REPO, 'node_modules/better-sqlite3/package.json'), 'utf8')) as { version: string }
  ).version;
  const installStarted = Date.now();
  const installed = await run(
    'npm',
    [
      'install',
      '--prefer-offline',
      '--ignore-scripts',
      '--no-audit',
      '--no-fund',
      path.join(work, info!.filename),
      `better-sqlite3@${sqliteVersion}`,
    ],
    project,
    300_000,
  );
  assert.equal(installed.code, 0, installed.stderr);
  t.diagnostic(`npm install: ${Date.now() - installStarted} ms`);
  const nativeModule = 'node_modules/better-sqlite3/build/Release/better_sqlite3.node';
  mkdirSync(path.dirname(path.join(project, nativeModule)), { recursive: true });
  copyFileSync(path.join(REPO, nativeModule), path.join(project, nativeModule));
  const installedFiles = filesUnder(path.join(project, 'node_modules/kycgate')).map((f) =>
    path.relative(path.join(project, 'node_modules/kycgate'), f),
  );
  assert.ok(
    !installedFiles.some((f) => f.endsWith('.ts') || f.endsWith('.test.js')),
    'no TypeScript or tests installed',
  );

  // 3. The command, run from a directory that is neither the project nor the checkout.
  const kycgate = path.join(project, 'node_modules/.bin/kycgate');
  const version = await run(kycgate, ['--version'], cwd, 60_000);
  assert.equal(version.code, 0, version.stderr);
  assert.equal(version.stdout, `${manifest.version}\n`);

  // The decision-service example references no files or environment variables, so it is valid wherever it is copied.
  copyFileSync(
    path.join(project, 'node_modules/kycgate/examples/decision/kycgate.yaml'),
    path.join(cwd, 'gateway.yaml'),
  );
  const valid = await run(kycgate, ['validate', 'gateway.yaml'], cwd, 60_000);
  assert.equal(valid.code, 0, valid.stderr);
  assert.equal(valid.stdout, 'gateway.yaml: valid\n');
  writeFileSync(path.join(cwd, 'broken.yaml'), 'listeners:\n  - { name: http, port: 70000 }\n');
  const invalid = await run(kycgate, ['validate', 'broken.yaml'], cwd, 60_000);
  assert.equal(invalid.code, 1, 'an invalid file fails validation');
  assert.match(invalid.stderr, /listeners\[0\]\.port/);

  // 4. The demo, on its documented ports, from the installed package.
  const release = await holdDemoPorts(t);
  if (!release) return;
  let demo: ChildProcess | undefined;
  let output = '';
  t.after(async () => {
    if (demo && demo.exitCode === null && demo.signalCode === null) {
      demo.kill('SIGKILL');
      await exited(demo);
    }
    release();
  });
  demo = spawn(kycgate, ['start'], { cwd, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  demo.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  demo.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  const failed = () =>
    demo!.exitCode !== null || demo!.signalCode !== null
      ? `the demo exited (${demo!.exitCode ?? demo!.signalCode}):\n${output}`
      : undefined;
  await waitForPort(DEMO_PORTS.admin, { timeoutMs: 60_000, failed });
  await waitForPort(DEMO_PORTS.http, { timeoutMs: 60_000, failed });

  const echo = await get(`http://127.0.0.1:${DEMO_PORTS.http}/demo/echo/hello?x=1`);
  assert.equal(echo.status, 200, echo.body);
  assert.equal((JSON.parse(echo.body) as { path: string }).path, '/demo/echo/hello');
  // Readiness: every subsystem reports ready shortly after the listeners are up.
  let ready = await get(`http://127.0.0.1:${DEMO_PORTS.admin}/readyz`);
  for (const deadline = Date.now() + 30_000; ready.status !== 200 && Date.now() < deadline; ) {
    await new Promise((r) => setTimeout(r, 200));
    ready = await get(`http://127.0.0.1:${DEMO_PORTS.admin}/readyz`);
  }
  assert.equal(ready.status, 200, ready.body);
  assert.ok(
    existsSync(path.join(cwd, '.kycgate/tls/dev-cert.pem')),
    'the demo keeps its data under the directory it was started in',
  );
  // The start-up output names the dashboard and the admin key file, and the dashboard is served from the package.
  const keyFile = path.join(cwd, '.kycgate/admin-key');
  assert.ok(
    output.includes(`dashboard at http://127.0.0.1:${DEMO_PORTS.admin}/`) && output.includes(`admin key in ${keyFile}`),
    output,
  );
  const dashboard = await get(`http://127.0.0.1:${DEMO_PORTS.admin}/`);
  assert.equal(dashboard.status, 200);
  const script = /src="(\/assets\/[^"]+\.js)"/.exec(dashboard.body)?.[1];
  assert.ok(script, dashboard.body);
  assert.equal((await get(`http://127.0.0.1:${DEMO_PORTS.admin}${script}`)).status, 200);

  demo.kill('SIGTERM');
  const end = await exited(demo);
  assert.deepEqual(end, { code: 0, signal: null }, `SIGTERM drains and exits 0:\n${output}`);
  t.diagnostic(`whole test: ${Date.now() - started} ms`);
});
