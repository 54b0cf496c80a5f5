/**
 * JWT authentication against a real OIDC/JWKS server started here, and the attacks a gateway must refuse.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHmac, createPublicKey } from 'node:crypto';
import { SignJWT, UnsecuredJWT, exportJWK, generateKeyPair, base64url } from 'jose';
import { pino } from 'pino';
import { Client } from 'undici';
import { startTestGateway, startUpstream, httpRequest } from '../../../../testing/harness.js';
import { startIdP, type IdP } from '../../../../testing/oidc-issuer.js';
import { Services } from '../../../pipeline/services.js';
import { ConsumerDirectory } from '../../../auth/consumers.js';
import { jwtAuthenticator } from './jwt.js';
import type { JwtConfig, JwtIssuerConfig } from './schema.js';
import type { Authenticator } from '../authenticator.js';

function jwtConfig(issuer: Partial<JwtIssuerConfig>): JwtConfig {
  return {
    header: 'authorization',
    issuers: [
      {
        discovery: false,
        leeway_s: 30,
        consumer_claims: ['client_id'],
        scope_claims: ['scope'],
        audiences: [],
        issuer: '',
        ...issuer,
      },
    ],
    jwks: { cooldown_s: 30, max_age_s: 600, timeout_ms: 1000 },
    cache: { max_entries: 10 },
  };
}

async function rsaKey(kid: string) {
  const { publicKey, privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' };
  return { publicKey, privateKey, jwk, kid };
}

type Key = Awaited<ReturnType<typeof rsaKey>>;

function sign(key: Key, issuer: string, claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}) {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({
    client_id: 'billing',
    scope: 'payments:read payments:write',
    aud: 'payments-api',
    iss: issuer,
    iat: now,
    exp: now + 300,
    ...claims,
  })
    .setProtectedHeader({ alg: 'RS256', kid: key.kid, ...header })
    .sign(key.privateKey);
}

async function setup(
  t: TestContext,
  issuerConfig: (idp: IdP) => Record<string, unknown>,
  extra: { policies?: unknown[]; jwks?: Record<string, unknown> } = {},
) {
  const idp = await startIdP(t);
  const key = await rsaKey('k1');
  idp.published.push(key.jwk);
  const upstream = await startUpstream((_req, res) => res.end('ok'));
  const gw = await startTestGateway({
    consumers: { billing: { groups: ['finance'], plan: 'gold' } },
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
                  jwt: {
                    issuers: [{ issuer: idp.url, audiences: ['payments-api'], ...issuerConfig(idp) }],
                    jwks: { cooldown_s: 0.5, ...extra.jwks },
                  },
                },
              ],
              failure_limit: { enabled: false },
            },
          },
          ...(extra.policies ?? []),
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
      reason: res.status === 200 ? undefined : (JSON.parse(res.body) as { reason?: string }).reason,
      headers: res.headers,
    };
  };
  return { idp, key, gw, upstream, call };
}

/** A loopback URL where nothing listens. */
const deadUrl = await new Promise<string>((resolve) => {
  const server = http.createServer();
  server.listen(0, '127.0.0.1', () => {
    const port = (server.address() as AddressInfo).port;
    server.close(() => resolve(`http://127.0.0.1:${port}`));
  });
});

