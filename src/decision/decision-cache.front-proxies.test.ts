/**
 * The shipped nginx recipe with its decision cache on, against the real bundled policies: a cached allow never
 * defeats a rate limit (rate-limited routes are decided on every request, and no answer that may be reused carries
 * quota headers), a revoked API key is refused within `allow_max_age_s`, an expired JWT is refused at its `exp` even
 * when `allow_max_age_s` is longer, and credentials the gateway hides never reach the application.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { SignJWT } from 'jose';
import { startTestGateway, startUpstream, httpRequest, type TestGateway } from '../../testing/harness.js';
import { findBinary, requireBinary, startFrontProxy, type FrontProxy } from '../../testing/front-proxies.js';
import type { AuthService } from '../auth/subsystem.js';
import type { IncomingHttpHeaders } from 'node:http';
import net from 'node:net';

const SECRET = 'decision-cache-test-secret-of-32-bytes-or-more!';
process.env.KYCGATE_TEST_DECISION_CACHE_JWT = SECRET;

let gw: TestGateway | undefined;
let app: Awaited<ReturnType<typeof startUpstream>> | undefined;
/** nginx in front of the decision listener with allow_max_age_s 60 (long) and 2 (short). */
let longCache: FrontProxy | undefined;
let shortCache: FrontProxy | undefined;
const seen: IncomingHttpHeaders[] = [];
/** Decisions kycgate made, by route. */
const decided = new Map<string, number>();

before(async () => {
  if (!findBinary('nginx')) return;
  app = await startUpstream((req, res) => {
    seen.push(req.headers);
    res.end('from the application');
  });
  const apiKey = { 'api-key': {} };
  const jwt = {
    jwt: {
      issuers: [
        {
          issuer: 'https://idp.test',
          hmac_secret: { env: 'KYCGATE_TEST_DECISION_CACHE_JWT' },
          audiences: ['api'],
          leeway_s: 0,
        },
      ],
    },
  };
  gw = await startTestGateway({
    listeners: [
      { name: 'long', port: 0, decision: { front_proxies: ['127.0.0.1'], cache: { allow_max_age_s: 60 } } },
      { name: 'short', port: 0, decision: { front_proxies: ['127.0.0.1'], cache: { allow_max_age_s: 2 } } },
    ],
    consumers: { billing: { scopes: ['payments:read'] } },
    routes: [
      {
        name: 'limited',
        match: { prefix: '/limited' },
        policies: [
          { authenticate: { methods: [apiKey] } },
          { 'rate-limit': { limits: [{ rate: 3, per: 'minute', key: ['consumer'] }] } },
        ],
      },
      {
        name: 'keyed',
        match: { prefix: '/keyed' },
        policies: [
          { authenticate: { methods: [apiKey], upstream_headers: true } },
          { authorize: { scopes: { all_of: ['payments:read'] } } },
        ],
      },
      { name: 'token', match: { prefix: '/token' }, policies: [{ authenticate: { methods: [jwt] } }] },
    ],
  });
  gw.gateway.services.events.subscribe({
    onRequestComplete(ctx) {
      if (ctx.frontProxy !== undefined) decided.set(ctx.route.name, (decided.get(ctx.route.name) ?? 0) + 1);
    },
  });
  const port = (name: string) => gw!.gateway.listeners.find((l) => l.config.name === name)!.port;
  longCache = await startFrontProxy('nginx', {
    decision: `127.0.0.1:${port('long')}`,
    upstream: `127.0.0.1:${app.port}`,
  });
  shortCache = await startFrontProxy('nginx', {
    decision: `127.0.0.1:${port('short')}`,
    upstream: `127.0.0.1:${app.port}`,
  });
});

after(async () => {
  await longCache?.close();
  await shortCache?.close();
  await gw?.close();
  await app?.close();
});

async function createKey(): Promise<{ key: string; id: string }> {
  const created = await gw!.gateway.services.get<AuthService>('auth').createKey({ consumer: 'billing' });
  return { key: created.key, id: created.record.id };
}

test('a rate limit is enforced through the cache: every request is decided, and quota headers are never stale', async (t) => {
  if (!requireBinary(t, 'nginx')) return;
  const { key } = await createKey();
  const answers = [];
  for (let i = 0; i < 6; i++)
    answers.push(await httpRequest(longCache!.url + '/limited/transfer', { headers: { 'x-api-key': key } }));
  assert.deepEqual(
    answers.map((a) => a.status),
    [200, 200, 200, 429, 429, 429],
    longCache!.log(),
  );
  assert.equal(decided.get('limited'), 6, 'kycgate decided every request');
  const quotas = answers.slice(0, 3).map((a) => a.headers.ratelimit);
  assert.equal(new Set(quotas).size, 3, `each allow carries its own remaining quota: ${quotas.join(' | ')}`);
  assert.equal(JSON.parse(answers[3]!.body).type, 'https://kycgate.dev/problems/rate-limited');
  assert.ok(answers[3]!.headers['retry-after']);
});

