import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestGateway, httpRequest, type TestGateway } from '../../testing/harness.js';
import { POLICIES_WITH_DECISION_TESTS, VERIFICATION_URL } from '../../testing/decision-policies.js';
import type { RequestContext } from '../pipeline/context.js';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigValidator, loadConfigFile } from '../config/load.js';
import { SUBSYSTEMS, POLICIES } from '../bundled.js';

let gw: TestGateway;
let decide: string;
const completed: RequestContext[] = [];

before(async () => {
  gw = await startTestGateway(
    {
      listeners: [
        {
          name: 'decide',
          port: 0,
          decision: {
            front_proxies: ['127.0.0.1', '::1'],
            forwarded_body: ['envoy'],
            cache: { allow_max_age_s: 30, deny_max_age_s: 5 },
          },
        },
        { name: 'strict', port: 0, decision: { front_proxies: ['10.9.9.9'] } },
      ],
      routes: [
        { name: 'api', match: { prefix: '/api' }, policies: [{ 'test-identity': {} }, { 'test-kyc-challenge': {} }] },
        {
          name: 'limited',
          match: { prefix: '/limited' },
          policies: [{ 'test-identity': {} }, { 'test-rate-limit': {} }],
        },
        {
          name: 'upload',
          match: { path: '/upload', methods: ['POST'] },
          policies: [{ 'test-identity': {} }, { 'test-body-rule': {} }],
        },
        {
          name: 'admin',
          match: { hosts: ['admin.example'], prefix: '/' },
          policies: [{ 'request-headers': { set: { 'x-kyc-admin': 'yes' } } }],
        },
        { name: 'broken', match: { path: '/broken' }, policies: [{ 'test-bad-header': {} }] },
        { name: 'canned', match: { path: '/canned' }, policies: [{ 'static-response': { status: 200, body: 'ok' } }] },
        {
          name: 'moved',
          match: { path: '/moved' },
          policies: [{ 'static-response': { status: 302, headers: { location: '/elsewhere' }, body: '' } }],
        },
      ],
    },
    { policies: POLICIES_WITH_DECISION_TESTS },
  );
  decide = gw.urlOf('decide');
  gw.gateway.services.events.subscribe({ onRequestComplete: (ctx) => completed.push(ctx) });
});

after(() => gw.close());

function nginx(uri: string, headers: Record<string, string> = {}, method = 'GET') {
  return httpRequest(`${decide}/nginx`, {
    headers: {
      'x-original-method': method,
      'x-original-uri': uri,
      'x-original-host': 'api.example',
      'x-real-ip': '203.0.113.7',
      ...headers,
    },
  });
}

test('nginx allow answers 200 with the headers to inject upstream and a bounded cache lifetime', async () => {
  const r = await nginx('/api/accounts?limit=5', { authorization: 'Bearer good', 'x-request-id': 'req-allow-1' });
  assert.equal(r.status, 200);
  assert.equal(r.headers['x-subject-id'], 'sub-1');
  assert.equal(r.headers['x-kyc-status'], 'approved');
  assert.equal(r.headers['x-consumer'], 'app-1');
  assert.equal(r.headers['x-kycgate-status'], '200');
  assert.equal(r.headers['cache-control'], 'private, max-age=30');
  assert.equal(r.headers['x-accel-expires'], '30');
  assert.equal(r.headers.vary, 'x-original-method, x-original-uri, x-original-host, authorization, cookie, x-api-key');
  assert.equal(r.body, '');
  const ctx = completed.find((c) => c.id === 'req-allow-1');
  assert.ok(ctx, 'the decision was reported through requestComplete');
  assert.equal(ctx.frontProxy, 'nginx');
  assert.equal(ctx.clientIp, '203.0.113.7');
  assert.equal(ctx.route.name, 'api');
  assert.equal(ctx.path, '/api/accounts');
  assert.equal(ctx.query, 'limit=5');
  assert.equal(ctx.status, 200);
});

test('a policy bounds the cache lifetime to its earliest expiry', async () => {
  const r = await nginx('/api/accounts', { authorization: 'Bearer short' });
  assert.equal(r.status, 200);
  assert.equal(r.headers['cache-control'], 'private, max-age=2');
});

test('unauthenticated: 401 problem with WWW-Authenticate, the problem also in a header for nginx', async () => {
  const r = await nginx('/api/accounts', { authorization: 'Bearer wrong' });
  assert.equal(r.status, 401);
  assert.equal(r.headers['content-type'], 'application/problem+json');
  assert.equal(r.headers['www-authenticate'], 'Bearer realm="kycgate", error="invalid_token"');
  assert.equal(r.headers['x-kycgate-status'], '401');
  assert.equal(r.headers['cache-control'], 'private, max-age=5');
  const body = JSON.parse(r.body) as Record<string, unknown>;
  assert.equal(body.type, 'https://kycgate.dev/problems/unauthenticated');
  assert.deepEqual(JSON.parse(r.headers['x-kycgate-problem'] as string), body);
});

