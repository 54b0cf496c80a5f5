/**
 * `kycgate drill run` against a running gateway: faults armed for the fault phase only, traffic driven through all
 * three phases, the report says what was injected, which objectives held, and how fast each stream recovered.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { httpRequest, startTestGateway, startUpstream } from '../../testing/harness.js';
import type { DrillReport } from '../resilience/drills/run.js';
import { parse, stringify } from 'yaml';

const CLI = path.resolve('dist/src/cli/main.js');

function cli(args: string[], dataDir: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { env: { ...process.env, KYCGATE_DATA_DIR: dataDir }, timeout: 120_000 },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? -1) : 0, stdout, stderr }),
    );
  });
}

test('drill run: faults only in the fault phase, objectives per phase, recovery, injected counts, HTML', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kycgate-drill-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const upstream = await startUpstream((_req, res) => res.end('ok'));
  t.after(() => upstream.close());
  const config = {
    listeners: [{ name: 'main', port: 0 }],
    upstreams: { backend: { targets: [{ url: upstream.url }] } },
    defaults: { policies: [{ 'fault-injection': {} }] },
    routes: [
      { name: 'orders', match: { prefix: '/orders' }, upstream: 'backend' },
      { name: 'payments', match: { prefix: '/payments' }, upstream: 'backend', critical: true },
    ],
    resilience: { faults: { enabled: true, poll_ms: 100 } },
  };
  const file = path.join(dir, 'kycgate.yaml');
  writeFileSync(file, JSON.stringify(config));
  const gw = await startTestGateway(config, { dataDir: dir });
  t.after(() => gw.close());

  const scenario = path.join(dir, 'drill.yaml');
  writeFileSync(
    scenario,
    [
      'name: backend-outage',
      'description: The order backend fails; payments (critical) must not notice.',
      `gateway: ${gw.url}`,
      `admin: ${gw.adminUrl}`,
      'phases: { before: 1s, fault: 2s, after: 2s }',
      'faults:',
      '  - upstream: backend',
      '    abort: { status: 503 }',
      'traffic:',
      '  - name: orders',
      '    path: /orders/{n}',
      '    rate: 20',
      '    objectives: { served_percent: 80 }',
      '    objectives_during: [before, after]',
      '  - name: payments',
      '    path: /payments',
      '    rate: 10',
      '    objectives: { served_percent: 100 }',
      '    verified_users: true',
    ].join('\n'),
  );
  const out = path.join(dir, 'report.json');
  const html = path.join(dir, 'report.html');
  const r = await cli(
    ['drill', 'run', scenario, '-c', file, '--out', out, '--html', html, '--by', 'resilience-team'],
    dir,
  );
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /drill: fault phase from/);
  const report = JSON.parse(readFileSync(out, 'utf8')) as DrillReport;

  assert.equal(report.result, 'passed');
  assert.equal(report.operator, 'resilience-team');
  assert.equal(report.faults.length, 1);
  assert.equal(report.faults[0]!.target, 'backend');
  const armedFor = Date.parse(String(report.faults[0]!.until)) - Date.parse(String(report.faults[0]!.armed_at));
  assert.equal(armedFor, 2000, 'armed for the fault phase only');
  assert.ok((report.injected?.['upstream backend abort'] ?? 0) > 10, JSON.stringify(report.injected));

  const orders = report.traffic.find((s) => s.name === 'orders')!;
  // A request sent late in the before phase may be answered after the fault was armed: the phase's objective
  // (80% served), not every request, is what a loaded machine can be held to.
  assert.ok(orders.phases.before.served_percent! >= 80, `before phase: ${orders.phases.before.served_percent}%`);
  assert.ok(orders.phases.fault.served_percent! < 50, `fault phase: ${orders.phases.fault.served_percent}%`);
  assert.ok((orders.phases.fault.statuses['503'] ?? 0) > 10);
  assert.ok(orders.phases.after.requests > 10);
  assert.ok(
    orders.objectives.every((o) => o.phase !== 'fault' && o.kept),
    JSON.stringify(orders.objectives),
  );
  assert.notEqual(orders.recovery_ms, null);
  assert.ok(orders.recovery_ms! < 5000, `recovered after ${orders.recovery_ms} ms`);

  const payments = report.traffic.find((s) => s.name === 'payments')!;
  assert.equal(payments.phases.fault.served, payments.phases.fault.requests, 'the critical route was never faulted');
  assert.equal(report.verified_users_unaffected, true);
  assert.equal(report.objectives_kept, true);

  const page = readFileSync(html, 'utf8');
  assert.match(page, /<h1>Resilience test report: backend-outage<\/h1>/);
  assert.match(page, /Passed/);

  // Nothing stays armed after the drill.
  const list = await cli(['faults', 'list', '-c', file, '--json'], dir);
  assert.equal(list.stdout, '');
  assert.equal((await httpRequest(`${gw.url}/orders/x`)).status, 200);
});

test('drill run: a scenario with a bad key or an unsafe fault is refused before any traffic', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kycgate-drill-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const config = {
    listeners: [{ name: 'main', port: 0 }],
    upstreams: { backend: { targets: [{ url: 'http://127.0.0.1:9' }] } },
    defaults: { policies: [{ 'fault-injection': {} }] },
    routes: [{ name: 'payments', match: { prefix: '/payments' }, upstream: 'backend', critical: true }],
    resilience: { faults: { enabled: true } },
  };
  const file = path.join(dir, 'kycgate.yaml');
  writeFileSync(file, JSON.stringify(config));
  const scenario = path.join(dir, 'drill.yaml');
  writeFileSync(
    scenario,
    'name: x\ngateway: http://127.0.0.1:9\nphases: { fault: 1s }\nfaults: [{ route: payments, abort: { status: 503 } }]\nextra: 1\n',
  );
  const bad = await cli(['drill', 'run', scenario, '-c', file], dir);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /drill\.yaml: \(root\): has unknown key "extra"/);

  writeFileSync(
    scenario,
    'name: x\ngateway: http://127.0.0.1:9\nphases: { fault: 1s }\nfaults: [{ route: payments, abort: { status: 503 } }]\n',
  );
  const critical = await cli(['drill', 'run', scenario, '-c', file], dir);
  assert.equal(critical.code, 1);
  assert.match(critical.stderr, /faults\[0\]: route "payments" is marked critical/);
});

test('drill run: the example provider-outage drill against the example staging gateway', {
  timeout: 90_000,
}, async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kycgate-drill-example-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const examples = path.resolve('examples/drills');
  const config = parse(readFileSync(path.join(examples, 'staging.yaml'), 'utf8')) as Record<string, any>;
  config.listeners[0].port = 0;
  config.admin.port = 0;
  config.kyc.providers.sandbox.port = 0;
  // Detection at test speed: the provider's calls of the fault phase alone fill the window.
  Object.assign(config.incidents, { interval_ms: 200, window_ms: 3000, confirm_ms: 200 });
  const file = path.join(dir, 'staging.yaml');
  writeFileSync(file, stringify(config));
  const gw = await startTestGateway(config, { dataDir: dir });
  t.after(() => gw.close());

  // The user the verified streams stand for, verified once on the sandbox's page.
  const ask = () =>
    httpRequest(`${gw.url}/api/accounts`, { headers: { 'x-user-id': 'drill-verified', accept: 'application/json' } });
  const challenge = await ask();
  assert.equal(challenge.status, 403, challenge.body);
  const approved = await httpRequest(
    String((JSON.parse(challenge.body) as { verification_url: string }).verification_url),
    {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'decision=approved',
    },
  );
  assert.equal(approved.status, 200);
  for (let i = 0; i < 200 && (await ask()).status !== 200; i++) await new Promise((r) => setTimeout(r, 25));
  assert.equal((await ask()).status, 200);

  const scenario = parse(readFileSync(path.join(examples, 'provider-outage.yaml'), 'utf8')) as Record<string, any>;
  scenario.gateway = gw.url;
  scenario.admin = gw.adminUrl;
  scenario.phases = { before: '1s', fault: '4s', after: '2s' };
  // Latency objectives with room for a loaded test machine (a p95 of 4 s was seen at a load average of 18 on 2
  // cores, fault or not); the served objectives are the example's own.
  for (const stream of scenario.traffic) if (stream.objectives.p95_ms !== undefined) stream.objectives.p95_ms = 15_000;
  const drill = path.join(dir, 'drill.yaml');
  writeFileSync(drill, stringify(scenario));
  const out = path.join(dir, 'report.json');
  const r = await cli(['drill', 'run', drill, '-c', file, '--out', out], dir);
  const report = JSON.parse(readFileSync(out, 'utf8')) as DrillReport;
  assert.equal(r.code, 0, `${r.stderr}\n${JSON.stringify(report.traffic, null, 1)}`);
  assert.equal(report.verified_users_unaffected, true);
  assert.ok((report.injected?.['provider sandbox abort'] ?? 0) >= 1, JSON.stringify(report.injected));
  const newUsers = report.traffic.find((s) => s.name === 'new users')!;
  assert.ok((newUsers.phases.fault.statuses['503'] ?? 0) >= 1, JSON.stringify(newUsers.phases.fault));
  assert.ok(
    newUsers.objectives.every((o) => o.kept),
    JSON.stringify(newUsers.objectives),
  );
  const provider = report.incidents?.find((i) => i.cause === 'provider:sandbox');
  assert.ok(provider, `the gateway detected the provider outage: ${JSON.stringify(report.incidents)}`);
  assert.ok(
    provider.detected_after_ms >= 0 && provider.detected_after_ms < 4000,
    `after ${provider.detected_after_ms} ms`,
  );
  console.log(`# drill: provider incident detected ${provider.detected_after_ms} ms into the fault phase`);
});
