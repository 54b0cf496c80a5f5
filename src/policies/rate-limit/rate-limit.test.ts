import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigValidator, loadConfigFile } from '../../config/load.js';
import { SUBSYSTEMS, POLICIES } from '../../bundled.js';
import { httpRequest, memoryLogger, startTestGateway, startUpstream } from '../../../testing/harness.js';
import { Services } from '../../pipeline/services.js';
import { rateLimitPolicy } from './rate-limit.js';
import { RequestContext } from '../../pipeline/context.js';
import { burst, countStatus } from '../../../testing/load.js';

function config(upstream: string, policy: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return {
    upstreams: { app: { targets: [{ url: upstream }] } },
    routes: [
      { name: 'limited', match: { prefix: '/api' }, upstream: 'app', policies: [{ 'rate-limit': policy }] },
      { name: 'other', match: { prefix: '/other' }, upstream: 'app' },
    ],
    log: { level: 'warn', access: false },
    ...extra,
  };
}

test('a burst passes, the next request gets 429 problem+json with Retry-After and RateLimit headers, and the upstream never sees it', async (t) => {
  const up = await startUpstream((_req, res) => res.end('ok'));
  const gw = await startTestGateway(config(up.url, { headers: 'all', limits: [{ rate: 3, per: 'minute' }] }));
  t.after(async () => {
    await gw.close();
    await up.close();
  });
  const first = await httpRequest(gw.url + '/api/x');
  assert.equal(first.status, 200);
  assert.equal(first.headers['ratelimit-policy'], '"3-per-minute";q=3;w=60');
  assert.match(String(first.headers.ratelimit), /^"3-per-minute";r=2;t=\d+$/);
  assert.equal(first.headers['x-ratelimit-limit'], '3');
  assert.equal(first.headers['x-ratelimit-remaining'], '2');
  await httpRequest(gw.url + '/api/x');
  await httpRequest(gw.url + '/api/x');
  const rejected = await httpRequest(gw.url + '/api/x');
  assert.equal(rejected.status, 429);
  assert.equal(rejected.headers['content-type'], 'application/problem+json');
  const body = JSON.parse(rejected.body);
  assert.equal(body.type, 'https://kycgate.dev/problems/rate-limited');
  const retry = Number(rejected.headers['retry-after']);
  assert.ok(retry >= 19 && retry <= 20, `retry-after ${retry}`);
  assert.match(String(rejected.headers.ratelimit), /^"3-per-minute";r=0;t=\d+$/);
  assert.equal(rejected.headers['x-ratelimit-remaining'], '0');
  assert.equal(up.requests, 3);
  // Other routes are not limited by this route's policy.
  assert.equal((await httpRequest(gw.url + '/other')).status, 200);
});

test('GCRA refills continuously and rejected requests do not extend the wait', async (t) => {
  const up = await startUpstream((_req, res) => res.end('ok'));
  const gw = await startTestGateway(config(up.url, { limits: [{ rate: 20, per: 'second', burst: 2 }] }));
  t.after(async () => {
    await gw.close();
    await up.close();
  });
  const a = await burst([gw.url + '/api/a'], 30, 1);
  assert.equal(countStatus(a, 200) >= 2 && countStatus(a, 200) < 30, true);
  assert.ok(countStatus(a, 429) > 0);
  // Hammering did not push the next admission into the future: 60 ms later (> one 50 ms interval) it passes.
  await new Promise((r) => setTimeout(r, 60));
  assert.equal((await httpRequest(gw.url + '/api/a')).status, 200);
});

test('several limits per route: all must pass, and a rejected request charges none of them', async (t) => {
  const up = await startUpstream((_req, res) => res.end('ok'));
  const gw = await startTestGateway(
    config(up.url, {
      limits: [
        { name: 'burst', rate: 100, per: 'second', burst: 5, key: ['header:x-client'] },
        { name: 'daily', rate: 8, per: 'day', key: ['header:x-client'] },
      ],
    }),
  );
  t.after(async () => {
    await gw.close();
    await up.close();
  });
  const h = { 'x-client': 'c1' };
  const results: number[] = [];
  for (let i = 0; i < 6; i++) results.push((await httpRequest(gw.url + '/api', { headers: h })).status);
  // The 5-request burst holds (the sixth comes within a few ms of the first five).
  assert.ok(results.slice(0, 5).every((s) => s === 200));
  await new Promise((r) => setTimeout(r, 50));
  let passed = 5 + (results[5] === 200 ? 1 : 0);
  for (let i = 0; i < 10; i++) {
    const r = await httpRequest(gw.url + '/api', { headers: h });
    if (r.status === 200) passed++;
    else assert.equal(r.headers.ratelimit?.toString().startsWith('"'), true);
    await new Promise((res) => setTimeout(res, 15));
  }
  assert.equal(passed, 8, 'exactly the daily quota passes');
  // Keyed by header: another client has its own counters.
  assert.equal((await httpRequest(gw.url + '/api', { headers: { 'x-client': 'c2' } })).status, 200);
  // Without the header, the client IP is used instead (missing_key: ip).
  assert.equal((await httpRequest(gw.url + '/api')).status, 200);
});

