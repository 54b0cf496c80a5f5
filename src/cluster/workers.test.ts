/**
 * Several workers (`server.workers: 2`), as real processes on real sockets: both serve one address and take
 * traffic; /metrics on the one admin listener sums them; a local rate limit of L admits exactly L across them; a
 * worker killed with SIGKILL is replaced while requests keep succeeding; SIGTERM drains every worker (the request
 * in flight finishes, the supervisor exits 0); failed authentications count across the workers; `kycgate audit
 * verify` and `export` read every worker's chain as one trail.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { httpRequest, startUpstream } from '../../testing/harness.js';
import { sample, startGatewayProcess, type LogLine } from '../../testing/cluster.js';
import { exportRecords } from '../audit/export.js';

/** Whether an audit record is one of the requests this test sends (not the sandbox's webhook deliveries). */
const sentByTest = (r: { kind?: string; route?: string }) => r.kind === 'request' && r.route !== 'kyc-webhooks';

/** Records of the requests this test sent, in every chain of the audit trail. */
function requestRecords(dataDir: string): number {
  let n = 0;
  for (const line of exportRecords(path.join(dataDir, 'audit'), { format: 'jsonl', version: '0' }))
    if (sentByTest(JSON.parse(line) as { kind?: string; route?: string })) n++;
  return n;
}

const LIMIT = 40;
/** Failed authentications allowed per address, across the workers. */
const GUESSES = 4;
/** Requests without a credential sent once the address is throttled. */
const KNOCKS = 6;
const KYC_REQUESTS = 4;

function config(upstreamUrl: string): string {
  return `
server: {workers: 2, drain_timeout_ms: 20000}
listeners:
  - name: main
    port: 0
admin:
  port: 0
audit:
  enabled: true
  metrics: {enabled: true}
kyc:
  cache: {unverified_ttl_seconds: 3600}
  providers:
    sandbox: {type: sandbox}
  workflows:
    basic:
      provider: sandbox
      workflow_id: 7d3c9a52-1f0e-4b8a-9d6e-3c2b1a0f9e8d
      claims: {kyc_full: 'facts.status == "Approved"'}
upstreams:
  slow:
    targets: [{url: "${upstreamUrl}"}]
routes:
  - name: version
    match: {path: /version}
    policies:
      - static-response: {body: one}
  - name: limited
    match: {path: /limited}
    policies:
      - rate-limit: {limits: [{rate: ${LIMIT}, per: hour, key: [ip]}]}
      - static-response: {body: ok}
  - name: slow
    match: {path: /slow}
    upstream: slow
  - name: guarded
    match: {path: /guarded}
    policies:
      - authenticate:
          methods: [{api-key: {}}]
          failure_limit: {max_failures: ${GUESSES}, window_s: 600}
      - static-response: {body: in}
  - name: kyc
    match: {path: /kyc}
    policies:
      - kyc-gate:
          subject: {from: header, header: x-user-id, trust_unauthenticated_header: true}
          required_claims: [kyc_full]
      - static-response: {body: verified}
`;
}

/** A new connection per request, so that the supervisor hands each to the next worker in turn. */
const get = (url: string) => httpRequest(url, { headers: { connection: 'close' } });

async function statuses(url: string, count: number, concurrency: number): Promise<number[]> {
  const out: number[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        next++;
        out.push((await get(url)).status);
      }
    }),
  );
  return out;
}

