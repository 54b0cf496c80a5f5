/**
 * The deployment artefacts under deploy/, checked as far as this machine allows: it has no container runtime and no
 * Helm. The Dockerfile and .dockerignore are read and held to what the image promises (docs/DEPLOY.md); the compose
 * file is parsed and its structure checked, and its kycgate config runs as two instances against the real PostgreSQL
 * and Redis; the Helm chart is rendered (testing/go-template.ts) and every object is validated against the
 * Kubernetes API schemas (kubernetes-models: its generated validators for types and required fields, its TypeScript
 * types for unknown fields), and the kycgate config it carries is validated by the gateway's own validator.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ts from 'typescript';
import YAML from 'yaml';
import pg from 'pg';
import { ConfigValidator, loadConfigFile } from '../src/config/load.js';
import { SUBSYSTEMS, POLICIES } from '../src/bundled.js';
import { renderChart, type RenderedChart } from '../testing/go-template.js';
import { freePort, waitForPort } from '../testing/ports.js';
import { POSTGRES_URL, REDIS_URL, requirePostgres, requireRedis, uniqueName } from '../testing/services.js';

const REPO = process.cwd();
const DEPLOY = path.join(REPO, 'deploy');
const CHART = path.join(DEPLOY, 'helm/kycgate');
const manifest = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as {
  version: string;
  bin: Record<string, string>;
  engines: { node: string };
};

type Doc = Record<string, any>;

/** Validates a kycgate config object with the gateway's validator, as `kycgate validate` does with a file. */
function validateKycgateConfig(config: unknown, name: string): void {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kycgate-deploy-'));
  try {
    const file = path.join(dir, name);
    writeFileSync(file, YAML.stringify(config));
    loadConfigFile(file, new ConfigValidator(SUBSYSTEMS, POLICIES));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Every `{file: PATH}` secret reference in a config. */
function fileReferences(value: unknown, out: string[] = []): string[] {
  if (Array.isArray(value)) for (const v of value) fileReferences(v, out);
  else if (value && typeof value === 'object') {
    const entries = Object.entries(value);
    if (entries.length === 1 && entries[0]![0] === 'file' && typeof entries[0]![1] === 'string')
      out.push(entries[0]![1]);
    else for (const [, v] of entries) fileReferences(v, out);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------- image

/** Dockerfile instructions (continuation lines joined, comments dropped), each split into its keyword and rest. */
function dockerfile(): Array<{ op: string; args: string }> {
  const text = readFileSync(path.join(DEPLOY, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const [op, ...rest] = l.split(/\s+/);
      return { op: op!.toUpperCase(), args: rest.join(' ') };
    });
}

test(
  'image: multi-stage on a supported Node.js LTS, native module built in the build stage, non-root, ' +
    'data on a volume, health check on the admin listener',
  () => {
    const lines = dockerfile();
    const froms = lines.filter((l) => l.op === 'FROM');
    assert.equal(froms.length, 2, 'a build stage and a runtime stage');
    const nodeVersion = Number(
      /^NODE_VERSION=(\d+)$/.exec(lines.find((l) => l.op === 'ARG' && l.args.startsWith('NODE_VERSION='))!.args)![1],
    );
    assert.ok(
      nodeVersion % 2 === 0 && nodeVersion >= Number(/>=(\d+)/.exec(manifest.engines.node)![1]),
      `Node.js ${nodeVersion}: an LTS line within engines ${manifest.engines.node}`,
    );
    assert.match(froms[0]!.args, /^node:\$\{NODE_VERSION\}-bookworm AS build$/);
    assert.match(
      froms[1]!.args,
      /^node:\$\{NODE_VERSION\}-bookworm-slim AS runtime$/,
      'the runtime stage is the slim image of the same Debian release (same glibc as the native module was built against)',
    );

    const stage = (i: number) =>
      lines.slice(lines.indexOf(froms[i]!) + 1, i + 1 < froms.length ? lines.indexOf(froms[i + 1]!) : undefined);
    const build = stage(0);
    const runtime = stage(1);
    const buildRuns = build
      .filter((l) => l.op === 'RUN')
      .map((l) => l.args)
      .join('\n');
    assert.match(buildRuns, /npm ci --ignore-scripts/);
    assert.match(
      buildRuns,
      /npm rebuild better-sqlite3 --build-from-source/,
      'better-sqlite3 compiled in the build stage',
    );
    assert.match(buildRuns, /npm pack/, 'the image holds what the npm package holds');
    assert.match(buildRuns, /npm prune --omit=dev/);
    assert.match(
      buildRuns,
      /better-sqlite3'\)\)\(':memory:'\)/,
      'the build fails when the native module does not load',
    );
    assert.ok(
      !runtime.some((l) => l.op === 'RUN' && /npm (ci|install|rebuild)|node-gyp|apt-get/.test(l.args)),
      'nothing is built or installed in the runtime stage',
    );

    // Every file the build copies is in the build context .dockerignore lets through, and the build has every tree
    // tsconfig.json compiles except deploy/ (whose only TypeScript is this test).
    const ignore = readFileSync(path.join(REPO, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    assert.equal(ignore[0], '*', '.dockerignore lets through only what it lists');
    const allowed = new Set(ignore.slice(1).map((l) => l.replace(/^!/, '')));
    const copied = build
      .filter((l) => l.op === 'COPY' && !l.args.startsWith('--from'))
      .flatMap((l) => l.args.split(/\s+/).slice(0, -1));
    for (const src of copied) {
      assert.ok(allowed.has(src), `COPY ${src}: let through by .dockerignore`);
      assert.ok(existsSync(path.join(REPO, src)), `COPY ${src}: exists`);
    }
    const tsconfig = JSON.parse(readFileSync(path.join(REPO, 'tsconfig.json'), 'utf8')) as { include: string[] };
    for (const root of tsconfig.include.map((p) => p.split('/')[0]!))
      if (root !== 'deploy')
        assert.ok(copied.includes(root), `the build copies ${root}/, which tsconfig.json compiles`);
    for (const needed of ['package.json', 'package-lock.json', 'tsconfig.json', 'scripts', 'src', 'dashboard'])
      assert.ok(copied.includes(needed), `the build copies ${needed}`);

    const env = Object.fromEntries(
      runtime
        .filter((l) => l.op === 'ENV')
        .flatMap((l) => [...l.args.matchAll(/(\w+)=(\S+)/g)].map((m) => [m[1]!, m[2]!])),
    );
    const user = runtime.filter((l) => l.op === 'USER').at(-1)!.args;
    assert.match(
      user,
      /^[1-9]\d*:[1-9]\d*$/,
      'runs as a numeric non-root uid:gid (Kubernetes can verify runAsNonRoot)',
    );
    const volume = JSON.parse(runtime.find((l) => l.op === 'VOLUME')!.args) as string[];
    assert.deepEqual(volume, [env.KYCGATE_DATA_DIR], 'the data directory is the volume');
    assert.match(
      runtime
        .filter((l) => l.op === 'RUN')
        .map((l) => l.args)
        .join('\n'),
      new RegExp(`chown ${user} ${env.KYCGATE_DATA_DIR}`),
      'owned by the user the container runs as',
    );
    assert.equal(env.KYCGATE_HEALTHCHECK_URL, 'http://127.0.0.1:9901/healthz', 'the default admin listener');
    const healthcheck = runtime.find((l) => l.op === 'HEALTHCHECK')!.args;
    assert.match(healthcheck, /CMD \["node", "-e", ".*process\.env\.KYCGATE_HEALTHCHECK_URL.*"\]/);
    const entrypoint = JSON.parse(runtime.find((l) => l.op === 'ENTRYPOINT')!.args) as string[];
    assert.deepEqual(entrypoint, ['node', `/opt/kycgate/${manifest.bin.kycgate}`], "the package's bin");
    assert.deepEqual(JSON.parse(runtime.find((l) => l.op === 'CMD')!.args), [
      'start',
      '--config',
      '/etc/kycgate/kycgate.yaml',
    ]);
  },
);

// -------------------------------------------------------------------------------------------------------- compose

function compose(): Doc {
  return YAML.parse(readFileSync(path.join(DEPLOY, 'compose/compose.yaml'), 'utf8'), { merge: true }) as Doc;
}

test('compose: two kycgate instances on PostgreSQL and Redis, read-only and non-root, secrets as files, admin listener not published', () => {
  const c = compose();
  const config = YAML.parse(
    readFileSync(path.join(DEPLOY, 'compose', c.configs['kycgate-config'].file), 'utf8'),
  ) as Doc;
  validateKycgateConfig(config, 'kycgate.yaml');
  assert.equal(config.store.driver, 'postgres');
  assert.ok(config.redis, 'instances share Redis');
  assert.equal(config.audit.enabled, true);
  assert.equal(config.log.access, true);
  const listenerPorts = (config.listeners as Doc[]).map((l) => l.port as number);

  const instances = Object.keys(c.services).filter((name) => c.services[name].build);
  assert.deepEqual(instances, ['kycgate-a', 'kycgate-b']);
  const dataVolumes = new Set<string>();
  const hostPorts = new Set<string>();
  const secretsScript = readFileSync(path.join(DEPLOY, 'compose/secrets.sh'), 'utf8');
  for (const name of instances) {
    const s = c.services[name];
    assert.equal(s.build.dockerfile, 'deploy/Dockerfile');
    assert.equal(path.resolve(DEPLOY, 'compose', s.build.context), REPO, 'built from the repository root');
    assert.equal(s.read_only, true);
    assert.match(s.user, /^[1-9]\d*:[1-9]\d*$/);
    assert.deepEqual(s.cap_drop, ['ALL']);
    assert.deepEqual(s.configs, [{ source: 'kycgate-config', target: '/etc/kycgate/kycgate.yaml' }]);
    assert.deepEqual(s.command, ['start', '--config', '/etc/kycgate/kycgate.yaml']);
    for (const dep of ['postgres', 'redis'])
      assert.equal(s.depends_on[dep].condition, 'service_healthy', `${name} waits for ${dep}`);
    // Published: a listener port, on the loopback address only; the admin port never.
    for (const p of s.ports as string[]) {
      const [host, published, target] = p.split(':');
      assert.equal(host, '127.0.0.1', `${name} publishes ${p} on the loopback address only`);
      assert.ok(listenerPorts.includes(Number(target)), `${name} publishes a listener port (${p})`);
      assert.notEqual(Number(target), config.admin.port, 'the admin listener is not published');
      hostPorts.add(published!);
    }
    // Its own data volume (audit journal), mounted where the image keeps data.
    const data = (s.volumes as string[]).find((v) => v.endsWith(`:${s.environment.KYCGATE_DATA_DIR}`));
    assert.ok(data, `${name} keeps ${s.environment.KYCGATE_DATA_DIR} on a volume`);
    dataVolumes.add(data.split(':')[0]!);
    // Every secret file the config references is a compose secret of this service, written by secrets.sh.
    for (const ref of fileReferences(config)) {
      const secret = /^\/run\/secrets\/([\w.-]+)$/.exec(ref)?.[1];
      assert.ok(secret, `${ref}: a compose secret`);
      assert.ok((s.secrets as string[]).includes(secret), `${name} mounts secret ${secret}`);
      assert.ok(c.secrets[secret], `secret ${secret} is defined`);
      assert.ok(
        secretsScript.includes(path.basename(c.secrets[secret].file)),
        `secrets.sh writes ${c.secrets[secret].file}`,
      );
    }
    const grace = /^(\d+)s$/.exec(s.stop_grace_period)!;
    assert.ok(Number(grace[1]) * 1000 > config.server.drain_timeout_ms, 'compose waits longer than the gateway drains');
  }
  assert.equal(dataVolumes.size, 2, 'one data volume per instance');
  assert.equal(hostPorts.size, 2, 'the instances are published on different host ports');
  for (const dep of ['postgres', 'redis']) {
    assert.ok(c.services[dep].healthcheck?.test, `${dep} has a health check`);
    assert.ok(!c.services[dep].ports, `${dep} is not published`);
  }
  assert.equal(
    c.services.postgres.environment.POSTGRES_PASSWORD_FILE,
    '/run/secrets/postgres_password',
    'no password in the environment',
  );
  const redisCommand = (c.services.redis.command as string[]).join(' ');
  assert.match(
    redisCommand,
    /\$\$\(cat \/run\/secrets\/redis_password\)" > \/tmp\/redis\.conf && exec redis-server \/tmp\/redis\.conf/,
    'Redis reads its password from the secret into a config file',
  );
  assert.doesNotMatch(redisCommand, /--requirepass/, 'never on a command line');
  for (const secret of Object.values(c.secrets) as Doc[])
    assert.ok(secretsScript.includes(path.basename(secret.file)), `secrets.sh writes ${secret.file}`);
});

interface Instance {
  child: ChildProcess;
  port: number;
  admin: number;
  output: () => string;
}

function runCli(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [path.join(REPO, manifest.bin.kycgate!), ...args],
      { env: { ...process.env, ...env }, timeout: 120_000 },
      (error, stdout, stderr) =>
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr }),
    );
  });
}

test('compose: its kycgate config runs as two instances sharing the real PostgreSQL and Redis (an API key made through one works on both)', {
  timeout: 180_000,
}, async (t) => {
  if (!(await requirePostgres(t)) || !(await requireRedis(t))) return;
  const work = mkdtempSync(path.join(os.tmpdir(), 'kycgate-compose-'));
  const schema = uniqueName('compose');
  const admin = new pg.Client({ connectionString: POSTGRES_URL });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${schema}`);
  const instances: Instance[] = [];
  t.after(async () => {
    for (const i of instances) {
      if (i.child.exitCode === null && i.child.signalCode === null) {
        i.child.kill('SIGKILL');
        await new Promise((r) => i.child.once('exit', r));
      }
    }
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => undefined);
    await admin.end();
    rmSync(work, { recursive: true, force: true });
  });

  // The secret files compose mounts under /run/secrets, here in a directory of the test, pointing at this machine's
  // PostgreSQL (in a schema of its own) and Redis. Ports: each instance gets free ones (compose gives each container
  // its own network namespace; here they share the loopback interface).
  const secrets = path.join(work, 'secrets');
  mkdirSync(secrets);
  const pgUrl = new URL(POSTGRES_URL);
  pgUrl.searchParams.set('options', `-c search_path=${schema}`);
  writeFileSync(path.join(secrets, 'kycgate_pg_url'), `${pgUrl.href}\n`);
  writeFileSync(path.join(secrets, 'kycgate_redis_url'), `${REDIS_URL}\n`);
  const text = readFileSync(path.join(DEPLOY, 'compose/kycgate.yaml'), 'utf8').replaceAll(
    '/run/secrets/',
    `${secrets}/`,
  );
  const files: string[] = [];
  for (const name of ['a', 'b']) {
    const config = YAML.parse(text) as Doc;
    const port = await freePort();
    const adminPort = await freePort();
    config.listeners[0].port = port;
    config.admin.port = adminPort;
    const file = path.join(work, `kycgate-${name}.yaml`);
    writeFileSync(file, YAML.stringify(config));
    files.push(file);
    const dataDir = path.join(work, `data-${name}`);
    let output = '';
    const child = spawn(process.execPath, [path.join(REPO, manifest.bin.kycgate!), 'start', '--config', file], {
      env: { ...process.env, KYCGATE_DATA_DIR: dataDir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (c: Buffer) => (output += c.toString('utf8')));
    child.stderr!.on('data', (c: Buffer) => (output += c.toString('utf8')));
    instances.push({ child, port, admin: adminPort, output: () => output });
  }
  for (const i of instances) {
    const failed = () =>
      i.child.exitCode !== null ? `instance exited (${i.child.exitCode}):\n${i.output()}` : undefined;
    await waitForPort(i.admin, { timeoutMs: 60_000, failed });
    await waitForPort(i.port, { timeoutMs: 60_000, failed });
  }

  const key = await runCli(['keys', 'create', '--config', files[0]!, '--consumer', 'example-app'], {
    KYCGATE_DATA_DIR: path.join(work, 'data-cli'),
  });
  assert.equal(key.code, 0, key.stderr);
  const apiKey = key.stdout.trim();
  for (const i of instances) {
    // Ready once its store and Redis answered a check: on a loaded machine the first check may time out.
    let ready = await fetch(`http://127.0.0.1:${i.admin}/readyz`);
    for (const deadline = Date.now() + 30_000; ready.status !== 200 && Date.now() < deadline; ) {
      await new Promise((r) => setTimeout(r, 250));
      ready = await fetch(`http://127.0.0.1:${i.admin}/readyz`);
    }
    const body = (await ready.json()) as { checks: Doc };
    assert.equal(ready.status, 200, JSON.stringify(body));
    assert.equal(body.checks.store.driver, 'postgres');
    assert.equal(body.checks.redis.ok, true);
    assert.equal((await fetch(`http://127.0.0.1:${i.port}/public/hello`)).status, 200);
    assert.equal((await fetch(`http://127.0.0.1:${i.port}/api/hello`)).status, 401, 'the API route needs a key');
    // The key was written to PostgreSQL by the CLI; each instance sees it (consumers and keys are shared).
    let res = await fetch(`http://127.0.0.1:${i.port}/api/hello`, { headers: { 'x-api-key': apiKey } });
    for (const deadline = Date.now() + 10_000; res.status === 401 && Date.now() < deadline; ) {
      await new Promise((r) => setTimeout(r, 100));
      res = await fetch(`http://127.0.0.1:${i.port}/api/hello`, { headers: { 'x-api-key': apiKey } });
    }
    assert.equal(res.status, 200, await res.text());
  }
  for (const i of instances) {
    i.child.kill('SIGTERM');
    const code = await new Promise((r) =>
      i.child.exitCode !== null ? r(i.child.exitCode) : i.child.once('exit', (c) => r(c)),
    );
    assert.equal(code, 0, i.output());
  }
});

