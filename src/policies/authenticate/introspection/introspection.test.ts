/**
 * Token introspection (RFC 7662) against a real authorization server started here.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client } from 'undici';
import { startTestGateway, startUpstream, httpRequest } from '../../../../testing/harness.js';

interface AS {
  url: string;
  calls: number;
  /** token → introspection answer */
  tokens: Map<string, Record<string, unknown>>;
  delayMs: number;
  lastAuthorization: string | undefined;
}

async function startAuthorizationServer(t: TestContext): Promise<AS> {
  const as = { calls: 0, tokens: new Map(), delayMs: 0, lastAuthorization: undefined } as AS;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      as.calls++;
      as.lastAuthorization = req.headers.authorization;
      if (req.headers.authorization !== 'Basic ' + Buffer.from('gateway:s3cret').toString('base64')) {
        res.statusCode = 401;
        res.end();
        return;
      }
      const token = new URLSearchParams(Buffer.concat(chunks).toString()).get('token') ?? '';
      setTimeout(() => {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify(as.tokens.get(token) ?? { active: false }));
      }, as.delayMs);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  as.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  t.after(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  return as;
}

async function setup(t: TestContext, config: Record<string, unknown> = {}) {
  process.env.KYCGATE_TEST_INTROSPECTION_SECRET = 's3cret';
  const as = await startAuthorizationServer(t);
  const upstream = await startUpstream((_req, res) => res.end('ok'));
  const gw = await startTestGateway({
    upstreams: { app: { targets: [{ url: upstream.url }] } },
    routes: [
      {
        name: 'api',
        match: { prefix: '/api' },
        upstream: 'app',
        policies: [
          {
            authenticate: {
              methods: [
                {
                  introspection: {
                    endpoint: `${as.url}/introspect`,
                    client_id: 'gateway',
                    client_secret: { env: 'KYCGATE_TEST_INTROSPECTION_SECRET' },
                    timeout_ms: 300,
                    negative_cache_ttl_s: 1,
                    ...config,
                  },
                },
              ],
              failure_limit: { enabled: false },
            },
          },
          { authorize: { scopes: { all_of: ['read'] } } },
        ],
      },
    ],
  });
  t.after(async () => {
    await gw.close();
    await upstream.close();
  });
  const call = async (token: string) => {
    const res = await httpRequest(gw.url + '/api/x', { headers: { authorization: `Bearer ${token}` } });
    return {
      status: res.status,
      body: res.body === 'ok' ? undefined : (JSON.parse(res.body) as { reason?: string }),
      headers: res.headers,
    };
  };
  return { as, call, gw };
}

test('introspection: active tokens pass and are cached; inactive ones are refused and cached briefly', async (t) => {
  const { as, call } = await setup(t);
  const exp = Math.floor(Date.now() / 1000) + 600;
  as.tokens.set('opaque-good', { active: true, client_id: 'billing', scope: 'read write', exp });
  as.tokens.set('opaque-narrow', { active: true, client_id: 'billing', scope: 'write', exp });
  assert.equal((await call('opaque-good')).status, 200);
  assert.equal((await call('opaque-good')).status, 200);
  assert.equal(as.calls, 1, 'the second request is served from the cache');
  assert.equal(as.lastAuthorization, 'Basic ' + Buffer.from('gateway:s3cret').toString('base64'));
  const narrow = await call('opaque-narrow');
  assert.equal(narrow.status, 403, 'active but without the required scope');

  const bad = await call('opaque-unknown');
  assert.equal(bad.status, 401);
  assert.equal(bad.body?.reason, 'inactive_token');
  assert.match(String(bad.headers['www-authenticate']), /^Bearer/);
  const calls = as.calls;
  assert.equal((await call('opaque-unknown')).status, 401);
  assert.equal(as.calls, calls, 'negative answers are cached');
});

test('introspection: on one keep-alive connection an active token is remembered, and a different token is still introspected', async (t) => {
  // One cache entry: a token introspected elsewhere evicts the first, so only the connection memo can serve it.
  const { as, call, gw } = await setup(t, { cache_max_entries: 1 });
  const exp = Math.floor(Date.now() / 1000) + 600;
  as.tokens.set('opaque-a', { active: true, client_id: 'billing', scope: 'read', exp });
  as.tokens.set('opaque-b', { active: true, client_id: 'billing', scope: 'read', exp });
  as.tokens.set('opaque-narrow', { active: true, client_id: 'billing', scope: 'write', exp });
  const client = new Client(gw.url, { pipelining: 1, connections: 1 } as Client.Options);
  t.after(() => client.close());
  const onConnection = async (token: string) => {
    const res = await client.request({ path: '/api/x', method: 'GET', headers: { authorization: `Bearer ${token}` } });
    const body = await res.body.text();
    return {
      status: res.statusCode,
      reason: res.statusCode === 200 ? undefined : (JSON.parse(body) as { reason?: string }).reason,
    };
  };
  assert.equal((await onConnection('opaque-a')).status, 200);
  assert.equal(as.calls, 1);
  assert.equal(
    (await call('opaque-b')).status,
    200,
    'another connection, another token: evicts opaque-a from the cache',
  );
  assert.equal(as.calls, 2);
  assert.equal((await onConnection('opaque-a')).status, 200);
  assert.equal(as.calls, 2, 'the same token on the same connection is recalled without introspection');

  // Different tokens on the same connection are each introspected and judged for themselves.
  assert.equal((await onConnection('opaque-unknown')).reason, 'inactive_token');
  assert.equal(as.calls, 3);
  assert.equal((await onConnection('opaque-narrow')).status, 403);
  assert.equal(as.calls, 4);
  assert.equal((await onConnection('opaque-a')).status, 200);
  assert.equal(as.calls, 5, 'the connection remembers one token: opaque-a was replaced and is introspected again');
  assert.equal((await onConnection('opaque-a')).status, 200);
  assert.equal(as.calls, 5);
});

test('introspection: an expired exp is not trusted even if the server says active', async (t) => {
  const { as, call } = await setup(t);
  as.tokens.set('stale', { active: true, client_id: 'billing', scope: 'read', exp: Math.floor(Date.now() / 1000) - 5 });
  assert.equal((await call('stale')).status, 401);
});

test('introspection: a slow endpoint answers 503 after the timeout, never 401', async (t) => {
  const { as, call } = await setup(t);
  as.tokens.set('slow', { active: true, client_id: 'billing', scope: 'read' });
  as.delayMs = 1000;
  const started = Date.now();
  const res = await call('slow');
  assert.equal(res.status, 503);
  assert.ok(Date.now() - started < 900, 'the timeout applies');
  assert.equal(res.body?.reason, 'introspection_unavailable');
});

test('introspection: JWT-looking and API-key tokens are left to other methods', async (t) => {
  const { as, call } = await setup(t);
  const res = await call('eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln');
  assert.equal(res.status, 401);
  assert.equal(res.body?.reason, 'missing_credential');
  assert.equal(as.calls, 0);
});
