/**
 * The KYC gate end to end: real gateway, real test provider over HTTP, real webhooks, real SQLite store.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { httpRequest, rawRequest, startTestGateway, statusOf } from '../../../testing/harness.js';
import { kycTestbed, postWebhook, eventually } from '../../../testing/kyc-testbed.js';
import type { GatewayEvent } from '../../pipeline/events.js';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';

const asJson = (body: string) => JSON.parse(body) as Record<string, any>;

test('an unverified user is challenged once, and passes with signed KYC context as soon as the provider approves', async (t) => {
  const bed = await kycTestbed(t);
  const gw = await startTestGateway(bed.config());
  t.after(() => gw.close());
  const as = (user: string, extra: Record<string, string> = {}) => ({
    headers: { 'x-user-id': user, accept: 'application/json', ...extra },
  });

  const first = await httpRequest(`${gw.url}/api/orders`, as('alice'));
  assert.equal(first.status, 403);
  assert.equal(first.headers['content-type'], 'application/problem+json');
  const challenge = asJson(first.body);
  assert.equal(challenge.type, 'https://kycgate.dev/problems/kyc-required');
  assert.deepEqual(challenge.missing_claims, ['kyc_full']);
  assert.match(challenge.verification_url, /\/verify\//);
  assert.equal(bed.provider.created, 1);
  assert.equal(bed.upstream.requests, 0, 'nothing reaches the upstream before verification');
  const session = bed.provider.sessions.get(challenge.session_id)!;
  assert.match(session.vendorData, /^sub_[A-Za-z0-9_-]{43}$/, 'the provider receives a pseudonym');
  assert.ok(!session.vendorData.includes('alice'));

  const browser = await httpRequest(`${gw.url}/api/orders`, {
    headers: { 'x-user-id': 'alice', accept: 'text/html,application/xhtml+xml' },
  });
  assert.equal(browser.status, 303);
  assert.equal(browser.headers.location, challenge.verification_url);
  assert.equal(bed.provider.created, 1, 'the unfinished session is reused');

  const hook = await postWebhook(gw.url, bed.provider.webhook(challenge.session_id, 'Approved'));
  assert.equal(hook.status, 200);
  const approvedAt = Date.now();
  assert.ok(
    await eventually(async () => (await httpRequest(`${gw.url}/api/orders`, as('alice'))).status === 200, 1000),
    'approval visible within 1 s',
  );
  assert.ok(Date.now() - approvedAt < 1000);

  const passed = await httpRequest(
    `${gw.url}/api/orders`,
    as('alice', {
      'x-kyc-status': 'forged',
      'x-kyc-claims': 'admin',
      'x-kycgate-assertion': 'forged',
      'x-subject-id': 'someone',
    }),
  );
  assert.equal(passed.status, 200);
  const seen = asJson(passed.body).headers as Record<string, string>;
  assert.equal(seen['x-kyc-status'], 'verified');
  assert.equal(seen['x-kyc-claims'], 'kyc_basic,kyc_full', 'aml_clear needs facts.aml == "clear"');
  assert.equal(seen['x-subject-id'], session.vendorData);

  const jwks = await httpRequest(`${gw.url}/.well-known/jwks.json`);
  assert.equal(jwks.status, 200);
  const keys = createLocalJWKSet(asJson(jwks.body) as { keys: [] });
  const { payload, protectedHeader } = await jwtVerify(seen['x-kycgate-assertion']!, keys, {
    audience: 'api',
    issuer: 'kycgate',
  });
  assert.equal(protectedHeader.alg, 'ES256');
  assert.equal(payload.sub, session.vendorData);
  assert.deepEqual(payload.kyc_claims, ['kyc_basic', 'kyc_full']);
  assert.equal(payload.kyc_status, 'verified');
  assert.equal(payload.exp! - payload.iat!, 60);
  await assert.rejects(
    jwtVerify(seen['x-kycgate-assertion']!, keys, { audience: 'limited' }),
    'the assertion is bound to its upstream',
  );

  const again = asJson((await httpRequest(`${gw.url}/api/orders`, as('alice'))).body).headers as Record<string, string>;
  assert.equal(
    again['x-kycgate-assertion'],
    seen['x-kycgate-assertion'],
    'the signed assertion is reused, not signed per request',
  );
  assert.equal(bed.provider.created, 1);
});

test('200 concurrent first requests of one unverified user create exactly one provider session', async (t) => {
  const bed = await kycTestbed(t);
  bed.provider.createDelayMs = 150;
  const gw = await startTestGateway(bed.config());
  t.after(() => gw.close());
  const answers = await Promise.all(
    Array.from({ length: 200 }, () =>
      httpRequest(`${gw.url}/api/transfer`, { headers: { 'x-user-id': 'bob', accept: 'application/json' } }),
    ),
  );
  assert.equal(bed.provider.created, 1);
  const ids = new Set(
    answers.map((a) => {
      assert.equal(a.status, 403);
      return asJson(a.body).session_id as string;
    }),
  );
  assert.equal(ids.size, 1, 'every request is offered the same session');
});

test('webhooks: refused without a valid fresh signature; idempotent by event id; an older status never overwrites a newer one', async (t) => {
  const bed = await kycTestbed(t);
  const gw = await startTestGateway(bed.config());
  t.after(() => gw.close());
  const events: GatewayEvent[] = [];
  gw.gateway.services.events.subscribe({ onEvent: (e) => events.push(e) });
  const as = { headers: { 'x-user-id': 'carol', accept: 'application/json' } };
  const sessionId = asJson((await httpRequest(`${gw.url}/api/x`, as)).body).session_id as string;

  const forged = bed.provider.webhook(sessionId, 'Approved');
  const tampered = await postWebhook(gw.url, {
    body: forged.body.replace('Approved', 'Approved '),
    headers: forged.headers,
  });
  assert.equal(tampered.status, 401);
  assert.equal(asJson(tampered.body).type, 'https://kycgate.dev/problems/webhook-signature-invalid');
  const unsigned = await postWebhook(gw.url, { body: forged.body, headers: { 'content-type': 'application/json' } });
  assert.equal(unsigned.status, 401);
  const stale = await postWebhook(
    gw.url,
    bed.provider.webhook(sessionId, 'Approved', { timestamp: Math.floor(Date.now() / 1000) - 3600 }),
  );
  assert.equal(stale.status, 401);
  assert.equal(asJson(stale.body).detail, 'The webhook timestamp is outside the accepted window.');
  assert.deepEqual(
    events.filter((e) => e.type === 'webhook.refused').map((e) => e.outcome),
    ['invalid_signature', 'missing_signature', 'stale'],
  );
  assert.equal((await postWebhook(gw.url, bed.provider.webhook(sessionId, 'Approved'), 'nosuch')).status, 404);
  assert.equal((await httpRequest(`${gw.url}/api/x`, as)).status, 403, 'refused webhooks changed nothing');

  const now = Math.floor(Date.now() / 1000);
  const approved = bed.provider.webhook(sessionId, 'Approved', { eventId: 'evt-approved', timestamp: now });
  assert.equal((await postWebhook(gw.url, approved)).status, 200);
  assert.ok(await eventually(async () => (await httpRequest(`${gw.url}/api/x`, as)).status === 200));
  const duplicate = await postWebhook(gw.url, approved);
  assert.equal(duplicate.status, 200);
  assert.equal(asJson(duplicate.body).status, 'duplicate');

  // Delivered late: an "In Progress" from before the approval.
  const older = await postWebhook(
    gw.url,
    bed.provider.webhook(sessionId, 'In Progress', { eventId: 'evt-older', timestamp: now - 20 }),
  );
  assert.equal(older.status, 200);
  const store = gw.gateway.services.get<import('../../store/store.js').Store>('store');
  assert.ok(
    await eventually(
      async () =>
        (
          await store.query<{ outcome: string }>("SELECT outcome FROM kyc_webhook_events WHERE event_id = 'evt-older'")
        )[0]?.outcome === 'stale',
    ),
  );
  assert.equal((await httpRequest(`${gw.url}/api/x`, as)).status, 200, 'still approved');
  // Retried late: stamped again when delivered, but the event itself happened before the approval.
  const retried = await postWebhook(
    gw.url,
    bed.provider.webhook(sessionId, 'In Progress', { eventId: 'evt-retried', timestamp: now + 5, createdAt: now - 20 }),
  );
  assert.equal(retried.status, 200);
  assert.ok(
    await eventually(
      async () =>
        (
          await store.query<{ outcome: string }>(
            "SELECT outcome FROM kyc_webhook_events WHERE event_id = 'evt-retried'",
          )
        )[0]?.outcome === 'stale',
    ),
  );
  assert.equal(
    (await httpRequest(`${gw.url}/api/x`, as)).status,
    200,
    'a retried older event does not undo the approval',
  );

  // Unknown session: kept for reconciliation, acknowledged.
  const stray = await postWebhook(
    gw.url,
    bed.provider.webhook('no-such-session', 'Approved', { eventId: 'evt-stray' }),
  );
  assert.equal(stray.status, 200);
  assert.ok(
    await eventually(
      async () =>
        (
          await store.query<{ outcome: string }>("SELECT outcome FROM kyc_webhook_events WHERE event_id = 'evt-stray'")
        )[0]?.outcome === 'unknown_session',
    ),
  );
  const unmatched = asJson((await httpRequest(`${gw.adminUrl}/kyc/unmatched-webhooks`)).body).events as Array<
    Record<string, unknown>
  >;
  assert.deepEqual(
    unmatched.map((e) => [e.provider, e.event_id, e.session_id]),
    [['testprov', 'evt-stray', 'no-such-session']],
    'listed for an operator on the admin listener',
  );

  // A newer expiry takes the claims away at once.
  assert.equal(
    (
      await postWebhook(
        gw.url,
        bed.provider.webhook(sessionId, 'Kyc Expired', { eventId: 'evt-expired', timestamp: now + 1 }),
      )
    ).status,
    200,
  );
  assert.ok(await eventually(async () => (await httpRequest(`${gw.url}/api/x`, as)).status === 403, 1000));
  const stored = await store.query<Record<string, unknown>>('SELECT * FROM kyc_verifications');
  assert.equal(stored.length, 1);
  assert.ok(!JSON.stringify(stored).includes('carol'), 'the raw user id is never stored');
  assert.ok(!JSON.stringify(stored).includes('/verify/'), 'no session link in clear');
});

test('in review answers kyc-pending with Retry-After; declined answers kyc-denied', async (t) => {
  const bed = await kycTestbed(t);
  const gw = await startTestGateway(bed.config({ pending_retry_after_seconds: 45 }));
  t.after(() => gw.close());
  const as = (user: string) => ({ headers: { 'x-user-id': user, accept: 'application/json' } });
  const dan = asJson((await httpRequest(`${gw.url}/api/x`, as('dan'))).body).session_id as string;
  const eve = asJson((await httpRequest(`${gw.url}/api/x`, as('eve'))).body).session_id as string;
  await postWebhook(gw.url, bed.provider.webhook(dan, 'In Review'));
  await postWebhook(gw.url, bed.provider.webhook(eve, 'Declined'));
  let pending: Awaited<ReturnType<typeof httpRequest>> | undefined;
  assert.ok(
    await eventually(
      async () =>
        asJson((pending = await httpRequest(`${gw.url}/api/x`, as('dan'))).body).type ===
        'https://kycgate.dev/problems/kyc-pending',
    ),
  );
  assert.equal(pending!.status, 403);
  assert.equal(pending!.headers['retry-after'], '45');
  let denied: Awaited<ReturnType<typeof httpRequest>> | undefined;
  assert.ok(
    await eventually(
      async () =>
        asJson((denied = await httpRequest(`${gw.url}/api/x`, as('eve'))).body).type ===
        'https://kycgate.dev/problems/kyc-denied',
    ),
  );
  assert.equal(denied!.status, 403);
  assert.equal(bed.provider.created, 2, 'no new session for a reviewed or declined verification');
});

test('a declined verification that is resubmitted (pending again, its link forgotten) is offered a new session at once, not a 503', async (t) => {
  const bed = await kycTestbed(t);
  const gw = await startTestGateway(bed.config());
  t.after(() => gw.close());
  const as = { headers: { 'x-user-id': 'ivan', accept: 'application/json' } };
  const first = asJson((await httpRequest(`${gw.url}/api/x`, as)).body).session_id as string;
  const now = Math.floor(Date.now() / 1000);
  await postWebhook(gw.url, bed.provider.webhook(first, 'Declined', { eventId: 'evt-declined', timestamp: now }));
  assert.ok(
    await eventually(
      async () =>
        asJson((await httpRequest(`${gw.url}/api/x`, as)).body).type === 'https://kycgate.dev/problems/kyc-denied',
    ),
  );
  await postWebhook(
    gw.url,
    bed.provider.webhook(first, 'Resubmitted', { eventId: 'evt-resubmitted', timestamp: now + 1 }),
  );
  const store = gw.gateway.services.get<import('../../store/store.js').Store>('store');
  assert.ok(
    await eventually(
      async () =>
        (
          await store.query<{ outcome: string }>(
            "SELECT outcome FROM kyc_webhook_events WHERE event_id = 'evt-resubmitted'",
          )
        )[0]?.outcome === 'applied',
    ),
  );

  const started = Date.now();
  const next = await httpRequest(`${gw.url}/api/x`, as);
  assert.ok(Date.now() - started < 2000, `answered in ${Date.now() - started} ms`);
  assert.equal(next.status, 403);
  const challenge = asJson(next.body);
  assert.equal(challenge.type, 'https://kycgate.dev/problems/kyc-required');
  assert.match(challenge.verification_url, /\/verify\//);
  assert.notEqual(challenge.session_id, first);
  assert.equal(bed.provider.created, 2);
});

test(
  'provider outage: verified users keep passing, new challenges get 503 with Retry-After, a webhook ' +
    'received meanwhile applies once the provider is back',
  async (t) => {
    const bed = await kycTestbed(t);
    const gw = await startTestGateway(bed.config());
    t.after(() => gw.close());
    const as = (user: string) => ({ headers: { 'x-user-id': user, accept: 'application/json' } });
    const frank = asJson((await httpRequest(`${gw.url}/api/x`, as('frank'))).body).session_id as string;
    const grace = asJson((await httpRequest(`${gw.url}/api/x`, as('grace'))).body).session_id as string;
    await postWebhook(gw.url, bed.provider.webhook(frank, 'Approved'));
    assert.ok(await eventually(async () => (await httpRequest(`${gw.url}/api/x`, as('frank'))).status === 200));

    bed.provider.failWith = 503;
    assert.equal((await httpRequest(`${gw.url}/api/x`, as('frank'))).status, 200, 'verified users are unaffected');
    const newcomer = await httpRequest(`${gw.url}/api/x`, as('heidi'));
    assert.equal(newcomer.status, 503);
    assert.equal(asJson(newcomer.body).type, 'https://kycgate.dev/problems/kyc-provider-unavailable');
    assert.ok(Number(newcomer.headers['retry-after']) >= 1);
    // Only the status is in this webhook: the decision must be fetched from the (down) provider.
    const hook = await postWebhook(gw.url, bed.provider.webhook(grace, 'Approved', { withDecision: false }));
    assert.equal(hook.status, 200, 'stored and acknowledged even though it cannot be applied yet');
    assert.equal((await httpRequest(`${gw.url}/api/x`, as('grace'))).status, 403);

    bed.provider.failWith = undefined;
    assert.ok(
      await eventually(async () => (await httpRequest(`${gw.url}/api/x`, as('grace'))).status === 200, 4000, 100),
      'applied by reconciliation',
    );
    const retry = await httpRequest(`${gw.url}/api/x`, as('heidi'));
    assert.equal(retry.status, 403);
    assert.equal(asJson(retry.body).type, 'https://kycgate.dev/problems/kyc-required');
  },
);

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

test('config errors name the problem: refused at start, and refused on reload while the running config keeps serving', async (t) => {
  const bed = await kycTestbed(t);
  const startFile = path.join(bed.dir, 'bad-start.yaml');
  writeFileSync(
    startFile,
    stringify({
      ...bed.config({ workflow: 'nope' }),
      listeners: [{ name: 'main', port: 0 }],
      admin: { enabled: false },
    }),
  );
  const run = await runCli(['start', '--config', startFile], { KYCGATE_DATA_DIR: path.join(bed.dir, 'data-cli') });
  assert.equal(run.code, 1);
  assert.match(run.stderr, /kyc-gate\.workflow: no workflow named "nope"/);

  const { gw, rewrite } = await reloadableGateway(t, bed);
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [bed.config({ required_claims: ['age_over_21'] }), /no workflow grants every required claim \(age_over_21\)/],
    [bed.config({ rules: [{ name: 'r', when: 'body.amount >', action: 'allow' }] }), /rules\[0\] \(r\)\.when/],
    [
      bed.config({ rules: [{ name: 'r', when: 'subject.history_sum("amount", "1y") > 1.0', action: 'allow' }] }),
      /window "1y"/,
    ],
    [bed.config({ rules: [{ name: 'r', action: 'reroute', upstream: 'nowhere' }] }), /no upstream named "nowhere"/],
    [
      bed.config(
        {},
        {
          kyc: {
            workflows: { full: { provider: 'testprov', workflow_id: 'x', claims: { kyc_full: 'facts.score +' } } },
          },
        },
      ),
      /kyc\.workflows\.full\.claims\.kyc_full/,
    ],
  ];
  for (const [config, expected] of cases) {
    rewrite(config);
    assert.equal(await gw.gateway.reload('test'), false);
    const refused = gw.logs
      .filter((l) => l.msg === 'configuration refused; the previous configuration keeps serving')
      .at(-1);
    assert.match(((refused?.problems ?? []) as string[]).join('\n'), expected);
  }
  const still = await httpRequest(`${gw.url}/api/x`, { headers: { 'x-user-id': 'judy', accept: 'application/json' } });
  assert.equal(asJson(still.body).type, 'https://kycgate.dev/problems/kyc-required');
});

/**
 * A gateway started on `bed`'s config that also reads it from a file, so a test can rewrite the file and reload;
 * `rewrite` writes a config there (listening on an ephemeral port, admin off).
 */
