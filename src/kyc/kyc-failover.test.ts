/**
 * Several providers behind one workflow: a routing rule sends some requests to another provider; with the primary
 * killed, new sessions go to the fallback (at once after the primary's breaker opens) while subjects already
 * verified keep passing; the decision is recorded with the provider that made it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { httpRequest, startTestGateway } from '../../testing/harness.js';
import { eventually, kycTestbed } from '../../testing/kyc-testbed.js';
import type { Store } from '../store/store.js';
import type { KycService } from './service.js';
import type { EmbeddedSandboxProvider } from '../providers/index.js';
import type { GatewayEvent } from '../pipeline/events.js';

async function approve(verificationUrl: string): Promise<void> {
  const page = await httpRequest(verificationUrl);
  assert.equal(page.status, 200, page.body);
  const form = new URLSearchParams({
    first_name: 'Ana',
    last_name: 'Ruiz',
    date_of_birth: '1990-05-17',
    decision: 'approved',
  });
  const done = await httpRequest(verificationUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: form.toString(),
  });
  assert.equal(done.status, 200, done.body);
}

test('failover: routed by CEL, primary killed, new sessions at the fallback, verified users unaffected, provider recorded', async (t) => {
  const bed = await kycTestbed(t);
  const gw = await startTestGateway(
    bed.config(
      {},
      {
        kyc: {
          providers: {
            primary: { type: 'sandbox', breaker: { failure_threshold: 1, cooldown_ms: 600_000 } },
            backup: { type: 'sandbox', dialect: 'veriff' },
          },
          workflows: {
            full: {
              provider: 'primary',
              fallbacks: ['backup'],
              routing: [{ when: 'request.headers["x-country"] == "DE"', provider: 'backup' }],
              workflow_id: '0b6f2f7e-3c1d-4a5b-9e8f-7a6b5c4d3e2f',
              claims: { kyc_full: 'true', by_backup: 'facts.provider == "veriff"' },
            },
          },
        },
      },
    ),
  );
  t.after(() => gw.close());
  const kyc = gw.gateway.services.get<KycService>('kyc');
  const store = gw.gateway.services.get<Store>('store');
  const primary = kyc.setup.providers.get('primary') as EmbeddedSandboxProvider;
  const backup = kyc.setup.providers.get('backup') as EmbeddedSandboxProvider;
  const failovers: GatewayEvent[] = [];
  gw.gateway.services.events.on('kyc.provider.failover', (e) => failovers.push(e));
  const as = (user: string, extra: Record<string, string> = {}) => ({
    headers: { 'x-user-id': user, accept: 'application/json', ...extra },
  });
  const challenge = async (user: string, extra: Record<string, string> = {}) => {
    const answer = await httpRequest(`${gw.url}/api/x`, as(user, extra));
    assert.equal(answer.status, 403, answer.body);
    return JSON.parse(answer.body) as { verification_url: string; session_id: string };
  };
  const providerOf = async (sessionId: string) =>
    (
      await store.query<{ provider: string }>('SELECT provider FROM kyc_verifications WHERE session_id = $1', [
        sessionId,
      ])
    )[0]?.provider;

  // Before the outage: the primary verifies Ana; a routing rule sends German traffic to the backup.
  const ana = await challenge('ana');
  assert.ok(ana.verification_url.startsWith(primary.sandbox.url + '/'), ana.verification_url);
  await approve(ana.verification_url);
  assert.ok(await eventually(async () => (await httpRequest(`${gw.url}/api/x`, as('ana'))).status === 200, 10_000));
  const anaSubject = (
    JSON.parse((await httpRequest(`${gw.url}/api/x`, as('ana'))).body) as { headers: Record<string, string> }
  ).headers['x-subject-id']!;
  const carl = await challenge('carl', { 'x-country': 'DE' });
  assert.ok(carl.verification_url.startsWith(backup.sandbox.url + '/'), 'routed to the backup');
  assert.equal(await providerOf(carl.session_id), 'backup');

  // The primary dies.
  await primary.sandbox.close();
  const started = Date.now();
  const ben = await challenge('ben');
  assert.ok(
    ben.verification_url.startsWith(backup.sandbox.url + '/'),
    `new session at the fallback: ${ben.verification_url}`,
  );
  assert.equal(await providerOf(ben.session_id), 'backup');
  assert.equal(primary.health.state, 'open', "the primary's breaker opened");
  assert.equal(failovers[0]?.outcome, 'unreachable');
  const firstFailoverMs = Date.now() - started;

  // With the breaker open the primary is not even tried.
  const dora = await challenge('dora');
  assert.ok(dora.verification_url.startsWith(backup.sandbox.url + '/'));
  assert.equal(failovers.at(-1)?.outcome, 'breaker_open');

  // A verified user is not affected: claims come from the store, not from any provider.
  kyc.invalidate(anaSubject);
  assert.equal(kyc.cache.peek(anaSubject, Date.now()), undefined, 'read again from the store');
  const anaAgain = await httpRequest(`${gw.url}/api/x`, as('ana'));
  assert.equal(anaAgain.status, 200, anaAgain.body);

  // Ben verifies at the fallback; the decision is recorded with the provider that made it.
  await approve(ben.verification_url);
  assert.ok(await eventually(async () => (await httpRequest(`${gw.url}/api/x`, as('ben'))).status === 200, 10_000));
  const echoed = JSON.parse((await httpRequest(`${gw.url}/api/x`, as('ben'))).body) as {
    headers: Record<string, string>;
  };
  assert.match(echoed.headers['x-kyc-claims']!, /by_backup/);
  const [row] = await store.query<{ provider: string; state: string }>(
    'SELECT provider, state FROM kyc_verifications WHERE session_id = $1',
    [ben.session_id],
  );
  assert.deepEqual({ ...row }, { provider: 'backup', state: 'approved' });
  console.log(`first session after the primary died: ${firstFailoverMs} ms`);
});
