import { test } from 'node:test';
import assert from 'node:assert/strict';
import { httpRequest, startTestGateway, startUpstream } from '../../../testing/harness.js';

async function setup(
  t: { after(fn: () => Promise<void>): void },
  rules: Record<string, unknown>,
  extra: Record<string, unknown> = {},
) {
  const up = await startUpstream((_req, res) => res.end('ok'));
  const gw = await startTestGateway({
    listeners: [
      { name: 'v4', port: 0, address: '127.0.0.1' },
      { name: 'v6', port: 0, address: '::1' },
    ],
    upstreams: { app: { targets: [{ url: up.url }] } },
    routes: [
      { name: 'guarded', match: { prefix: '/api' }, upstream: 'app', policies: [{ 'network-rules': rules }] },
      { name: 'open', match: { prefix: '/open' }, upstream: 'app' },
    ],
    log: { level: 'warn', access: false },
    ...extra,
  });
  t.after(async () => {
    await gw.close();
    await up.close();
  });
  return { up, v4: gw.urlOf('v4'), v6: gw.urlOf('v6') };
}

test('IPv4 and IPv6 allow lists with CIDR ranges: listed clients pass, others get 403 problem+json and never reach the upstream', async (t) => {
  const { up, v4, v6 } = await setup(t, { allow: ['127.0.0.0/8'] });
  assert.equal((await httpRequest(v4 + '/api')).status, 200);
  const refused = await httpRequest(v6 + '/api');
  assert.equal(refused.status, 403);
  assert.equal(refused.headers['content-type'], 'application/problem+json');
  assert.doesNotMatch(refused.body, /::1/);
  assert.equal(up.requests, 1);
  assert.equal((await httpRequest(v6 + '/open')).status, 200, 'other routes are unaffected');
});

test('IPv6 deny by range and by single address; deny wins over allow', async (t) => {
  const { v4, v6 } = await setup(t, { allow: ['127.0.0.1', '::/0'], deny: ['::1/128'] });
  assert.equal((await httpRequest(v6 + '/api')).status, 403);
  assert.equal((await httpRequest(v4 + '/api')).status, 200);
  const ranged = await setup(t, { deny: ['::/64'] });
  assert.equal((await httpRequest(ranged.v6 + '/api')).status, 403);
  assert.equal((await httpRequest(ranged.v4 + '/api')).status, 200);
});

test('behind a trusted proxy the X-Forwarded-For client is checked; from an untrusted peer the header is ignored', async (t) => {
  const trusted = await setup(
    t,
    { deny: ['203.0.113.0/24', '2001:db8::/32'] },
    { server: { trusted_proxies: ['127.0.0.1'] } },
  );
  assert.equal((await httpRequest(trusted.v4 + '/api', { headers: { 'x-forwarded-for': '203.0.113.9' } })).status, 403);
  assert.equal((await httpRequest(trusted.v4 + '/api', { headers: { 'x-forwarded-for': '2001:db8::7' } })).status, 403);
  assert.equal(
    (await httpRequest(trusted.v4 + '/api', { headers: { 'x-forwarded-for': '198.51.100.4' } })).status,
    200,
  );
  // A spoofed left-most hop does not help: the right-most untrusted hop is the client.
  assert.equal(
    (await httpRequest(trusted.v4 + '/api', { headers: { 'x-forwarded-for': '198.51.100.4, 203.0.113.9' } })).status,
    403,
  );
  // ::1 is not a trusted proxy: its X-Forwarded-For is ignored and the peer itself is checked.
  assert.equal((await httpRequest(trusted.v6 + '/api', { headers: { 'x-forwarded-for': '203.0.113.9' } })).status, 200);

  const allowOnly = await setup(t, { allow: ['198.51.100.0/24'] });
  // No trusted proxies: a client cannot claim an allowed address.
  assert.equal(
    (await httpRequest(allowOnly.v4 + '/api', { headers: { 'x-forwarded-for': '198.51.100.4' } })).status,
    403,
  );
});

test('User-Agent allow and deny rules', async (t) => {
  const { v4 } = await setup(t, { user_agents: { deny: ['sqlmap', '^curl/'], require: true } });
  assert.equal((await httpRequest(v4 + '/api', { headers: { 'user-agent': 'sqlmap/1.7' } })).status, 403);
  assert.equal((await httpRequest(v4 + '/api', { headers: { 'user-agent': 'curl/8.0' } })).status, 403);
  assert.equal((await httpRequest(v4 + '/api', { headers: { 'user-agent': 'bank-app/3.2' } })).status, 200);
  assert.equal((await httpRequest(v4 + '/api')).status, 403, 'User-Agent required');
  const allow = await setup(t, { user_agents: { allow: ['^bank-app/'] } });
  assert.equal((await httpRequest(allow.v4 + '/api', { headers: { 'user-agent': 'bank-app/1' } })).status, 200);
  assert.equal((await httpRequest(allow.v4 + '/api', { headers: { 'user-agent': 'other' } })).status, 403);
});