// ----------------------------------------------------------------------------------------------------------- chart

const KINDS: Record<string, string> = {
  'v1/ConfigMap': 'v1/ConfigMap',
  'v1/Service': 'v1/Service',
  'v1/ServiceAccount': 'v1/ServiceAccount',
  'apps/v1/Deployment': 'apps/v1/Deployment',
  'policy/v1/PodDisruptionBudget': 'policy/v1/PodDisruptionBudget',
};

/**
 * Validates rendered objects against the Kubernetes API schemas. kubernetes-models' validators (generated from the
 * Kubernetes OpenAPI document, run by ajv) check types, formats and required fields but, like the API server's
 * schema, accept unknown fields; its TypeScript interfaces, assigned the objects as literals, reject those (as
 * kubectl's strict field validation would).
 */
async function validateKubernetes(docs: Doc[]): Promise<string[]> {
  const problems: string[] = [];
  const lines: string[] = [];
  for (const [n, doc] of docs.entries()) {
    const model = KINDS[`${doc.apiVersion}/${doc.kind}`];
    if (!model) {
      problems.push(`${doc.apiVersion} ${doc.kind}: not a kind this chart is expected to render`);
      continue;
    }
    const cls = path.basename(model);
    const mod = (await import(`kubernetes-models/${model}`)) as Record<
      string,
      new (
        d: unknown,
      ) => { validate(): void }
    >;
    try {
      new mod[cls]!(doc).validate();
    } catch (err) {
      problems.push(`${doc.kind} ${doc.metadata?.name}: ${(err as Error).message}`);
    }
    lines.push(
      `import type { I${cls} as T${n} } from 'kubernetes-models/${model}';`,
      `export const d${n}: T${n} = ${JSON.stringify(doc)};`,
    );
  }
  typeCheck.dir ??= mkdtempSync(path.join(os.tmpdir(), 'kycgate-k8s-types-'));
  const file = path.join(typeCheck.dir, 'objects.ts');
  writeFileSync(file, lines.join('\n') + '\n');
  // Each check reuses the previous program: only objects.ts changed, kubernetes-models' declarations are kept.
  const program = ts.createProgram({
    rootNames: [file],
    options: typeCheck.options,
    ...(typeCheck.last ? { oldProgram: typeCheck.last } : {}),
  });
  typeCheck.last = program;
  for (const d of ts.getPreEmitDiagnostics(program)) {
    const at = d.file && d.start !== undefined ? d.file.text.slice(0, d.start).split('\n').length : 0;
    const doc = docs[Math.floor((at - 1) / 2)];
    problems.push(
      `${doc ? `${doc.kind} ${doc.metadata?.name}` : 'objects.ts'}: ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`,
    );
  }
  return problems;
}