test('rate limited: quota headers on allows, 429 with Retry-After and RateLimit headers, never cacheable', async () => {
  const allowed = await nginx('/limited/x', { authorization: 'Bearer good' });
  assert.equal(allowed.status, 200);
  assert.equal(allowed.headers.ratelimit, '"default";r=9;t=60');
  assert.equal(allowed.headers['cache-control'], 'no-store', 'the limiter forbids reuse');
  const r = await nginx('/limited/x', { authorization: 'Bearer good', 'x-test-burst': '1' });
  assert.equal(r.status, 429);
  assert.equal(r.headers['retry-after'], '7');
  assert.equal(r.headers['ratelimit-policy'], '"default";q=10;w=60');
  assert.equal(r.headers.ratelimit, '"default";r=0;t=7');
  assert.equal(r.headers['cache-control'], 'no-store');
  assert.equal(r.headers['x-accel-expires'], '0');
});

test('KYC challenge: 403 with the verification URL for APIs, 303 to it for browsers', async () => {
  const api = await nginx('/api/accounts', { authorization: 'Bearer unverified', accept: 'application/json' });
  assert.equal(api.status, 403);
  assert.equal(api.headers['x-kycgate-verification-url'], VERIFICATION_URL);
  assert.equal(api.headers.location, undefined);
  const body = JSON.parse(api.body) as Record<string, unknown>;
  assert.equal(body.type, 'https://kycgate.dev/problems/kyc-required');
  assert.equal(body.verification_url, VERIFICATION_URL);

  const browser = await nginx('/api/accounts', {
    authorization: 'Bearer unverified',
    accept: 'text/html,application/xhtml+xml,*/*;q=0.8',
  });
  assert.equal(browser.status, 303);
  assert.equal(browser.headers.location, VERIFICATION_URL);
  assert.equal(browser.headers['x-kycgate-status'], '303');
  assert.equal(browser.headers['cache-control'], 'no-store');
});

test('the original path is normalised exactly like a proxied one before routing', async () => {
  const climbed = await nginx('/public/../api/accounts', { authorization: 'Bearer good' });
  assert.equal(climbed.status, 200, 'dot-segments removed: the api route matched and decided');
  assert.equal(climbed.headers['x-subject-id'], 'sub-1');
  const encoded = await nginx('/api/%2e%2e/admin', { authorization: 'Bearer wrong' });
  assert.equal(encoded.status, 404, '/api/%2e%2e/admin is /admin: no route on this host');
  const slash = await nginx('/api%2Faccounts', { authorization: 'Bearer good' });
  assert.equal(slash.status, 400);
  assert.equal(JSON.parse(slash.body).type, 'https://kycgate.dev/problems/invalid-path');
  assert.equal(slash.headers['x-kycgate-status'], '400');
});

test('the original host selects host-bound routes', async () => {
  const r = await nginx('/anything', { 'x-original-host': 'admin.example:8443' });
  assert.equal(r.status, 200);
  assert.equal(r.headers['x-kyc-admin'], 'yes');
});

test('missing convention headers are a 400, not a decision about some other request', async () => {
  const r = await httpRequest(`${decide}/nginx`, {
    headers: { 'x-original-uri': '/api/accounts', 'x-original-host': 'a', 'x-real-ip': '203.0.113.7' },
  });
  assert.equal(r.status, 400);
  assert.match(JSON.parse(r.body).detail, /original method/);
  const noClient = await httpRequest(`${decide}/nginx`, {
    headers: { 'x-original-method': 'GET', 'x-original-uri': '/api/accounts', 'x-original-host': 'a' },
  });
  assert.equal(noClient.status, 400);
});

test('only configured front proxies may ask for decisions', async () => {
  const r = await httpRequest(`${gw.urlOf('strict')}/nginx`, {
    headers: {
      'x-original-method': 'GET',
      'x-original-uri': '/api/accounts',
      'x-original-host': 'a',
      'x-real-ip': '203.0.113.7',
      authorization: 'Bearer good',
    },
  });
  assert.equal(r.status, 403);
  assert.equal(JSON.parse(r.body).type, 'https://kycgate.dev/problems/decision-untrusted-peer');
  assert.equal(r.headers['x-subject-id'], undefined);
});