/** Polls until `check` holds (the key set is warmed in the background at start). */
async function until(check: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('jwt: a valid token passes; identity from claims; repeated tokens are served from the cache', async (t) => {
  const { idp, key, call, upstream } = await setup(t, (i) => ({ jwks_url: `${i.url}/jwks` }), {
    policies: [{ authorize: { scopes: { any_of: ['payments:write', 'admin'] }, groups: ['finance'] } }],
  });
  const token = await sign(key, idp.url);
  assert.equal((await call(token)).status, 200);
  const fetches = idp.jwksFetches;
  for (let i = 0; i < 5; i++) assert.equal((await call(token)).status, 200);
  assert.equal(idp.jwksFetches, fetches, 'known keys are not refetched');
  assert.equal(upstream.requests, 6);
});

test('jwt: OIDC discovery finds the JWKS', async (t) => {
  const { idp, key, call } = await setup(t, () => ({ discovery: true }));
  assert.equal((await call(await sign(key, idp.url))).status, 200);
  assert.ok(idp.discoveryFetches >= 1);
});

test('jwt attacks are refused with 401 and a Bearer challenge', async (t) => {
  const { idp, key, call } = await setup(t, (i) => ({ jwks_url: `${i.url}/jwks` }));
  const now = Math.floor(Date.now() / 1000);
  const base = { client_id: 'billing', aud: 'payments-api', iss: idp.url, exp: now + 300 };

  const none = new UnsecuredJWT(base).encode();
  const r = await call(none);
  assert.equal(r.status, 401);
  assert.match(String(r.headers['www-authenticate']), /^Bearer realm="kycgate", error="invalid_token"$/);
  assert.equal(r.reason, 'algorithm_not_allowed');

  // HS256 "signed" with the RSA public key as the HMAC secret (key confusion).
  const pem = createPublicKey({ key: key.jwk as import('node:crypto').JsonWebKey, format: 'jwk' }).export({
    type: 'spki',
    format: 'pem',
  }) as string;
  const header = base64url.encode(JSON.stringify({ alg: 'HS256', typ: 'JWT', kid: 'k1' }));
  const payload = base64url.encode(JSON.stringify(base));
  const confused = `${header}.${payload}.${base64url.encode(createHmac('sha256', pem).update(`${header}.${payload}`).digest())}`;
  assert.equal((await call(confused)).reason, 'algorithm_not_allowed');

  assert.equal((await call(await sign(key, idp.url, { exp: now - 120 }))).reason, 'token_expired');
  assert.equal((await call(await sign(key, idp.url, { exp: now - 10 }))).status, 200, 'inside the 30 s leeway');
  assert.equal((await call(await sign(key, idp.url, { nbf: now + 120 }))).reason, 'token_not_yet_valid');
  assert.equal((await call(await sign(key, idp.url, { aud: 'other-api' }))).reason, 'wrong_audience');
  assert.equal((await call(await sign(key, idp.url, { aud: undefined }))).reason, 'missing_claim');
  assert.equal((await call(await sign(key, idp.url, { exp: undefined }))).reason, 'missing_claim', 'exp is required');
  assert.equal((await call(await sign(key, 'https://evil.example.com'))).reason, 'unknown_issuer');

  const good = await sign(key, idp.url);
  const [h, p, s] = good.split('.');
  const tamperedPayload = base64url.encode(
    JSON.stringify({ ...JSON.parse(new TextDecoder().decode(base64url.decode(p!))), scope: 'admin' }),
  );
  assert.equal((await call(`${h}.${tamperedPayload}.${s}`)).reason, 'invalid_signature');
  assert.equal((await call('eyJhbGciOi.not-a-jwt')).status, 401);
});

test('jwt: an unknown kid triggers a rate-limited JWKS refetch; a rotated key is picked up', async (t) => {
  const { idp, call } = await setup(t, (i) => ({ jwks_url: `${i.url}/jwks` }), { jwks: { cooldown_s: 0.5 } });
  await until(() => idp.jwksFetches >= 1);
  const rotated = await rsaKey('k2');
  const token = await sign(rotated, idp.url);
  await new Promise((r) => setTimeout(r, 550)); // let the start-up fetch's cooldown pass
  const before = idp.jwksFetches;
  assert.equal((await call(token)).reason, 'unknown_key_id');
  assert.equal(idp.jwksFetches, before + 1, 'an unknown kid refetches once');
  for (let i = 0; i < 5; i++) assert.equal((await call(token)).reason, 'unknown_key_id');
  assert.equal(idp.jwksFetches, before + 1, 'further unknown kids inside the cooldown do not refetch');
  idp.published.push(rotated.jwk);
  await new Promise((r) => setTimeout(r, 550));
  assert.equal((await call(token)).status, 200, 'after the cooldown the new key is fetched');
  assert.equal(idp.jwksFetches, before + 2);
});

test('jwt: a failing JWKS endpoint never crashes the gateway and the last good keys keep working', async (t) => {
  const { idp, key, call, gw } = await setup(t, (i) => ({ jwks_url: `${i.url}/jwks` }), {
    jwks: { cooldown_s: 0.1, max_age_s: 1 },
  });
  const jwksEvents: Array<{ type: string; outcome?: string }> = [];
  gw.gateway.services.events.subscribe({ onEvent: (e) => void (e.type === 'jwks.fetch_failed' && jwksEvents.push(e)) });
  assert.equal((await call(await sign(key, idp.url))).status, 200);
  idp.failing = true;
  const failedBefore = idp.jwksFetches;
  await new Promise((r) => setTimeout(r, 1100)); // the set is now stale: a refresh is attempted and fails
  assert.equal((await call(await sign(key, idp.url, { jti: 'a' }))).status, 200);
  await until(() => idp.jwksFetches > failedBefore);
  assert.equal((await call(await sign(key, idp.url, { jti: 'b' }))).status, 200, 'last good set still serves');
  const unknown = await rsaKey('k9');
  assert.equal((await call(await sign(unknown, idp.url))).reason, 'unknown_key_id');
  assert.ok(gw.logs.some((l) => l.msg === 'JWKS fetch failed'));
  assert.ok(jwksEvents.some((e) => e.outcome === 'kept_last_good_set'));
  const health = await httpRequest(gw.url + '/healthz');
  assert.equal(health.status, 200);
});

test('jwt: an IdP unreachable from the start answers 503 with Retry-After, not 401 or a crash', async (t) => {
  const { key, call, idp } = await setup(t, () => ({ jwks_url: `${deadUrl}/jwks` }));
  const res = await call(await sign(key, idp.url));
  assert.equal(res.status, 503);
  assert.equal(res.headers['retry-after'], '1');
});

test('jwt: scopes all_of / any_of and groups decide 403 for a valid token', async (t) => {
  const { idp, key, call } = await setup(t, (i) => ({ jwks_url: `${i.url}/jwks`, groups_claim: 'groups' }), {
    policies: [{ authorize: { scopes: { all_of: ['payments:read'], any_of: ['payments:write', 'payments:admin'] } } }],
  });
  assert.equal((await call(await sign(key, idp.url, { scope: 'payments:read payments:write' }))).status, 200);
  assert.equal(
    (await call(await sign(key, idp.url, { scope: undefined, scp: ['payments:read', 'payments:admin'] }))).status,
    200,
    'scp array',
  );
  const r1 = await call(await sign(key, idp.url, { scope: 'payments:write' }));
  assert.equal(r1.status, 403);
  assert.equal(r1.reason, 'insufficient_scope');
  assert.match(String(r1.headers['www-authenticate']), /insufficient_scope/);
  const r2 = await call(await sign(key, idp.url, { scope: 'payments:read' }));
  assert.equal(r2.status, 403);
});

test('jwt: HMAC issuers accept only HMAC and a public-key issuer refuses config mixing algorithms', async (t) => {
  process.env.KYCGATE_TEST_JWT_SECRET = 'a-shared-secret-that-is-at-least-32-bytes-long';
  const upstream = await startUpstream((_req, res) => res.end('ok'));
  t.after(() => upstream.close());
  const services = new Services(pino({ level: 'silent' }), '.');
  services.register('auth', { consumers: new ConsumerDirectory(), baseDir: '.', resolveSecret: () => 'x'.repeat(40) });
  const setupArgs = { routeName: 'r', upstreamNames: new Set<string>(), services };
  assert.throws(
    () =>
      jwtAuthenticator.create(
        jwtConfig({
          issuer: 'https://idp',
          jwks_url: 'https://idp/jwks',
          audiences: ['a'],
          algorithms: ['RS256', 'HS256'],
        }),
        setupArgs,
      ),
    /never mixed/,
  );
  assert.throws(
    () =>
      jwtAuthenticator.create(
        jwtConfig({ issuer: 'https://idp', hmac_secret: { env: 'X' }, audiences: ['a'], algorithms: ['RS256'] }),
        setupArgs,
      ),
    /never mixed/,
  );
  assert.throws(
    () =>
      jwtAuthenticator.create(
        jwtConfig({ issuer: 'https://idp', jwks_url: 'http://idp.example.com/jwks', audiences: ['a'] }),
        setupArgs,
      ),
    /https/,
  );
  const gw = await startTestGateway({
    upstreams: { app: { targets: [{ url: upstream.url }] } },
    routes: [
      {
        name: 'r',
        match: { prefix: '/' },
        upstream: 'app',
        policies: [
          {
            authenticate: {
              methods: [
                {
                  jwt: {
                    issuers: [
                      { issuer: 'https://idp', hmac_secret: { env: 'KYCGATE_TEST_JWT_SECRET' }, audiences: ['a'] },
                    ],
                  },
                },
              ],
            },
          },
        ],
      },
    ],
  });
  t.after(() => gw.close());
  const secret = new TextEncoder().encode(process.env.KYCGATE_TEST_JWT_SECRET);
  const now = Math.floor(Date.now() / 1000);
  const token = await new SignJWT({ iss: 'https://idp', aud: 'a', exp: now + 60 })
    .setProtectedHeader({ alg: 'HS256' })
    .sign(secret);
  assert.equal((await httpRequest(gw.url + '/x', { headers: { authorization: `Bearer ${token}` } })).status, 200);
  const wrong = await new SignJWT({ iss: 'https://idp', aud: 'a', exp: now + 60 })
    .setProtectedHeader({ alg: 'HS256' })
    .sign(new TextEncoder().encode('another-secret-that-is-also-32-bytes-long!'));
  assert.equal((await httpRequest(gw.url + '/x', { headers: { authorization: `Bearer ${wrong}` } })).status, 401);
});

test('jwt: routes sharing an issuer share one JWKS cache (one fetch at start)', async (t) => {
  const idp = await startIdP(t);
  const key = await rsaKey('k1');
  idp.published.push(key.jwk);
  const upstream = await startUpstream((_req, res) => res.end('ok'));
  const auth = {
    authenticate: {
      methods: [{ jwt: { issuers: [{ issuer: idp.url, jwks_url: `${idp.url}/jwks`, audiences: ['payments-api'] }] } }],
    },
  };
  const gw = await startTestGateway({
    upstreams: { app: { targets: [{ url: upstream.url }] } },
    defaults: { policies: [auth] },
    routes: ['a', 'b', 'c'].map((name) => ({ name, match: { prefix: `/${name}` }, upstream: 'app' })),
  });
  t.after(async () => {
    await gw.close();
    await upstream.close();
  });
  const token = await sign(key, idp.url);
  for (const name of ['a', 'b', 'c'])
    assert.equal(
      (await httpRequest(`${gw.url}/${name}`, { headers: { authorization: `Bearer ${token}` } })).status,
      200,
    );
  assert.equal(idp.jwksFetches, 1);
});

test('jwt: on one keep-alive connection every token is checked for itself, and per route', async (t) => {
  const idp = await startIdP(t);
  const key = await rsaKey('k1');
  idp.published.push(key.jwk);
  const upstream = await startUpstream((_req, res) => res.end('ok'));
  const method = (audience: string) => ({
    authenticate: {
      methods: [{ jwt: { issuers: [{ issuer: idp.url, audiences: [audience], jwks_url: `${idp.url}/jwks` }] } }],
      failure_limit: { enabled: false },
    },
  });
  const gw = await startTestGateway({
    upstreams: { app: { targets: [{ url: upstream.url }] } },
    routes: [
      { name: 'payments', match: { prefix: '/payments' }, upstream: 'app', policies: [method('payments-api')] },
      { name: 'reports', match: { prefix: '/reports' }, upstream: 'app', policies: [method('reports-api')] },
    ],
  });
  const client = new Client(gw.url, { pipelining: 1, connections: 1 } as Client.Options);
  t.after(async () => {
    await client.close();
    await gw.close();
    await upstream.close();
  });
  const call = async (path: string, token: string) => {
    const res = await client.request({ path, method: 'GET', headers: { authorization: `Bearer ${token}` } });
    const body = await res.body.text();
    return {
      status: res.statusCode,
      reason: res.statusCode === 200 ? undefined : (JSON.parse(body) as { reason?: string }).reason,
    };
  };
  const good = await sign(key, idp.url);
  assert.equal((await call('/payments/a', good)).status, 200);
  assert.equal((await call('/payments/a', good)).status, 200);
  // The same connection, the same token, a route that expects another audience.
  assert.equal((await call('/reports/a', good)).reason, 'wrong_audience');
  const [h, p, s] = good.split('.');
  const tampered = `${h}.${base64url.encode(JSON.stringify({ ...JSON.parse(new TextDecoder().decode(base64url.decode(p!))), scope: 'admin' }))}.${s}`;
  assert.equal((await call('/payments/a', tampered)).reason, 'invalid_signature');
  assert.equal((await call('/payments/a', good.slice(0, -2) + (good.endsWith('AA') ? 'BB' : 'AA'))).status, 401);
  const expired = await sign(key, idp.url, { exp: Math.floor(Date.now() / 1000) - 120 });
  assert.equal((await call('/payments/a', expired)).reason, 'token_expired');
  assert.equal((await call('/payments/a', good)).status, 200);
  assert.equal(upstream.requests, 3);
});

test('jwt: a JWKS endpoint answering without end is cut off at 1 MiB, not read into memory', {
  timeout: 20_000,
}, async (t) => {
  const { fetchJson } = await import('./remote-key-set.js');
  let written = 0;
  let closed!: () => void;
  const gone = new Promise<void>((resolve) => (closed = resolve));
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    const pump = () => {
      while (!res.destroyed && res.write(chunk)) written += chunk.length;
      if (!res.destroyed) res.once('drain', pump);
    };
    res.on('close', () => closed());
    pump();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.after(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`;
  await assert.rejects(fetchJson(url, 5000), /answered more than 1 MiB/);
  await gone;
  assert.ok(written < 16 * 1024 * 1024, `the reader stopped early (${written} bytes were written)`);
});

test('jwt: cache.max_entries 0 turns caching off, the per-connection memo included: every request is verified again', async () => {
  const secret = 'x'.repeat(40);
  const services = new Services(pino({ level: 'silent' }), '.');
  services.register('auth', { consumers: new ConsumerDirectory(), baseDir: '.', resolveSecret: () => secret });
  const setupArgs = { routeName: 'r', upstreamNames: new Set<string>(), services };
  const now = Math.floor(Date.now() / 1000);
  const token = await new SignJWT({ iss: 'https://idp', aud: 'a', exp: now + 60 })
    .setProtectedHeader({ alg: 'HS256' })
    .sign(new TextEncoder().encode(secret));
  const socket = {};
  const ctx = { header: () => `Bearer ${token}`, req: { socket } } as unknown as Parameters<
    Authenticator['authenticate']
  >[0];
  for (const [maxEntries, cachedAfterFirst] of [
    [10, true],
    [0, false],
  ] as const) {
    const config = {
      ...jwtConfig({ issuer: 'https://idp', hmac_secret: { env: 'UNUSED' }, audiences: ['a'] }),
      cache: { max_entries: maxEntries },
    };
    const authenticator = await jwtAuthenticator.create(config, setupArgs);
    const first = authenticator.authenticate(ctx);
    assert.ok(first instanceof Promise, 'a new token is verified');
    const identity = await first;
    assert.equal(typeof identity, 'object');
    const second = authenticator.authenticate(ctx);
    assert.equal(
      !(second instanceof Promise),
      cachedAfterFirst,
      `max_entries ${maxEntries}: the repeated token is ${cachedAfterFirst ? 'served from the memo' : 'verified again'}`,
    );
    assert.deepEqual(await second, identity);
  }
});