test('a revoked API key is refused within allow_max_age_s; the key itself never reaches the application', async (t) => {
  if (!requireBinary(t, 'nginx')) return;
  const { key, id } = await createKey();
  seen.length = 0;
  for (let i = 0; i < 3; i++)
    assert.equal(
      (await httpRequest(shortCache!.url + '/keyed/balance', { headers: { 'x-api-key': key } })).status,
      200,
    );
  assert.equal(decided.get('keyed'), 1, 'identical requests reuse one allow');
  assert.equal(seen.length, 3);
  for (const h of seen) {
    assert.equal(h['x-api-key'], undefined, 'hide_credentials: nginx clears the key kycgate removed');
    assert.equal(h['x-consumer'], 'billing');
  }

  await gw!.gateway.services.get<AuthService>('auth').revokeKey(id);
  const revokedAt = Date.now();
  let status = 200;
  while (status === 200 && Date.now() - revokedAt < 6000) {
    status = (await httpRequest(shortCache!.url + '/keyed/balance', { headers: { 'x-api-key': key } })).status;
    if (status === 200) await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const after = Date.now() - revokedAt;
  assert.equal(status, 401, 'refused once the cached allow ran out');
  assert.ok(after <= 2000 + 1500, `refused ${after} ms after the revocation (bound: allow_max_age_s 2 s)`);
});

test('an expired JWT is refused at its exp although allow_max_age_s is 60 s', async (t) => {
  if (!requireBinary(t, 'nginx')) return;
  const exp = Math.floor(Date.now() / 1000) + 3;
  const token = await new SignJWT({ iss: 'https://idp.test', aud: 'api', client_id: 'billing', exp })
    .setProtectedHeader({ alg: 'HS256' })
    .sign(new TextEncoder().encode(SECRET));
  const headers = { authorization: `Bearer ${token}` };
  const first = await httpRequest(longCache!.url + '/token/x', { headers });
  assert.equal(first.status, 200, longCache!.log());
  let status = 200;
  let allowed = 1;
  while (status === 200 && Date.now() < exp * 1000 + 5000) {
    status = (await httpRequest(longCache!.url + '/token/x', { headers })).status;
    if (status === 200) {
      allowed++;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  const late = Date.now() - exp * 1000;
  assert.equal(status, 401, 'refused after exp');
  assert.ok(late <= 1500, `refused ${late} ms after exp`);
  assert.ok(allowed > 1, 'allowed until then');
  assert.ok((decided.get('token') ?? 0) < allowed + 1, 'the allow was reused while the token was valid');
});

test('through nginx, an ambiguous path is refused by the decision; a Host with userinfo never reaches the application', async (t) => {
  if (!requireBinary(t, 'nginx')) return;
  const { key } = await createKey();
  seen.length = 0;
  const path = await rawHttp(
    longCache!.port,
    `GET /keyed/..;/admin HTTP/1.1\r\nHost: api.example\r\nX-Api-Key: ${key}\r\nConnection: close\r\n\r\n`,
  );
  assert.match(path, /^HTTP\/1\.1 400 /, path.slice(0, 200));
  assert.match(path, /"type":"https:\/\/kycgate\.dev\/problems\/ambiguous-path"/);
  assert.equal(seen.length, 0, 'the application never saw it');
  // nginx's $host keeps only the name before the port, and the recipe sends that (X-Original-Host, Host): what
  // follows the colon is dropped before kycgate or the application see it.
  const host = await rawHttp(
    longCache!.port,
    `GET /keyed/balance HTTP/1.1\r\nHost: api.example:443@evil.example\r\nX-Api-Key: ${key}\r\nConnection: close\r\n\r\n`,
  );
  assert.match(host, /^HTTP\/1\.1 200 /, host.slice(0, 200));
  assert.equal(seen.length, 1);
  assert.ok(!JSON.stringify(seen[0]).includes('evil.example'), JSON.stringify(seen[0]));
  assert.equal(seen[0]!.host, 'api.example');
});

function rawHttp(port: number, payload: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(payload));
    let out = '';
    socket.setEncoding('latin1');
    socket.on('data', (c: string) => (out += c));
    socket.on('end', () => resolve(out));
    socket.on('error', reject);
  });
}