const typeCheck: { dir?: string; last?: ts.Program; options: ts.CompilerOptions } = {
  options: {
    noEmit: true,
    strict: true,
    skipLibCheck: true,
    types: [],
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    baseUrl: REPO,
    paths: { 'kubernetes-models/*': ['node_modules/kubernetes-models/*'] },
  },
};
process.on('exit', () => typeCheck.dir && rmSync(typeCheck.dir, { recursive: true, force: true }));

function only(chart: RenderedChart, kind: string): Doc {
  const docs = chart.documents.filter((d) => d.kind === kind);
  assert.equal(docs.length, 1, `one ${kind}`);
  return docs[0]!;
}

/** What every rendering of the chart must hold, whatever the values. */
function checkChart(chart: RenderedChart): { deployment: Doc; pod: Doc; kycgate: Doc; config: Doc } {
  const deployment = only(chart, 'Deployment');
  const pod = deployment.spec.template;
  assert.deepEqual(
    deployment.spec.selector.matchLabels,
    Object.fromEntries(Object.entries(pod.metadata.labels).filter(([k]) => k in deployment.spec.selector.matchLabels)),
    'the selector selects the pods',
  );
  for (const [k, v] of Object.entries(deployment.spec.selector.matchLabels)) assert.equal(pod.metadata.labels[k], v);

  const kycgate = (pod.spec.containers as Doc[]).find((c) => c.name === 'kycgate')!;
  const configMap = only(chart, 'ConfigMap');
  const config = YAML.parse(configMap.data['kycgate.yaml']) as Doc;
  validateKycgateConfig(config, 'kycgate.yaml');
  assert.deepEqual(kycgate.args, ['start', '--config', '/etc/kycgate/kycgate.yaml']);

  // Probes on the admin listener the config binds, on all addresses (the kubelet connects to the pod's IP).
  const ports = Object.fromEntries((kycgate.ports as Doc[]).map((p) => [p.name, p.containerPort]));
  assert.equal(ports.admin, config.admin.port, 'containerPorts.admin matches config.admin.port');
  assert.equal(config.admin.address, '0.0.0.0', 'the kubelet reaches the admin listener');
  assert.ok(
    (config.listeners as Doc[]).some((l) => l.port === ports.http),
    'containerPorts.http is a listener of the config',
  );
  assert.deepEqual(kycgate.livenessProbe.httpGet, { path: '/healthz', port: 'admin' });
  assert.deepEqual(kycgate.readinessProbe.httpGet, { path: '/readyz', port: 'admin' });

  // Non-root, read-only root file system, nothing to escalate; the data directory and /tmp are volumes.
  assert.equal(pod.spec.securityContext.runAsNonRoot, true);
  assert.ok(pod.spec.securityContext.runAsUser > 0);
  for (const c of [...(pod.spec.initContainers ?? []), ...pod.spec.containers] as Doc[]) {
    assert.equal(c.securityContext.readOnlyRootFilesystem, true, `${c.name}: read-only root file system`);
    assert.equal(c.securityContext.allowPrivilegeEscalation, false, `${c.name}: no privilege escalation`);
    assert.deepEqual(c.securityContext.capabilities.drop, ['ALL'], `${c.name}: no capabilities`);
    assert.ok(c.resources?.limits?.memory && c.resources?.requests?.cpu, `${c.name}: resources`);
    for (const m of c.volumeMounts as Doc[])
      assert.ok(
        (pod.spec.volumes as Doc[]).some((v) => v.name === m.name),
        `${c.name} mounts volume ${m.name}, which exists`,
      );
  }
  const mount = (p: string) => (kycgate.volumeMounts as Doc[]).find((m) => m.mountPath === p);
  const env = Object.fromEntries((kycgate.env as Doc[]).map((e) => [e.name, e.value]));
  assert.ok(mount(env.KYCGATE_DATA_DIR), 'the data directory is a volume');
  assert.ok(mount('/tmp'), '/tmp is a volume');
  assert.equal(mount('/etc/kycgate')?.readOnly, true);
  const configVolume = (pod.spec.volumes as Doc[]).find((v) => v.name === mount('/etc/kycgate')!.name)!;
  assert.equal(configVolume.configMap.name, configMap.metadata.name);
  assert.equal(pod.metadata.annotations['checksum/config'].length, 64);

  // Every secret file the config references is in a mounted Secret.
  for (const ref of fileReferences(config)) {
    const dir = (kycgate.volumeMounts as Doc[]).find((m) => ref.startsWith(`${m.mountPath}/`));
    assert.ok(dir, `${ref} is under a mounted volume`);
    const volume = (pod.spec.volumes as Doc[]).find((v) => v.name === dir.name)!;
    assert.ok(volume.secret?.secretName, `${ref} comes from a Secret`);
  }

  const service = only(chart, 'Service');
  assert.deepEqual(service.spec.selector, deployment.spec.selector.matchLabels, 'the Service selects the pods');
  for (const p of service.spec.ports as Doc[])
    assert.ok(
      p.targetPort in ports && p.targetPort !== 'admin',
      'the Service exposes a listener, never the admin port',
    );
  return { deployment, pod, kycgate, config };
}