async function reloadableGateway(t: TestContext, bed: Awaited<ReturnType<typeof kycTestbed>>) {
  const file = path.join(bed.dir, 'gateway.yaml');
  const rewrite = (config: Record<string, unknown>) =>
    writeFileSync(file, stringify({ ...config, listeners: [{ name: 'main', port: 0 }], admin: { enabled: false } }));
  rewrite(bed.config());
  const gw = await startTestGateway(bed.config(), { file, baseDir: bed.dir, watchConfig: false });
  t.after(() => gw.close());
  return { gw, rewrite };
}

/** `kycgate <command> --plugin <the test provider type> ...rest`: the child knows the `test` provider type. */
function pluginArgs(args: string[]): string[] {
  return [args[0]!, '--plugin', path.resolve('dist/testing/kyc-test-provider-plugin.js'), ...args.slice(1)];
}

function runCli(args: string[], env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['dist/src/cli/main.js', ...pluginArgs(args)], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 15000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

test('a provider refusing the session request (bad workflow id) answers 502 without detail, and is logged', async (t) => {
  const bed = await kycTestbed(t);
  const gw = await startTestGateway(
    bed.config(
      {},
      {
        kyc: {
          workflows: { full: { provider: 'testprov', workflow_id: 'rejected-workflow', claims: { kyc_full: 'true' } } },
        },
      },
    ),
  );
  t.after(() => gw.close());
  const res = await httpRequest(`${gw.url}/api/x`, { headers: { 'x-user-id': 'quinn', accept: 'application/json' } });
  assert.equal(res.status, 502);
  assert.equal(asJson(res.body).type, 'https://kycgate.dev/problems/bad-gateway');
  assert.ok(!res.body.includes('unknown workflow'), "the provider's own text stays out of the answer");
  assert.ok(gw.logs.some((l) => l.msg === 'verification session could not be created'));
});

test('reload: a changed claims mapping applies to new decisions, and an unchanged provider is kept', async (t) => {
  const bed = await kycTestbed(t);
  const { gw, rewrite } = await reloadableGateway(t, bed);
  const kyc = gw.gateway.services.get<import('../../kyc/service.js').KycService>('kyc');
  const providerBefore = kyc.setup.providers.get('testprov');
  rewrite(
    bed.config(
      {},
      {
        kyc: {
          workflows: {
            full: {
              provider: 'testprov',
              workflow_id: 'wf-full',
              claims: { kyc_full: 'has(facts.aml) && facts.aml == "clear"' },
            },
          },
        },
      },
    ),
  );
  assert.equal(await gw.gateway.reload('test'), true);
  assert.equal(kyc.setup.providers.get('testprov'), providerBefore);
  const as = (user: string) => ({ headers: { 'x-user-id': user, accept: 'application/json' } });
  const rita = asJson((await httpRequest(`${gw.url}/api/x`, as('rita'))).body).session_id as string;
  const sam = asJson((await httpRequest(`${gw.url}/api/x`, as('sam'))).body).session_id as string;
  await postWebhook(gw.url, bed.provider.webhook(rita, 'Approved', { facts: { aml: 'hit' } }));
  await postWebhook(gw.url, bed.provider.webhook(sam, 'Approved', { facts: { aml: 'clear' } }));
  assert.ok(await eventually(async () => (await httpRequest(`${gw.url}/api/x`, as('sam'))).status === 200));
  const rejected = await httpRequest(`${gw.url}/api/x`, as('rita'));
  assert.equal(
    asJson(rejected.body).type,
    'https://kycgate.dev/problems/kyc-denied',
    'approved, but the new mapping does not grant kyc_full',
  );
});

test('reload: cached verification state and pseudonyms survive a reload that does not change them', async (t) => {
  const bed = await kycTestbed(t);
  const { gw, rewrite } = await reloadableGateway(t, bed);
  const kyc = gw.gateway.services.get<import('../../kyc/service.js').KycService>('kyc');
  const as = { headers: { 'x-user-id': 'tess', accept: 'application/json' } };
  const session = asJson((await httpRequest(`${gw.url}/api/x`, as)).body).session_id as string;
  await postWebhook(gw.url, bed.provider.webhook(session, 'Approved'));
  assert.ok(await eventually(async () => (await httpRequest(`${gw.url}/api/x`, as)).status === 200));
  const pseudonymiser = kyc.setup.pseudonymiser;
  const cached = kyc.cache.size;
  assert.ok(cached > 0);

  // A reload that only changes logging: the subject's entry and the pseudonym memo are kept.
  rewrite({ ...bed.config(), log: { level: 'warn', access: false } });
  assert.equal(await gw.gateway.reload('test'), true);
  assert.equal(kyc.cache.size, cached, 'the cached verification state was kept');
  assert.equal(kyc.setup.pseudonymiser, pseudonymiser);
  assert.equal((await httpRequest(`${gw.url}/api/x`, as)).status, 200);

  // Changed cache lifetimes: entries built with the old ones are dropped.
  const config = bed.config() as { kyc: Record<string, unknown> };
  rewrite({ ...config, kyc: { ...config.kyc, cache: { ttl_seconds: 120 } } });
  assert.equal(await gw.gateway.reload('test'), true);
  assert.equal(kyc.cache.size, 0);
  assert.equal((await httpRequest(`${gw.url}/api/x`, as)).status, 200, 'reloaded from the store');
});
