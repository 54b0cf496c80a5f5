/**
 * Step-up instead of all-or-nothing: a verified user may transfer small amounts; above 1000 a rule demands the
 * `high` assurance level (document plus liveness, its own workflow). An API client gets 401 with
 * `WWW-Authenticate: Bearer error="insufficient_user_authentication", acr_values="high"` (RFC 9470 style) and the
 * URL of the liveness verification, a browser a redirect to it; once done, the request passes and the upstream
 * assertion carries the level reached (`acr`). The age gate releases the over-age claim, never the birth date.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import { httpRequest, startTestGateway } from '../../../testing/harness.js';
import { eventually, kycTestbed, postWebhook } from '../../../testing/kyc-testbed.js';

test('step-up: 401 insufficient_user_authentication with acr_values, liveness verification, then acr "high"', async (t) => {
  const bed = await kycTestbed(t);
  const gw = await startTestGateway(
    bed.config(
      {
        workflow: 'full',
        rules: [
          {
            name: 'large-transfer',
            when: 'has(body.amount) && body.amount > 1000',
            action: 'require',
            level: 'high',
            workflow: 'liveness',
          },
        ],
      },
      {
        kyc: {
          assurance_levels: [
            { name: 'substantial', claims: ['kyc_full'] },
            { name: 'high', claims: ['kyc_full', 'liveness'] },
          ],
          workflows: {
            full: {
              provider: 'testprov',
              workflow_id: 'wf-full',
              claims: { kyc_full: 'true', age_over_18: 'age(personal.date_of_birth) >= 18' },
            },
            liveness: {
              provider: 'testprov',
              workflow_id: 'wf-liveness',
              claims: { kyc_full: 'true', liveness: 'has(facts.liveness) && facts.liveness == "Approved"' },
            },
          },
        },
      },
    ),
  );
  t.after(() => gw.close());
  const post = (amount: number, accept = 'application/json') =>
    httpRequest(`${gw.url}/api/transfer`, {
      method: 'POST',
      headers: { 'x-user-id': 'ivan', 'content-type': 'application/json', accept },
      body: JSON.stringify({ amount }),
    });
  const assertionOf = (body: string) =>
    decodeJwt((JSON.parse(body) as { headers: Record<string, string> }).headers['x-kycgate-assertion']!);

  // Verified at the substantial level (document only).
  const first = await post(10);
  assert.equal(first.status, 403);
  const basic = (JSON.parse(first.body) as { session_id: string }).session_id;
  const personal = { firstName: 'Ivan', lastName: 'Petrov', dateOfBirth: '1990-04-01' };
  assert.equal((await postWebhook(gw.url, bed.provider.webhook(basic, 'Approved', { personal }))).status, 200);
  assert.ok(await eventually(async () => (await post(10)).status === 200, 5000));
  const small = assertionOf((await post(10)).body);
  assert.equal(small.acr, 'substantial');
  assert.deepEqual(small.kyc_claims, ['age_over_18', 'kyc_full']);
  assert.doesNotMatch(JSON.stringify(small), /1990|Ivan|Petrov/, 'the over-age claim, never the birth date or name');

  // A large transfer needs more: the RFC 9470-style challenge with the liveness verification.
  const big = await post(5000);
  assert.equal(big.status, 401, big.body);
  const www = String(big.headers['www-authenticate']);
  assert.match(www, /^Bearer error="insufficient_user_authentication"/);
  assert.match(www, /acr_values="high"/);
  const challenge = JSON.parse(big.body) as Record<string, unknown>;
  assert.equal(challenge.type, 'https://kycgate.dev/problems/kyc-step-up-required');
  assert.equal(challenge.error, 'insufficient_user_authentication');
  assert.equal(challenge.required_level, 'high');
  assert.equal(challenge.current_level, 'substantial');
  assert.deepEqual(challenge.missing_claims, ['liveness']);
  assert.equal(challenge.workflow, 'liveness');
  const stepSession = challenge.session_id as string;
  assert.equal(bed.provider.sessions.get(stepSession)?.workflowId, 'wf-liveness');
  // A browser is sent to the same verification.
  const browser = await post(5000, 'text/html');
  assert.equal(browser.status, 303);
  assert.equal(browser.headers.location, challenge.verification_url);
  // Small transfers keep working meanwhile.
  assert.equal((await post(10)).status, 200);

  // Liveness done: the large transfer passes at level high.
  const facts = { status: 'Approved', liveness: 'Approved' };
  assert.equal((await postWebhook(gw.url, bed.provider.webhook(stepSession, 'Approved', { facts }))).status, 200);
  assert.ok(await eventually(async () => (await post(5000)).status === 200, 5000));
  assert.equal(assertionOf((await post(5000)).body).acr, 'high');
});