test(
  'chart: the default values render a Deployment, Service, ConfigMap, PodDisruptionBudget and ' +
    'ServiceAccount valid for Kubernetes, carrying a valid kycgate config',
  async () => {
    const chart = renderChart(CHART, { release: 'gw' });
    assert.deepEqual(chart.documents.map((d) => d.kind).sort(), [
      'ConfigMap',
      'Deployment',
      'PodDisruptionBudget',
      'Service',
      'ServiceAccount',
    ]);
    assert.deepEqual(await validateKubernetes(chart.documents), []);
    const { deployment, pod } = checkChart(chart);
    assert.equal(deployment.metadata.name, 'gw-kycgate');
    assert.equal(deployment.spec.replicas, 2);
    assert.equal(
      pod.spec.containers[0].image,
      `kycgate:${YAML.parse(readFileSync(path.join(CHART, 'Chart.yaml'), 'utf8')).appVersion}`,
    );
    assert.equal(pod.spec.automountServiceAccountToken, false);
    const pdb = only(chart, 'PodDisruptionBudget');
    assert.deepEqual(pdb.spec.selector.matchLabels, deployment.spec.selector.matchLabels);
    assert.equal(
      YAML.parse(readFileSync(path.join(CHART, 'Chart.yaml'), 'utf8')).appVersion,
      manifest.version,
      'the chart deploys this version',
    );
  },
);

