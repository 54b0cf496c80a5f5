/** The kyc-gate's rules (CEL over the request and the subject) and where the subject comes from. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { httpRequest, rawRequest, startTestGateway, statusOf } from '../../../testing/harness.js';
import { kycTestbed, postWebhook, eventually } from '../../../testing/kyc-testbed.js';
import type { GatewayEvent } from '../../pipeline/events.js';
const asJson = (body: string) => JSON.parse(body) as Record<string, any>;

test('rules: CEL over method, path, headers, client IP, JSON body and the subject history decide allow, deny, require and reroute', async (t) => {
  const bed = await kycTestbed(t);
  const gw = await startTestGateway(
    bed.config({
      required_claims: [],
      workflow: 'full',
      record_history: ['amount'],
      rules: [
        { name: 'embargo', when: '"x-country" in headers && headers["x-country"] == "KP"', action: 'deny' },
        {
          name: 'public-read',
          when: 'method == "GET" && path.startsWith("/api/public/") && in_cidr(client_ip, "127.0.0.0/8")',
          action: 'allow',
        },
        {
          name: 'large-amount',
          when: 'has(body.amount) && body.amount > 1000',
          action: 'require',
          claims: ['kyc_full'],
        },
        {
          name: 'daily-volume',
          when: 'has(body.amount) && subject.history_sum("amount", "24h") + body.amount > 1500',
          action: 'require',
          claims: ['kyc_full'],
        },
        { name: 'unverified-limited', when: '!subject.verified', action: 'reroute', upstream: 'limited' },
      ],
    }),
  );
  t.after(() => gw.close());
  const decisions: GatewayEvent[] = [];
  gw.gateway.services.events.subscribe({ onEvent: (e) => e.type === 'kyc.decision' && decisions.push(e) });
  const store = gw.gateway.services.get<import('../../store/store.js').Store>('store');
  const post = (amount: unknown, extra: Record<string, string> = {}) =>
    httpRequest(`${gw.url}/api/transfer`, {
      method: 'POST',
      headers: { 'x-user-id': 'ivan', 'content-type': 'application/json', accept: 'application/json', ...extra },
      body: JSON.stringify({ amount }),
    });
  const historyRows = async () =>
    Number((await store.query<{ n: number }>('SELECT COUNT(*) AS n FROM kyc_history'))[0]!.n);
  const lastRule = () => decisions.at(-1)?.data?.rule;

  const small = await post(500);
  assert.equal(small.status, 200);
  assert.equal(asJson(small.body).upstream, 'limited', 'rerouted');
  const jwks = createLocalJWKSet(asJson((await httpRequest(`${gw.url}/.well-known/jwks.json`)).body) as { keys: [] });
  const rerouted = await jwtVerify(asJson(small.body).headers['x-kycgate-assertion'], jwks, { audience: 'limited' });
  assert.equal(
    rerouted.payload.kyc_status,
    'unverified',
    'the assertion names the upstream the request was rerouted to',
  );
  assert.equal(lastRule(), 'unverified-limited');
  assert.ok(await eventually(async () => (await historyRows()) === 1));
  assert.equal((await post(500)).status, 200);
  assert.ok(await eventually(async () => (await historyRows()) === 2));

  const third = await post(600);
  assert.equal(third.status, 403, '500 + 500 + 600 exceeds the daily volume');
  assert.equal(asJson(third.body).type, 'https://kycgate.dev/problems/kyc-required');
  assert.equal(lastRule(), 'daily-volume');
  const large = await post(5000);
  assert.equal(large.status, 403);
  assert.equal(lastRule(), 'large-amount');
  assert.equal(await historyRows(), 2, 'refused requests are not recorded');

  const embargo = await post(10, { 'x-country': 'KP' });
  assert.equal(embargo.status, 403);
  assert.equal(asJson(embargo.body).type, 'https://kycgate.dev/problems/forbidden');
  assert.equal(lastRule(), 'embargo');

  const read = await httpRequest(`${gw.url}/api/public/rates`, { headers: { 'x-user-id': 'ivan' } });
  assert.equal(read.status, 200);
  assert.equal(asJson(read.body).upstream, 'api');
  assert.equal(asJson(read.body).headers['x-kyc-status'], 'pending');
  assert.equal(lastRule(), 'public-read');

  const garbage = await httpRequest(`${gw.url}/api/transfer`, {
    method: 'POST',
    headers: { 'x-user-id': 'ivan', 'content-type': 'text/plain' },
    body: '{"amount": 9000',
  });
  assert.equal(garbage.status, 400, 'a body the rules cannot read does not slip past them');

  const sessionId = bed.provider.sessionOf(decisions.at(-1)!.data!.subject as string)!;
  await postWebhook(gw.url, bed.provider.webhook(sessionId, 'Approved'));
  assert.ok(await eventually(async () => (await post(5000)).status === 200));
  assert.equal(lastRule(), 'large-amount');
  const verifiedSmall = await post(5);
  assert.equal(asJson(verifiedSmall.body).upstream, 'api');
  assert.equal(lastRule(), 'daily-volume', 'the volume rule still matches, and kyc_full satisfies it');
  const read2 = await httpRequest(`${gw.url}/api/other`, { headers: { 'x-user-id': 'ivan' } });
  assert.equal(asJson(read2.body).upstream, 'api');
  assert.equal(lastRule(), 'default');
});

test('subject sources: a header is trusted only when the route says so; a missing subject is 401', async (t) => {
  const bed = await kycTestbed(t);
  const gw = await startTestGateway(
    bed.config(
      { subject: { from: 'header', header: 'x-user-id' } },
      {
        routes: [
          {
            name: 'jwt',
            match: { prefix: '/jwt' },
            upstream: 'api',
            policies: [{ 'kyc-gate': { subject: { from: 'jwt_claim', claim: 'sub' }, required_claims: ['kyc_full'] } }],
          },
        ],
      },
    ),
  );
  t.after(() => gw.close());
  const untrusted = await httpRequest(`${gw.url}/api/x`, { headers: { 'x-user-id': 'mallory' } });
  assert.equal(untrusted.status, 401, 'no authenticated consumer vouches for the header');
  assert.equal(asJson(untrusted.body).type, 'https://kycgate.dev/problems/unauthenticated');
  assert.equal((await httpRequest(`${gw.url}/jwt/x`)).status, 401);
  assert.equal(bed.provider.created, 0);
});

test('subject sources: a user-id header sent twice is ambiguous and refused', async (t) => {
  const bed = await kycTestbed(t);
  const gw = await startTestGateway(bed.config());
  t.after(() => gw.close());
  const raw = await rawRequest(
    gw.port,
    'GET /api/x HTTP/1.1\r\nHost: h\r\nX-User-Id: alice\r\nx-user-id: bob\r\nConnection: close\r\n\r\n',
  );
  assert.equal(statusOf(raw), 401);
  assert.equal(bed.provider.created, 0);
});