test('Traefik and Caddy: X-Forwarded-* describe the request; the client is the last hop that is not a front proxy', async () => {
  for (const proxy of ['traefik', 'caddy', 'kong']) {
    const id = `req-fwd-${proxy}`;
    const r = await httpRequest(`${decide}/${proxy}`, {
      headers: {
        'x-forwarded-method': 'DELETE',
        'x-forwarded-uri': '/api/accounts/7?force=1',
        'x-forwarded-host': 'api.example',
        'x-forwarded-proto': 'https',
        'x-forwarded-for': '198.51.100.1, 203.0.113.9, 127.0.0.1',
        authorization: 'Bearer good',
        'x-request-id': id,
      },
    });
    assert.equal(r.status, 200);
    assert.equal(
      r.headers.vary,
      'x-forwarded-method, x-forwarded-uri, x-forwarded-host, authorization, cookie, x-api-key',
    );
    const ctx = completed.find((c) => c.id === id)!;
    assert.equal(ctx.frontProxy, proxy);
    assert.equal(ctx.method, 'DELETE');
    assert.equal(ctx.clientIp, '203.0.113.9');
    assert.equal(ctx.protocol, 'https');
    assert.equal(ctx.header('x-forwarded-method'), undefined, 'meta headers are not request headers');
  }
});

test('Envoy: the original path follows the prefix and the forwarded body is the original body', async () => {
  const headers = {
    'x-forwarded-for': '203.0.113.5',
    authorization: 'Bearer good',
    'content-type': 'application/json',
    'x-envoy-auth-partial-body': 'false',
  };
  const ok = await httpRequest(`${decide}/envoy/upload`, { method: 'POST', headers, body: '{"amount":5}' });
  assert.equal(ok.status, 200);
  assert.equal(ok.headers['x-kyc-body-bytes'], '12');
  const refused = await httpRequest(`${decide}/envoy/upload`, {
    method: 'POST',
    headers,
    body: '{"note":"forbidden"}',
  });
  assert.equal(refused.status, 403);
  const partial = await httpRequest(`${decide}/envoy/upload`, {
    method: 'POST',
    headers: { ...headers, 'x-envoy-auth-partial-body': 'true' },
    body: '{"a":',
  });
  assert.equal(partial.status, 500);
  assert.equal(JSON.parse(partial.body).type, 'https://kycgate.dev/problems/decision-needs-body');
  const { 'x-envoy-auth-partial-body': _, ...unmarked } = headers;
  const notForwarded = await httpRequest(`${decide}/envoy/upload`, { method: 'POST', headers: unmarked });
  assert.equal(notForwarded.status, 500, 'without the mark an empty body is not taken for the original');
  assert.equal(JSON.parse(notForwarded.body).type, 'https://kycgate.dev/problems/decision-needs-body');
});

test('a body rule behind a proxy that sends no body answers decision-needs-body instead of deciding on nothing', async () => {
  const r = await nginx('/upload', { authorization: 'Bearer good' }, 'POST');
  assert.equal(r.status, 500);
  assert.equal(JSON.parse(r.body).type, 'https://kycgate.dev/problems/decision-needs-body');
  assert.equal(r.headers['x-kyc-body-bytes'], undefined);
  assert.equal(r.headers['cache-control'], 'no-store');
});

test('gateway-made answers: redirects are relayed, a 2xx cannot be expressed as a decision', async () => {
  const moved = await nginx('/moved');
  assert.equal(moved.status, 302);
  assert.equal(moved.headers.location, '/elsewhere');
  assert.equal(moved.headers['x-kycgate-status'], '302');
  const canned = await nginx('/canned');
  assert.equal(canned.status, 500);
  assert.equal(JSON.parse(canned.body).type, 'https://kycgate.dev/problems/decision-reply-not-expressible');
});

test('decisions are in the access log with the front proxy; the decision listener answers health checks', async () => {
  const line = gw.logs.find((l) => l.req_id === 'req-allow-1' && l.msg === 'request');
  assert.ok(line);
  assert.equal(line.front_proxy, 'nginx');
  assert.equal(line.client, '203.0.113.7');
  const health = await httpRequest(`${decide}/healthz`);
  assert.equal(health.status, 200);
});

test('a header value that cannot be written is a 500, never a split header or a crash', async () => {
  const r = await nginx('/broken');
  assert.equal(r.status, 500);
  assert.equal(r.headers['x-injected'], undefined);
  assert.equal(
    (await nginx('/api/accounts', { authorization: 'Bearer good' })).status,
    200,
    'the gateway still answers',
  );
});

test('unknown decision paths are refused', async () => {
  const r = await httpRequest(`${decide}/apache`, { headers: { 'x-original-method': 'GET' } });
  assert.equal(r.status, 404);
});

test('the example decision config is valid', () => {
  const file = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../examples/decision/kycgate.yaml');
  const loaded = loadConfigFile(file, new ConfigValidator(SUBSYSTEMS, POLICIES));
  assert.deepEqual(loaded.config.listeners[0]!.decision!.forwarded_body, ['envoy']);
});