test('two workers: one address, exact rate limits, a killed worker replaced, metrics summed, drain, one audit trail', async (t) => {
  let release: (() => void) | undefined;
  const upstream = await startUpstream((_req, res) => {
    release = () => res.end('finished during drain');
  });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kycgate-workers-'));
  const file = path.join(dir, 'kycgate.yaml');
  const dataDir = path.join(dir, 'data');
  writeFileSync(file, config(upstream.url));
  const gw = startGatewayProcess(file, dataDir);
  t.after(async () => {
    gw.kill();
    for (const l of gw.lines) if (l.msg === 'worker serving') tryKill(Number(l.pid));
    await upstream.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const ready = await gw.waitFor((l) => l.msg === 'workers ready', 240_000);
  const base = (ready.urls as Record<string, string>).main!;
  const admin = String(ready.admin);
  const metrics = async () => (await httpRequest(admin + '/metrics')).body;

  await t.test('both workers serve the one address', async () => {
    const got = await statuses(base + '/version', 20, 2);
    assert.deepEqual(got, Array(20).fill(200));
    const scrape = await metrics();
    const w0 = sample(scrape, 'kycgate_worker_requests_total{worker="0"}') ?? 0;
    const w1 = sample(scrape, 'kycgate_worker_requests_total{worker="1"}') ?? 0;
    assert.ok(w0 > 0 && w1 > 0, `requests per worker: ${w0}, ${w1}`);
    assert.equal(w0 + w1, 20);
    // The admin listener's /metrics sums the workers' registries.
    assert.equal(sample(scrape, 'kycgate_requests_total{route="version",status_class="2xx"}'), 20);
    // Gauges are one process's state: shown per worker, not summed.
    assert.equal(sample(scrape, 'kycgate_audit_disk_alarm{worker="0"}'), 0);
    assert.equal(sample(scrape, 'kycgate_audit_disk_alarm{worker="1"}'), 0);
  });

  let sandboxOrigin = '';
  await t.test('the embedded sandbox runs once: sessions started by either worker live in it', async () => {
    const urls: string[] = [];
    for (let i = 0; i < KYC_REQUESTS; i++) {
      const r = await httpRequest(base + '/kyc', { headers: { connection: 'close', 'x-user-id': `user-${i}` } });
      assert.equal(r.status, 403, r.body);
      urls.push((JSON.parse(r.body) as { verification_url: string }).verification_url);
    }
    const origins = new Set(urls.map((u) => new URL(u).origin));
    assert.equal(origins.size, 1, `one sandbox: ${[...origins].join(', ')}`);
    sandboxOrigin = [...origins][0]!;
    // Each session, whichever worker started it, is served by that one sandbox.
    for (const u of urls) assert.equal((await httpRequest(u)).status, 200, u);
  });

  let approvalRequests = 0;
  await t.test('an approval reaches every worker at once: each drops the subject from its cache', async () => {
    const kyc = () => {
      approvalRequests++;
      return httpRequest(base + '/kyc', { headers: { connection: 'close', 'x-user-id': 'approve-me' } });
    };
    const refused = await kyc();
    assert.equal(refused.status, 403, refused.body);
    const url = (JSON.parse(refused.body) as { verification_url: string }).verification_url;
    // Both workers now hold the subject as unverified, for an hour (kyc.cache.unverified_ttl_seconds).
    for (let i = 0; i < 3; i++) assert.equal((await kyc()).status, 403);
    const form = { decision: 'approved', first_name: 'Ada', last_name: 'Lovelace', date_of_birth: '1990-12-10' };
    const approved = await httpRequest(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(form).toString(),
    });
    assert.equal(approved.status, 200);
    // The sandbox's webhook reaches one worker, which applies it; the supervisor tells every worker to drop the
    // subject. Without that, the other worker would answer 403 from its cache for the rest of the hour.
    let status = 403;
    for (let i = 0; i < 500 && status !== 200; i++) {
      status = (await kyc()).status;
      if (status !== 200) await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(status, 200);
    const next: number[] = [];
    for (let i = 0; i < 4; i++) next.push((await kyc()).status);
    assert.deepEqual(next, [200, 200, 200, 200]);
  });

  await t.test(`a local limit of ${LIMIT} admits exactly ${LIMIT} across the workers`, async () => {
    const before = await metrics();
    const got = await statuses(base + '/limited', LIMIT * 4, 8);
    assert.equal(got.filter((s) => s === 200).length, LIMIT);
    assert.equal(got.filter((s) => s === 429).length, LIMIT * 3);
    const after = await metrics();
    const served = (w: string) =>
      (sample(after, `kycgate_worker_requests_total{worker="${w}"}`) ?? 0) -
      (sample(before, `kycgate_worker_requests_total{worker="${w}"}`) ?? 0);
    assert.ok(served('0') > 0 && served('1') > 0, 'both workers decided some of them');
  });

  await t.test('a worker killed with SIGKILL is replaced; requests keep succeeding', async () => {
    const serving = (slot: number) => (l: LogLine) => l.msg === 'worker serving' && l.slot === slot;
    const victim = Number((await gw.waitFor(serving(1))).pid);
    // What was answered so far is on disk before the kill (group commit: a crash loses at most the last window).
    const answered = 20 + KYC_REQUESTS + approvalRequests + LIMIT * 4;
    for (let i = 0; i < 600 && requestRecords(dataDir) < answered; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(requestRecords(dataDir), answered);
    process.kill(victim, 'SIGKILL');
    await gw.waitFor((l) => l.msg === 'worker died; restarting' && l.slot === 1);
    // Meanwhile the other worker answers everything.
    assert.deepEqual(await statuses(base + '/version', 10, 1), Array(10).fill(200));
    const replaced = await gw.waitFor((l) => serving(1)(l) && Number(l.pid) !== victim, 240_000);
    assert.notEqual(Number(replaced.pid), victim);
    assert.deepEqual(await statuses(base + '/version', 20, 2), Array(20).fill(200));
    const scrape = await metrics();
    assert.ok((sample(scrape, 'kycgate_worker_requests_total{worker="1"}') ?? 0) > 0, 'the replacement serves');
    assert.equal(sample(scrape, 'kycgate_worker_restarts_total'), 1);
  });

  await t.test('worker 0 replaced: the admin listener and the sandbox come back on the same ports', async () => {
    const serving = (l: LogLine) => l.msg === 'worker serving' && l.slot === 0;
    const victim = Number((await gw.waitFor(serving)).pid);
    const answered = 20 + KYC_REQUESTS + approvalRequests + LIMIT * 4 + 10 + 20;
    for (let i = 0; i < 600 && requestRecords(dataDir) < answered; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(requestRecords(dataDir), answered);
    process.kill(victim, 'SIGKILL');
    await gw.waitFor((l) => serving(l) && Number(l.pid) !== victim, 240_000);
    assert.equal((await httpRequest(admin + '/healthz')).status, 200);
    const r = await httpRequest(base + '/kyc', { headers: { connection: 'close', 'x-user-id': 'after-restart' } });
    assert.equal(r.status, 403, r.body);
    assert.equal(new URL((JSON.parse(r.body) as { verification_url: string }).verification_url).origin, sandboxOrigin);
  });

  await t.test('SIGHUP reloads the configuration on every worker', async () => {
    writeFileSync(file, config(upstream.url).replace('body: one', 'body: two'));
    gw.child.kill('SIGHUP');
    // Each worker reloads on the SIGHUP the supervisor forwards (and may reload once more on the file change).
    await gw.waitFor(
      () => gw.lines.filter((l) => l.msg === 'configuration reloaded' && l.reason === 'SIGHUP').length >= 2,
    );
    // New connections go to each worker in turn: every answer comes from the new configuration.
    const bodies = await Promise.all(Array.from({ length: 10 }, () => get(base + '/version').then((r) => r.body)));
    assert.deepEqual(bodies, Array(10).fill('two'));
  });

  await t.test(
    `${GUESSES} failed authentications across the workers throttle the address on every worker`,
    async () => {
      const before = await metrics();
      // One connection each, so the supervisor hands them to the workers in turn: no worker sees all the guesses.
      for (let i = 0; i < GUESSES; i++) {
        const r = await httpRequest(base + '/guarded', { headers: { connection: 'close', 'x-api-key': 'not-a-key' } });
        assert.equal(r.status, 401, r.body);
      }
      // A request without a credential is never counted: it is refused 429 only because the address is throttled.
      const knocks = await Promise.all(Array.from({ length: KNOCKS }, () => get(base + '/guarded')));
      assert.deepEqual(
        knocks.map((r) => r.status),
        Array(KNOCKS).fill(429),
      );
      const after = await metrics();
      const served = (w: string) =>
        (sample(after, `kycgate_worker_requests_total{worker="${w}"}`) ?? 0) -
        (sample(before, `kycgate_worker_requests_total{worker="${w}"}`) ?? 0);
      assert.ok(served('0') > 0 && served('1') > 0, `both workers refused some: ${served('0')}, ${served('1')}`);
    },
  );

  await t.test('SIGTERM drains every worker: the request in flight finishes, the supervisor exits 0', async () => {
    const inflight = get(base + '/slow');
    while (release === undefined) await new Promise((r) => setTimeout(r, 10));
    gw.child.kill('SIGTERM');
    await gw.waitFor((l) => l.msg === 'draining');
    release();
    const done = await inflight;
    assert.equal(done.status, 200);
    assert.equal(done.body, 'finished during drain');
    assert.equal(await gw.exited, 0);
  });

  await t.test('audit verify and export read every worker chain as one trail', () => {
    const cli = (...args: string[]) =>
      spawnSync(process.execPath, [path.resolve('dist/src/cli/main.js'), 'audit', ...args], {
        env: { ...process.env, KYCGATE_DATA_DIR: dataDir },
        encoding: 'utf8',
      });
    const verified = cli('verify', '--json');
    assert.equal(verified.status, 0, verified.stdout + verified.stderr);
    const result = JSON.parse(verified.stdout) as { ok: boolean; records: number; chains: Array<{ chain: string }> };
    assert.equal(result.ok, true);
    // Worker 0, worker 1 and its replacement (which continues the chain of slot 1).
    assert.deepEqual(
      result.chains.map((c) => c.chain),
      ['workers/0', 'workers/1'],
    );
    // Every request answered above is on record.
    const exported = cli('export');
    assert.equal(exported.status, 0, exported.stderr);
    const records = exported.stdout.split('\n').filter((l) => l !== '');
    assert.equal(records.length, result.records);
    const parsed = records.map((l) => JSON.parse(l) as { kind?: string; time: string; route?: string; type?: string });
    const requests = parsed.filter(sentByTest);
    const byRoute: Record<string, number> = {};
    for (const r of parsed)
      byRoute[`${r.kind}:${r.route ?? r.type}`] = (byRoute[`${r.kind}:${r.route ?? r.type}`] ?? 0) + 1;
    assert.equal(
      requests.length,
      20 + KYC_REQUESTS + approvalRequests + LIMIT * 4 + 10 + 20 + 1 + 10 + GUESSES + KNOCKS + 1,
      JSON.stringify({ byRoute, chains: result.chains }),
    );
    const times = records.map((l) => Date.parse((JSON.parse(l) as { time: string }).time));
    assert.deepEqual(
      times,
      [...times].sort((a, b) => a - b),
      'the export merges the chains in time order',
    );
  });
});

function tryKill(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}