test('a gateway-wide default limit counts requests to every route together (scope: gateway)', async (t) => {
  const up = await startUpstream((_req, res) => res.end('ok'));
  const gw = await startTestGateway({
    upstreams: { app: { targets: [{ url: up.url }] } },
    defaults: {
      policies: [{ 'rate-limit': { scope: 'gateway', limits: [{ name: 'global', rate: 4, per: 'hour' }] } }],
    },
    routes: [
      { name: 'a', match: { prefix: '/a' }, upstream: 'app' },
      { name: 'b', match: { prefix: '/b' }, upstream: 'app' },
    ],
    log: { level: 'warn', access: false },
  });
  t.after(async () => {
    await gw.close();
    await up.close();
  });
  const statuses = [];
  for (const p of ['/a', '/b', '/a', '/b', '/a', '/b']) statuses.push((await httpRequest(gw.url + p)).status);
  assert.deepEqual(statuses, [200, 200, 200, 200, 429, 429]);
});

test('a rejected request emits ratelimit.rejected without the client key', async (t) => {
  const up = await startUpstream((_req, res) => res.end('ok'));
  const gw = await startTestGateway(config(up.url, { limits: [{ rate: 1, per: 'hour' }] }));
  const events: Array<Record<string, unknown>> = [];
  gw.gateway.services.events.subscribe({ onEvent: (e) => void events.push(e as unknown as Record<string, unknown>) });
  t.after(async () => {
    await gw.close();
    await up.close();
  });
  await httpRequest(gw.url + '/api');
  await httpRequest(gw.url + '/api');
  const rejected = events.filter((e) => e.type === 'ratelimit.rejected');
  assert.equal(rejected.length, 1);
  assert.equal(rejected[0]!.route, 'limited');
  assert.doesNotMatch(JSON.stringify(rejected[0]), /127\.0\.0\.1/);
});

test('a Redis store without a redis service, or a policy without limits, is refused at config time', async () => {
  const setup = {
    routeName: 'r',
    upstreamNames: new Set<string>(),
    services: new Services(memoryLogger().logger, '/tmp'),
  };
  const base = {
    plans: {},
    scope: 'route',
    on_redis_failure: 'fail_open',
    missing_key: 'ip',
    penalise_rejected: false,
    headers: 'all',
    breaker: { failures: 3, open_ms: 1000 },
    local_max_keys: 1000,
    ipv6_prefix: 64,
  } as const;
  await assert.rejects(
    async () =>
      rateLimitPolicy.create({ ...base, store: 'redis', limits: [{ rate: 1, per: 'second', key: ['ip'] }] }, setup),
    /redis/,
  );
  await assert.rejects(
    async () => rateLimitPolicy.create({ ...base, store: 'local', limits: [] }, setup),
    /at least one limit/,
  );
});

test('limits by consumer plan, keyed by consumer, credential and subject', async () => {
  const setup = {
    routeName: uniqueRoute(),
    upstreamNames: new Set<string>(),
    services: new Services(memoryLogger().logger, '/tmp'),
  };
  const instance = await rateLimitPolicy.create(
    {
      limits: [{ name: 'free', rate: 1, per: 'hour', key: ['consumer'] }],
      plans: {
        gold: [{ name: 'gold', rate: 3, per: 'hour', key: ['consumer'] }],
        keyed: [{ name: 'per-key-subject', rate: 1, per: 'hour', key: ['credential', 'subject'] }],
      },
      scope: 'route',
      store: 'local',
      on_redis_failure: 'fail_open',
      missing_key: 'skip',
      penalise_rejected: false,
      headers: 'all',
      breaker: { failures: 3, open_ms: 1000 },
      local_max_keys: 1000,
      ipv6_prefix: 64,
    },
    setup,
  );
  const route = { name: setup.routeName } as never;
  const request = (identity: Record<string, unknown> | undefined, subject?: string) => {
    const ctx = new RequestContext({
      id: 'r',
      startedAt: 0,
      listener: 'l',
      protocol: 'http',
      method: 'GET',
      path: '/',
      query: '',
      host: 'h',
      hostname: 'h',
      clientIp: '192.0.2.1',
      remoteAddress: '192.0.2.1',
      req: undefined,
      route,
      params: {},
    });
    ctx.identity = identity as never;
    ctx.subject = subject;
    const result = instance.onRequest!(ctx);
    return result === undefined ? 200 : (result as { status: number }).status;
  };
  assert.deepEqual(
    [
      request({ consumer: 'acme', method: 'api-key', scopes: [] }),
      request({ consumer: 'acme', method: 'api-key', scopes: [] }),
    ],
    [200, 429],
    'no plan: the default limit',
  );
  const gold = { consumer: 'bank', plan: 'gold', method: 'api-key', scopes: [] };
  assert.deepEqual(
    [request(gold), request(gold), request(gold), request(gold)],
    [200, 200, 200, 429],
    'gold plan: its own limit',
  );
  const keyed = (credentialId: string, subject: string) =>
    request({ consumer: 'x', plan: 'keyed', credentialId, method: 'api-key', scopes: [] }, subject);
  assert.deepEqual(
    [keyed('k1', 's1'), keyed('k1', 's1'), keyed('k1', 's2'), keyed('k2', 's1')],
    [200, 429, 200, 200],
    'credential + subject combine',
  );
  // Very long key values are stored as digests but still count per value.
  const long = 'L'.repeat(5000);
  assert.deepEqual([keyed(long, 's'), keyed(long, 's'), keyed(long + 'x', 's')], [200, 429, 200]);
  // missing_key: skip — an anonymous request is not limited by a consumer-keyed limit.
  assert.deepEqual([request(undefined), request(undefined)], [200, 200]);
});