test('chart: values change what they should (config rolls the pods, PDB and Secret optional, Vault references, image tag, extra env)', async () => {
  const base = renderChart(CHART, { release: 'kycgate' });
  const changed = renderChart(CHART, {
    release: 'kycgate',
    values: {
      config: { log: { level: 'debug' } },
      podDisruptionBudget: { enabled: false },
      secrets: { existingSecret: '' },
      serviceAccount: { create: false },
      image: { tag: '9.9.9' },
      env: [{ name: 'DIDIT_API_KEY', valueFrom: { secretKeyRef: { name: 'didit', key: 'api-key' } } }],
      podAnnotations: { 'prometheus.io/scrape': 'true' },
    },
  });
  const a = checkChart(base);
  assert.equal(a.deployment.metadata.name, 'kycgate', 'a release named after the chart is not doubled');
  // Without the Secret the default config's file references would be unmounted: use a config without them.
  const withoutSecrets = renderChart(CHART, {
    values: { secrets: { existingSecret: '' }, config: { store: null, redis: null } },
  });
  checkChart(withoutSecrets);
  assert.deepEqual(await validateKubernetes(withoutSecrets.documents), []);

  // Vault: the config reads the database URL from Vault, logging in with AppRole credentials from the Secret.
  const vault = renderChart(CHART, {
    values: {
      config: {
        vault: {
          address: 'https://vault.example.internal:8200',
          auth: {
            approle: {
              role_id: { file: '/run/secrets/kycgate/vault-role-id' },
              secret_id: { file: '/run/secrets/kycgate/vault-secret-id' },
            },
          },
        },
        // Values maps merge, as in Helm: the default `file` reference is removed with null, or both would be set.
        store: { postgres: { url: { file: null, vault: { path: 'secret/data/kycgate/postgres', key: 'url' } } } },
      },
    },
  });
  checkChart(vault);
  assert.deepEqual(await validateKubernetes(vault.documents), []);

  const b = changed.documents.find((d) => d.kind === 'Deployment')! as Doc;
  assert.notEqual(
    b.spec.template.metadata.annotations['checksum/config'],
    a.pod.metadata.annotations['checksum/config'],
    'a config change changes the pod template',
  );
  assert.equal(b.spec.template.metadata.annotations['prometheus.io/scrape'], 'true');
  assert.ok(!changed.documents.some((d) => d.kind === 'PodDisruptionBudget' || d.kind === 'ServiceAccount'));
  assert.equal(b.spec.template.spec.serviceAccountName, 'default');
  assert.ok(!(b.spec.template.spec.volumes as Doc[]).some((v) => v.secret), 'no Secret volume');
  assert.equal(b.spec.template.spec.containers[0].image, 'kycgate:9.9.9');
  assert.deepEqual(b.spec.template.spec.containers[0].env.at(-1), {
    name: 'DIDIT_API_KEY',
    valueFrom: { secretKeyRef: { name: 'didit', key: 'api-key' } },
  });
  assert.deepEqual(await validateKubernetes(changed.documents), []);
});

