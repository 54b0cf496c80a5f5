/**
 * The recipes in examples/ run for real: nginx (auth_request) and Caddy (forward_auth) in front of a kycgate
 * decision listener and an application, checking what the application and the client actually receive.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { startTestGateway, startUpstream, httpRequest, type TestGateway } from '../../testing/harness.js';
import { POLICIES_WITH_DECISION_TESTS, VERIFICATION_URL } from '../../testing/decision-policies.js';
import {
  findBinary,
  freePort,
  requireBinary,
  startFrontProxy,
  type FrontProxy,
  type FrontProxyName,
} from '../../testing/front-proxies.js';

for (const name of ['nginx', 'caddy'] as FrontProxyName[]) {
  describe(`${name} recipe`, () => {
    let gw: TestGateway | undefined;
    let app: Awaited<ReturnType<typeof startUpstream>> | undefined;
    let proxy: FrontProxy | undefined;
    let seen: IncomingHttpHeaders[] = [];
    let decisions = 0;

    before(async () => {
      if (!findBinary(name)) return;
      app = await startUpstream((req, res) => {
        seen.push(req.headers);
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('from the application');
      });
      gw = await startTestGateway(
        {
          listeners: [
            {
              name: 'decide',
              port: 0,
              decision: { front_proxies: ['127.0.0.1', '::1'], cache: { allow_max_age_s: 30 } },
            },
          ],
          routes: [
            {
              name: 'api',
              match: { prefix: '/api' },
              policies: [{ 'test-identity': {} }, { 'test-rate-limit': {} }, { 'test-kyc-challenge': {} }],
            },
            {
              name: 'cached',
              match: { prefix: '/cached' },
              policies: [{ 'test-identity': {} }, { 'test-kyc-challenge': {} }],
            },
            { name: 'open', match: { prefix: '/open' } },
          ],
        },
        { policies: POLICIES_WITH_DECISION_TESTS },
      );
      gw.gateway.services.events.subscribe({
        onRequestComplete: (ctx) => {
          if (ctx.frontProxy === name) decisions++;
        },
      });
      proxy = await startFrontProxy(name, {
        decision: `127.0.0.1:${gw.gateway.listeners[0]!.port}`,
        upstream: `127.0.0.1:${app.port}`,
      });
    });

    after(async () => {
      await proxy?.close();
      await gw?.close();
      await app?.close();
    });

    function get(path: string, headers: Record<string, string>) {
      seen = [];
      return httpRequest(proxy!.url + path, { headers });
    }

    test('an allowed request reaches the application with the injected headers; a forged copy is replaced', async (t) => {
      if (!requireBinary(t, name)) return;
      const r = await get('/api/accounts', {
        authorization: 'Bearer good',
        'x-kyc-status': 'forged',
        'x-subject-id': 'someone-else',
      });
      assert.equal(r.status, 200, proxy!.log());
      assert.equal(r.body, 'from the application');
      assert.equal(seen.length, 1);
      assert.equal(seen[0]!['x-kyc-status'], 'approved');
      assert.equal(seen[0]!['x-subject-id'], 'sub-1');
      assert.equal(seen[0]!['x-consumer'], 'app-1');
      // nginx adds the quota headers kycgate computed to the application's response; Caddy cannot.
      if (name === 'nginx') assert.equal(r.headers.ratelimit, '"default";r=9;t=60');
    });

    test('client copies of injected headers never reach the application when kycgate injects none', async (t) => {
      if (!requireBinary(t, name)) return;
      const r = await get('/open/page', {
        'x-kyc-status': 'approved',
        'x-subject-id': 'sub-1',
        'x-kyc-claims': 'full',
        'x-consumer': 'admin',
      });
      assert.equal(r.status, 200, proxy!.log());
      assert.equal(seen.length, 1);
      assert.equal(seen[0]!['x-kyc-status'], undefined);
      assert.equal(seen[0]!['x-kyc-claims'], undefined);
      assert.equal(seen[0]!['x-subject-id'], undefined);
      assert.equal(seen[0]!['x-consumer'], undefined);
    });

    test('a denied request gets the problem status, body and WWW-Authenticate; the application sees nothing', async (t) => {
      if (!requireBinary(t, name)) return;
      const r = await get('/api/accounts', { authorization: 'Bearer wrong', accept: 'application/json' });
      assert.equal(r.status, 401, proxy!.log());
      assert.equal(r.headers['www-authenticate'], 'Bearer realm="kycgate", error="invalid_token"');
      assert.match(r.headers['content-type'] ?? '', /^application\/problem\+json/);
      assert.equal(JSON.parse(r.body).type, 'https://kycgate.dev/problems/unauthenticated');
      assert.equal(seen.length, 0);
    });

    test('a rate-limited request gets 429 with Retry-After and RateLimit headers', async (t) => {
      if (!requireBinary(t, name)) return;
      const r = await get('/api/accounts', { authorization: 'Bearer good', 'x-test-burst': '1' });
      assert.equal(r.status, 429, proxy!.log());
      assert.equal(r.headers['retry-after'], '7');
      assert.equal(r.headers.ratelimit, '"default";r=0;t=7');
      assert.equal(JSON.parse(r.body).type, 'https://kycgate.dev/problems/rate-limited');
      assert.equal(seen.length, 0);
    });

    test('a verification challenge redirects browsers and gives APIs the problem with the URL', async (t) => {
      if (!requireBinary(t, name)) return;
      const browser = await get('/api/accounts', {
        authorization: 'Bearer unverified',
        accept: 'text/html,application/xhtml+xml,*/*;q=0.8',
      });
      assert.equal(browser.status, 303, proxy!.log());
      assert.equal(browser.headers.location, VERIFICATION_URL);
      const api = await get('/api/accounts', { authorization: 'Bearer unverified', accept: 'application/json' });
      assert.equal(api.status, 403);
      assert.equal(api.headers['x-kycgate-verification-url'], VERIFICATION_URL);
      const body = JSON.parse(api.body) as Record<string, unknown>;
      assert.equal(body.type, 'https://kycgate.dev/problems/kyc-required');
      assert.equal(body.verification_url, VERIFICATION_URL);
      assert.equal(seen.length, 0);
    });

    test('kycgate unreachable: the request is refused, never forwarded', async (t) => {
      if (!requireBinary(t, name)) return;
      const orphan = await startFrontProxy(name, {
        decision: `127.0.0.1:${await freePort()}`,
        upstream: `127.0.0.1:${app!.port}`,
      });
      try {
        seen = [];
        const r = await httpRequest(orphan.url + '/api/accounts', { headers: { authorization: 'Bearer good' } });
        assert.ok(r.status >= 500, `status ${r.status}`);
        if (name === 'nginx') assert.equal(JSON.parse(r.body).type, 'https://kycgate.dev/problems/service-unavailable');
        assert.equal(seen.length, 0);
      } finally {
        await orphan.close();
      }
    });

    if (name === 'nginx') {
      test('nginx reuses an allow for its max-age, per credential', async (t) => {
        if (!requireBinary(t, name)) return;
        const before = decisions;
        const headers = { authorization: 'Bearer good' };
        for (let i = 0; i < 3; i++) {
          const r = await get('/cached/page', headers);
          assert.equal(r.status, 200);
          assert.equal(seen[0]!['x-subject-id'], 'sub-1', 'cached answers still inject their headers');
        }
        assert.equal(decisions - before, 1, 'one decision for three identical requests');
        assert.equal((await get('/cached/other', headers)).status, 200);
        assert.equal(decisions - before, 2, 'another URI is another decision');
        for (let i = 0; i < 2; i++)
          assert.equal((await get('/cached/page', { authorization: 'Bearer wrong' })).status, 401);
        assert.equal(
          decisions - before,
          4,
          'another credential is another decision; denials (max-age 0) are never reused',
        );
        for (let i = 0; i < 2; i++) assert.equal((await get('/api/accounts', headers)).status, 200);
        assert.equal(decisions - before, 6, 'a route whose policies forbid reuse (rate limit) is decided every time');
      });
    }
  });
}

test('the documented Traefik, Envoy and Kong recipes are well-formed YAML pointing at the decision paths', () => {
  const examples = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../examples');
  const traefik = YAML.parse(readFileSync(path.join(examples, 'traefik/dynamic.yml'), 'utf8'));
  assert.equal(traefik.http.middlewares.kycgate.forwardAuth.address, 'http://127.0.0.1:9080/traefik');
  const envoy = readFileSync(path.join(examples, 'envoy/envoy.yaml'), 'utf8');
  assert.ok(YAML.parse(envoy).static_resources);
  assert.match(envoy, /path_prefix: \/envoy/);
  const kong = YAML.parse(readFileSync(path.join(examples, 'kong/kong.yml'), 'utf8'));
  assert.match(kong.services[0].plugins[0].config.access[0], /127\.0\.0\.1:9080\/kong/);
});
