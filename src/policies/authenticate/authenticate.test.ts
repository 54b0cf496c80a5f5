/**
 * The authenticate policy end to end with API keys: a real gateway, a real upstream, the embedded store.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { startTestGateway, startUpstream, httpRequest, type TestGateway } from '../../../testing/harness.js';
import type { AuthService } from '../../auth/subsystem.js';
import type { GatewayEvent } from '../../pipeline/events.js';

async function setup(t: TestContext, policies: unknown[], extra: Record<string, unknown> = {}) {
  const seen: Array<Record<string, string | string[] | undefined>> = [];
  const urls: string[] = [];
  const upstream = await startUpstream((req, res) => {
    seen.push(req.headers);
    urls.push(req.url!);
    res.end('ok');
  });
  const gw: TestGateway = await startTestGateway({
    consumers: {
      billing: { scopes: ['payments:read', 'payments:write'], groups: ['finance'], plan: 'gold' },
      reporting: { scopes: ['reports:read'] },
    },
    upstreams: { app: { targets: [{ url: upstream.url }] } },
    routes: [{ name: 'api', match: { prefix: '/api' }, upstream: 'app', policies }],
    ...extra,
  });
  t.after(async () => {
    await gw.close();
    await upstream.close();
  });
  const auth = gw.gateway.services.get<AuthService>('auth');
  const events: GatewayEvent[] = [];
  gw.gateway.services.events.subscribe({ onEvent: (e) => void events.push(e) });
  return { gw, upstream, auth, events, seen, urls };
}

test('no credential: 401 problem+json with a WWW-Authenticate challenge, and an auth.failure event', async (t) => {
  const { gw, upstream, events } = await setup(t, [{ authenticate: { methods: [{ 'api-key': {} }] } }]);
  const res = await httpRequest(gw.url + '/api/x');
  assert.equal(res.status, 401);
  assert.equal(res.headers['content-type'], 'application/problem+json');
  assert.match(String(res.headers['www-authenticate']), /^ApiKey header="x-api-key", realm="kycgate"$/);
  const body = JSON.parse(res.body);
  assert.equal(body.type, 'https://kycgate.dev/problems/unauthenticated');
  assert.equal(body.reason, 'missing_credential');
  assert.equal(upstream.requests, 0);
  assert.ok(events.some((e) => e.type === 'auth.failure' && e.outcome === 'missing_credential'));
});

test('a valid key passes; the identity comes from the key, never from x-consumer-style headers; the key is not forwarded', async (t) => {
  const { gw, upstream, auth, events, seen } = await setup(t, [
    { authenticate: { methods: [{ 'api-key': {} }] } },
    { authorize: { consumers: ['reporting'] } },
  ]);
  const { key, record } = await auth.createKey({ consumer: 'billing' });
  // Forged identity headers change nothing: billing is not allowed on this route.
  const forged = await httpRequest(gw.url + '/api/x', {
    headers: {
      'x-api-key': key,
      'x-consumer': 'reporting',
      'x-consumer-id': 'reporting',
      'x-kycgate-consumer': 'reporting',
    },
  });
  assert.equal(forged.status, 403);
  assert.equal(JSON.parse(forged.body).reason, 'consumer_not_allowed');
  const noKey = await httpRequest(gw.url + '/api/x', { headers: { 'x-consumer': 'reporting' } });
  assert.equal(noKey.status, 401);
  assert.equal(upstream.requests, 0);

  const own = await auth.createKey({ consumer: 'reporting' });
  const ok = await httpRequest(gw.url + '/api/x', { headers: { 'x-api-key': own.key } });
  assert.equal(ok.status, 200);
  assert.equal(seen[0]!['x-api-key'], undefined, 'the key is removed before forwarding');
  const bearer = await httpRequest(gw.url + '/api/x', { headers: { authorization: `Bearer ${own.key}` } });
  assert.equal(bearer.status, 200);
  assert.equal(seen[1]!.authorization, undefined);
  const success = events.filter((e) => e.type === 'auth.success').at(-1);
  assert.equal(success?.outcome, 'api-key');
  assert.equal(success?.data?.consumer, 'reporting');
  assert.equal(success?.data?.credential_id, own.record.id);
  assert.ok(!JSON.stringify(events).includes(own.key), 'events never carry the key');
  assert.ok(record.id.length === 8);
});

test('wrong, malformed and query-string keys are refused unless the query parameter is configured', async (t) => {
  const { gw, auth } = await setup(t, [{ authenticate: { methods: [{ 'api-key': {} }] } }]);
  const { key } = await auth.createKey({ consumer: 'billing' });
  const tampered = key.slice(0, 20) + (key[20] === 'a' ? 'b' : 'a') + key.slice(21);
  const r1 = await httpRequest(gw.url + '/api/x', { headers: { 'x-api-key': tampered } });
  assert.equal(r1.status, 401);
  assert.equal(JSON.parse(r1.body).reason, 'malformed_key', 'a checksum mismatch is caught without a lookup');
  assert.match(String(r1.headers['www-authenticate']), /ApiKey/);
  const r2 = await httpRequest(gw.url + '/api/x?api_key=' + key);
  assert.equal(r2.status, 401);
  assert.equal(JSON.parse(r2.body).reason, 'missing_credential');
});

test('a key in the query string is taken only when query_param is configured', async (t) => {
  const { gw, auth } = await setup(t, [{ authenticate: { methods: [{ 'api-key': { query_param: 'api_key' } }] } }]);
  const { key } = await auth.createKey({ consumer: 'billing' });
  const res = await httpRequest(gw.url + '/api/x?api_key=' + key);
  assert.equal(res.status, 200);
});

test('a key taken from the query string is removed from the upstream query; the other parameters are kept as sent', async (t) => {
  const { gw, auth, urls } = await setup(t, [
    { authenticate: { methods: [{ 'api-key': { query_param: 'api_key' } }] } },
  ]);
  const { key } = await auth.createKey({ consumer: 'billing' });
  const res = await httpRequest(gw.url + `/api/x?a=1&api_key=${key}&b=x%20y&api%5Fkey=${key}&c`);
  assert.equal(res.status, 200);
  assert.equal(urls[0], '/api/x?a=1&b=x%20y&c');
  assert.ok(!urls[0]!.includes(key));
  const only = await httpRequest(gw.url + '/api/x?api_key=' + key);
  assert.equal(only.status, 200);
  assert.equal(urls[1], '/api/x');
  const other = await httpRequest(gw.url + '/api/x?q=1', { headers: { 'x-api-key': key } });
  assert.equal(other.status, 200);
  assert.equal(urls[2], '/api/x?q=1', 'a query without the key is forwarded unchanged');
});

test('with hide_credentials: false a query-string key is forwarded', async (t) => {
  const { gw, auth, urls } = await setup(t, [
    { authenticate: { methods: [{ 'api-key': { query_param: 'api_key', hide_credentials: false } }] } },
  ]);
  const { key } = await auth.createKey({ consumer: 'billing' });
  assert.equal((await httpRequest(gw.url + '/api/x?api_key=' + key + '&a=1')).status, 200);
  assert.equal(urls[0], '/api/x?api_key=' + key + '&a=1');
});

test('a revoked key fails on the next request', async (t) => {
  const { gw, auth, events } = await setup(t, [{ authenticate: { methods: [{ 'api-key': {} }] } }]);
  const { key, record } = await auth.createKey({ consumer: 'billing' });
  assert.equal((await httpRequest(gw.url + '/api/x', { headers: { 'x-api-key': key } })).status, 200);
  await auth.revokeKey(record.id);
  const res = await httpRequest(gw.url + '/api/x', { headers: { 'x-api-key': key } });
  assert.equal(res.status, 401);
  assert.equal(JSON.parse(res.body).reason, 'revoked_key');
  assert.match(String(res.headers['www-authenticate']), /ApiKey/);
  assert.ok(events.some((e) => e.type === 'key.revoked' && e.data?.key_id === record.id));
  assert.ok(events.some((e) => e.type === 'key.created'));
});

test('a rotated key works during the overlap window and fails after it; the new key works', async (t) => {
  const { gw, auth, events } = await setup(t, [{ authenticate: { methods: [{ 'api-key': {} }] } }]);
  const old = await auth.createKey({ consumer: 'billing' });
  assert.equal((await httpRequest(gw.url + '/api/x', { headers: { 'x-api-key': old.key } })).status, 200);
  const rotated = await auth.rotateKey(old.record.id, 700);
  assert.ok(events.some((e) => e.type === 'key.rotated'));
  assert.equal(
    (await httpRequest(gw.url + '/api/x', { headers: { 'x-api-key': old.key } })).status,
    200,
    'old key inside the overlap',
  );
  assert.equal(
    (await httpRequest(gw.url + '/api/x', { headers: { 'x-api-key': rotated.key } })).status,
    200,
    'new key',
  );
  // The old key's end is a timestamp in its record: wait until it has passed.
  const endsAt = rotated.previous.expiresAt!;
  await new Promise((r) => setTimeout(r, Math.max(0, endsAt - Date.now()) + 20));
  const after = await httpRequest(gw.url + '/api/x', { headers: { 'x-api-key': old.key } });
  assert.equal(after.status, 401);
  assert.equal(JSON.parse(after.body).reason, 'expired_key');
  assert.equal((await httpRequest(gw.url + '/api/x', { headers: { 'x-api-key': rotated.key } })).status, 200);
});

test('repeated failures from one address are throttled with 429 and Retry-After', async (t) => {
  const { gw, auth } = await setup(t, [
    { authenticate: { methods: [{ 'api-key': {} }], failure_limit: { max_failures: 3, window_s: 60 } } },
  ]);
  const { key, record } = await auth.createKey({ consumer: 'billing' });
  await auth.revokeKey(record.id);
  for (let i = 0; i < 3; i++)
    assert.equal((await httpRequest(gw.url + '/api/x', { headers: { 'x-api-key': key } })).status, 401);
  const good = await auth.createKey({ consumer: 'billing' });
  const res = await httpRequest(gw.url + '/api/x', { headers: { 'x-api-key': good.key } });
  assert.equal(res.status, 429);
  assert.ok(Number(res.headers['retry-after']) >= 1);
  assert.equal(JSON.parse(res.body).type, 'https://kycgate.dev/problems/rate-limited');
});

test('IPv6 clients are throttled per /64: rotating addresses inside it gives no fresh budget', async (t) => {
  const { gw, auth } = await setup(
    t,
    [{ authenticate: { methods: [{ 'api-key': {} }], failure_limit: { max_failures: 3, window_s: 60 } } }],
    {
      server: { trusted_proxies: ['127.0.0.1'] },
    },
  );
  const { key, record } = await auth.createKey({ consumer: 'billing' });
  await auth.revokeKey(record.id);
  const good = await auth.createKey({ consumer: 'billing' });
  const from = (client: string, apiKey: string) =>
    httpRequest(gw.url + '/api/x', { headers: { 'x-api-key': apiKey, 'x-forwarded-for': client } });
  for (const client of ['2001:db8:0:7::1', '2001:db8:0:7::2', '2001:db8:0:7:ffff::3'])
    assert.equal((await from(client, key)).status, 401);
  assert.equal((await from('2001:db8:0:7::4', good.key)).status, 429, 'another address of the same /64 is throttled');
  assert.equal((await from('2001:db8:0:8::1', good.key)).status, 200, 'another /64 is not');
  assert.equal((await from('198.51.100.7', good.key)).status, 200, 'IPv4 clients are counted per address');
});

test('mode all: every method must succeed, identities are merged', async (t) => {
  const { gw, auth } = await setup(t, [
    {
      authenticate: {
        mode: 'all',
        methods: [{ 'api-key': {} }, { 'api-key': { header: 'x-second-key', bearer: false } }],
      },
    },
    { authorize: { scopes: { all_of: ['payments:read', 'reports:read'] } } },
  ]);
  const a = await auth.createKey({ consumer: 'billing' });
  const b = await auth.createKey({ consumer: 'reporting' });
  assert.equal(
    (await httpRequest(gw.url + '/api/x', { headers: { 'x-api-key': a.key } })).status,
    401,
    'one of two is not enough',
  );
  const res = await httpRequest(gw.url + '/api/x', { headers: { 'x-api-key': a.key, 'x-second-key': b.key } });
  assert.equal(res.status, 200, 'scopes of both keys are united');
});

test('a method config error names the key path at load time', async () => {
  await assert.rejects(
    startTestGateway({
      routes: [
        {
          name: 'r',
          match: { prefix: '/' },
          policies: [{ authenticate: { methods: [{ 'api-key': { header: 'x', bogus: true } }] } }],
        },
      ],
    }),
    (err: Error) =>
      /routes\[0\]\.policies\[0\]\.authenticate\.methods\[0\]\.api-key: has unknown key "bogus"/.test(err.message),
  );
});

test("consumers declared in config are synced on reload: a key carries its consumer's new scopes", async (t) => {
  const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
  const os = await import('node:os');
  const path = await import('node:path');
  const { stringify } = await import('yaml');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kycgate-consumers-'));
  const file = path.join(dir, 'kycgate.yaml');
  const upstream = await startUpstream((_req, res) => res.end('ok'));
  const config = (scopes: string[]) => ({
    listeners: [{ name: 'main', port: 0 }],
    admin: { port: 0 },
    consumers: { billing: { scopes } },
    upstreams: { app: { targets: [{ url: upstream.url }] } },
    routes: [
      {
        name: 'api',
        match: { prefix: '/api' },
        upstream: 'app',
        policies: [{ authenticate: { methods: [{ 'api-key': {} }] } }, { authorize: { scopes: { all_of: ['b'] } } }],
      },
    ],
  });
  writeFileSync(file, stringify(config(['a'])));
  const gw = await startTestGateway(config(['a']), { file, baseDir: dir, watchConfig: false });
  t.after(async () => {
    await gw.close();
    await upstream.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const { key } = await gw.gateway.services.get<AuthService>('auth').createKey({ consumer: 'billing' });
  assert.equal((await httpRequest(gw.url + '/api/x', { headers: { 'x-api-key': key } })).status, 403);
  writeFileSync(file, stringify(config(['a', 'b'])));
  assert.equal(await gw.gateway.reload('test'), true);
  assert.equal((await httpRequest(gw.url + '/api/x', { headers: { 'x-api-key': key } })).status, 200);
});

test('upstream_headers sends the verified identity; client-sent x-consumer* headers never reach the upstream', async (t) => {
  const { gw, auth, seen } = await setup(t, [
    { authenticate: { methods: [{ 'api-key': {} }], upstream_headers: true } },
  ]);
  const { key } = await auth.createKey({ consumer: 'billing', scopes: ['payments:read'] });
  const res = await httpRequest(gw.url + '/api/x', {
    headers: { 'x-api-key': key, 'x-consumer': 'admin', 'x-consumer-id': 'admin', 'x-auth-method': 'mtls' },
  });
  assert.equal(res.status, 200);
  assert.equal(seen[0]!['x-consumer'], 'billing');
  assert.equal(seen[0]!['x-consumer-scopes'], 'payments:read');
  assert.equal(seen[0]!['x-consumer-groups'], 'finance');
  assert.equal(seen[0]!['x-auth-method'], 'api-key');
  assert.equal(seen[0]!['x-consumer-id'], undefined);
});

test('once a key has been verified, a key with the same id and another secret is still refused', async (t) => {
  const { gw, auth } = await setup(t, [
    { authenticate: { methods: [{ 'api-key': {} }], failure_limit: { enabled: false } } },
  ]);
  const { key } = await auth.createKey({ consumer: 'billing' });
  assert.equal((await httpRequest(gw.url + '/api/x', { headers: { 'x-api-key': key } })).status, 200);
  assert.equal((await httpRequest(gw.url + '/api/x', { headers: { 'x-api-key': key } })).status, 200);
  // Same lookup id, one character of the secret changed: refused whether or not its checksum is checked.
  const at = key.length - 8;
  const other = key.slice(0, at) + (key[at] === 'a' ? 'b' : 'a') + key.slice(at + 1);
  const r = await httpRequest(gw.url + '/api/x', { headers: { 'x-api-key': other } });
  assert.equal(r.status, 401);
  assert.match(JSON.parse(r.body).reason, /^(unknown_key|malformed_key)$/);
  assert.equal((await httpRequest(gw.url + '/api/x', { headers: { 'x-api-key': key } })).status, 200);
});