test('methods outside the list get 405 with Allow; bodies of other media types get 415', async (t) => {
  const { up, v4 } = await setup(t, { methods: ['GET', 'POST'], content_types: ['application/json', 'text/*'] });
  const del = await httpRequest(v4 + '/api', { method: 'DELETE' });
  assert.equal(del.status, 405);
  assert.equal(del.headers.allow, 'GET, POST, HEAD');
  assert.equal((await httpRequest(v4 + '/api', { method: 'HEAD' })).status, 200);
  const xml = await httpRequest(v4 + '/api', {
    method: 'POST',
    headers: { 'content-type': 'application/xml' },
    body: '<a/>',
  });
  assert.equal(xml.status, 415);
  assert.equal(JSON.parse(xml.body).type, 'https://kycgate.dev/problems/unsupported-media-type');
  assert.equal(
    (
      await httpRequest(v4 + '/api', {
        method: 'POST',
        headers: { 'content-type': 'application/json; charset=utf-8' },
        body: '{}',
      })
    ).status,
    200,
  );
  assert.equal(
    (await httpRequest(v4 + '/api', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x' })).status,
    200,
  );
  assert.equal(up.requests, 3);
});

test('invalid ranges and regular expressions are refused when the config is compiled', async () => {
  const { networkRulesPolicy } = await import('./network-rules.js');
  const base = {
    allow: [],
    deny: [],
    user_agents: { allow: [], deny: [], require: false },
    methods: [],
    content_types: [],
  };
  const setup = { services: { events: undefined } } as never;
  assert.throws(() => networkRulesPolicy.create({ ...base, allow: ['10.0.0.0/33'] }, setup), /invalid prefix/);
  assert.throws(() => networkRulesPolicy.create({ ...base, deny: ['not-an-ip'] }, setup), /not an IP/);
  assert.throws(
    () => networkRulesPolicy.create({ ...base, user_agents: { allow: ['('], deny: [], require: false } }, setup),
    /regular expression/,
  );
});

test('an IPv6 trusted-proxy range never makes IPv4 peers trusted', async (t) => {
  // A single node:net BlockList matches IPv4 addresses against ::/0: the peer 127.0.0.1 must stay untrusted here.
  const gw = await setup(t, { deny: ['203.0.113.0/24'] }, { server: { trusted_proxies: ['::/0'] } });
  assert.equal(
    (await httpRequest(gw.v4 + '/api', { headers: { 'x-forwarded-for': '203.0.113.9' } })).status,
    200,
    'the IPv4 peer is checked, not its header',
  );
  assert.equal(
    (await httpRequest(gw.v6 + '/api', { headers: { 'x-forwarded-for': '203.0.113.9' } })).status,
    403,
    'the IPv6 peer is trusted',
  );
});

test('trusted proxies and front proxies with a malformed prefix are refused, never read as /0', async () => {
  for (const entry of ['10.0.0.0/', '10.0.0.0/0x8', '10.0.0.0/ 8', '10.0.0.0/33']) {
    await assert.rejects(
      startTestGateway({
        server: { trusted_proxies: [entry] },
        routes: [{ name: 'r', match: { prefix: '/' }, policies: [{ 'static-response': {} }] }],
      }),
      /trusted_proxies/,
      entry,
    );
    await assert.rejects(
      startTestGateway({
        listeners: [{ name: 'decide', port: 0, decision: { front_proxies: [entry] } }],
        routes: [{ name: 'r', match: { prefix: '/' }, policies: [{ 'static-response': {} }] }],
      }),
      /front_proxies/,
      entry,
    );
  }
});

test('X-Forwarded-For hops with ports are read as their address; a malformed hop never becomes the client address', async (t) => {
  const gw = await setup(
    t,
    { deny: ['203.0.113.0/24', '2001:db8::/32', '127.0.0.1'] },
    { server: { trusted_proxies: ['127.0.0.1'] } },
  );
  assert.equal((await httpRequest(gw.v4 + '/api', { headers: { 'x-forwarded-for': '203.0.113.9:1234' } })).status, 403);
  assert.equal(
    (await httpRequest(gw.v4 + '/api', { headers: { 'x-forwarded-for': '[2001:db8::7]:443' } })).status,
    403,
  );
  assert.equal((await httpRequest(gw.v4 + '/api', { headers: { 'x-forwarded-for': '198.51.100.4:80' } })).status, 200);
  // Not an address: the trusted peer itself (denied here) is what the rules check, not the string "unknown".
  assert.equal((await httpRequest(gw.v4 + '/api', { headers: { 'x-forwarded-for': 'unknown' } })).status, 403);
  assert.equal(
    (await httpRequest(gw.v4 + '/api', { headers: { 'x-forwarded-for': '198.51.100.4, garbage' } })).status,
    403,
  );
});