test('chart: SPIFFE through the CSI driver (Workload API socket for kycgate) or a spiffe-helper sidecar (SVID files)', async () => {
  const csi = renderChart(CHART, {
    values: {
      spiffe: { enabled: true, mode: 'csi' },
      config: {
        listeners: [
          {
            name: 'http',
            address: '0.0.0.0',
            port: 8080,
            tls: { workload_api: { client_trust: true }, client_auth: 'required' },
          },
        ],
      },
    },
  });
  const c = checkChart(csi);
  assert.deepEqual(await validateKubernetes(csi.documents), []);
  const socketVolume = (c.pod.spec.volumes as Doc[]).find((v) => v.csi)!;
  assert.deepEqual(socketVolume.csi, { driver: 'csi.spiffe.io', readOnly: true });
  const socketMount = (c.kycgate.volumeMounts as Doc[]).find((m) => m.name === socketVolume.name)!;
  const endpoint = (c.kycgate.env as Doc[]).find((e) => e.name === 'SPIFFE_ENDPOINT_SOCKET')!.value as string;
  assert.match(endpoint, /^unix:\/\//);
  assert.equal(
    path.posix.dirname(endpoint.slice('unix://'.length)),
    socketMount.mountPath,
    'SPIFFE_ENDPOINT_SOCKET is in the mounted socket directory',
  );
  assert.equal(socketMount.readOnly, true);

  const helper = renderChart(CHART, {
    values: {
      spiffe: { enabled: true, mode: 'helper' },
      config: {
        listeners: [
          {
            name: 'http',
            address: '0.0.0.0',
            port: 8080,
            tls: { cert: '/run/spiffe/certs/svid.pem', key: '/run/spiffe/certs/svid_key.pem' },
          },
        ],
      },
    },
  });
  const h = checkChart(helper);
  assert.deepEqual(await validateKubernetes(helper.documents), []);
  const sidecar = (h.pod.spec.initContainers as Doc[]).find((i) => i.name === 'spiffe-helper')!;
  assert.equal(sidecar.restartPolicy, 'Always', 'a native sidecar, running beside kycgate');
  const conf = only(helper, 'ConfigMap').data['helper.conf'] as string;
  const setting = (k: string) => new RegExp(`^${k} = "?([^"\\n]*)"?$`, 'm').exec(conf)![1]!;
  const sidecarSocket = (sidecar.volumeMounts as Doc[]).find((m) => m.name === 'spiffe-workload-api')!.mountPath;
  assert.equal(
    path.posix.dirname(setting('agent_address')),
    sidecarSocket,
    'the helper talks to the mounted Workload API socket',
  );
  const certs = (sidecar.volumeMounts as Doc[]).find((m) => m.name === 'spiffe-certs')!.mountPath;
  assert.equal(setting('cert_dir'), certs);
  const kycgateCerts = (h.kycgate.volumeMounts as Doc[]).find((m) => m.name === 'spiffe-certs')!;
  assert.equal(kycgateCerts.mountPath, certs);
  assert.equal(kycgateCerts.readOnly, true);
  assert.equal(
    h.config.listeners[0].tls.cert,
    path.posix.join(certs, setting('svid_file_name')),
    'the listener reads the SVID the helper writes',
  );
  assert.equal(h.config.listeners[0].tls.key, path.posix.join(certs, setting('svid_key_file_name')));
  assert.ok(
    !(h.kycgate.env as Doc[]).some((e) => e.name === 'SPIFFE_ENDPOINT_SOCKET'),
    'kycgate itself does not use the socket in helper mode',
  );
});

test('chart: a value that breaks the Kubernetes schema, a misspelt field or a kycgate config error is caught', async () => {
  const wrongType = renderChart(CHART, { values: { replicaCount: 'two' } });
  assert.match((await validateKubernetes(wrongType.documents)).join('\n'), /replicas must be integer/);
  const misspelt = renderChart(CHART, {
    values: { readinessProbe: { httpGet: { path: '/readyz', port: 'admin' }, periodSecond: 5 } },
  });
  assert.match(
    (await validateKubernetes(misspelt.documents)).join('\n'),
    /Deployment release-name-kycgate: .*'"?periodSecond"?' does not exist/,
  );
  const badConfig = renderChart(CHART, { values: { config: { admin: { port: 'admin' } } } });
  assert.throws(() => checkChart(badConfig), /admin\.port/);
  assert.throws(() => renderChart(CHART, { values: { image: null } }), /nil pointer evaluating \.repository/);
});
