/**
 * The KYC gate end to end: real gateway, real test provider over HTTP, real webhooks, real SQLite store.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { httpRequest, startTestGateway } from '../../../testing/harness.js';
import { kycTestbed, postWebhook, eventually } from '../../../testing/kyc-testbed.js';
import type { GatewayEvent } from '../../pipeline/events.js';

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