test('IPv6 clients are counted per /64 by default, so rotating addresses inside it gains nothing', async () => {
  const setup = {
    routeName: uniqueRoute(),
    upstreamNames: new Set<string>(),
    services: new Services(memoryLogger().logger, '/tmp'),
  };
  const base = {
    plans: {},
    scope: 'route',
    store: 'local',
    on_redis_failure: 'fail_open',
    missing_key: 'ip',
    penalise_rejected: false,
    headers: 'none',
    breaker: { failures: 3, open_ms: 1000 },
    local_max_keys: 1000,
  } as const;
  const route = { name: setup.routeName } as never;
  const statusFor = (instance: Awaited<ReturnType<typeof rateLimitPolicy.create>>, clientIp: string) => {
    const ctx = new RequestContext({
      id: 'r',
      startedAt: 0,
      listener: 'l',
      protocol: 'http',
      method: 'GET',
      path: '/',
      query: '',
      host: 'h',
      hostname: 'h',
      clientIp,
      remoteAddress: clientIp,
      req: undefined,
      route,
      params: {},
    });
    const result = instance.onRequest!(ctx);
    return result === undefined ? 200 : (result as { status: number }).status;
  };
  const per64 = await rateLimitPolicy.create(
    { ...base, ipv6_prefix: 64, limits: [{ name: 'net', rate: 1, per: 'hour', key: ['ip'] }] },
    setup,
  );
  assert.deepEqual(
    [
      statusFor(per64, '2001:db8:0:1::1'),
      statusFor(per64, '2001:db8:0:1::2'),
      statusFor(per64, '2001:db8:0:2::1'),
      statusFor(per64, '192.0.2.1'),
    ],
    [200, 429, 200, 200],
  );
  const perAddress = await rateLimitPolicy.create(
    { ...base, ipv6_prefix: 128, limits: [{ name: 'addr', rate: 1, per: 'hour', key: ['ip'] }] },
    setup,
  );
  assert.deepEqual([statusFor(perAddress, '2001:db8:0:1::1'), statusFor(perAddress, '2001:db8:0:1::2')], [200, 200]);
});

let routeCounter = 0;
function uniqueRoute(): string {
  return `plans-${process.pid}-${++routeCounter}`;
}

test('a config reload keeps local counts: reloading never hands clients a fresh quota', async (t) => {
  const up = await startUpstream((_req, res) => res.end('ok'));
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kycgate-rl-reload-'));
  const file = path.join(dir, 'kycgate.yaml');
  const write = (header: string) =>
    writeFileSync(
      file,
      JSON.stringify({
        listeners: [{ name: 'main', port: 0 }],
        admin: { port: 0 },
        log: { level: 'warn', access: false },
        upstreams: { app: { targets: [{ url: up.url }] } },
        routes: [
          {
            name: 'reloaded',
            match: { prefix: '/api' },
            upstream: 'app',
            policies: [
              { 'rate-limit': { limits: [{ name: 'reload-quota', rate: 2, per: 'hour' }] } },
              { 'request-headers': { response_set: { 'x-config': header } } },
            ],
          },
        ],
      }),
    );
  write('one');
  const loaded = loadConfigFile(file, new ConfigValidator(SUBSYSTEMS, POLICIES));
  const gw = await startTestGateway(loaded.config as unknown as Record<string, unknown>, {
    file,
    baseDir: dir,
    watchConfig: false,
  });
  t.after(async () => {
    await gw.close();
    await up.close();
    rmSync(dir, { recursive: true, force: true });
  });
  assert.equal((await httpRequest(gw.url + '/api')).status, 200);
  assert.equal((await httpRequest(gw.url + '/api')).status, 200);
  write('two');
  assert.equal(await gw.gateway.reload('test'), true);
  const after = await httpRequest(gw.url + '/api');
  assert.equal(after.status, 429, 'the quota used before the reload still counts');
  assert.equal(after.headers['x-config'], 'two', 'the new config serves');
});
