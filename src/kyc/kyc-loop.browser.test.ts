/**
 * The whole KYC loop as a user lives it, in a real headless Chromium: an API call is refused with a verification
 * URL; a browser hitting the same route is redirected to the sandbox's hosted page; the user clicks Approve; the
 * sandbox's signed webhook flips the status; the same calls now pass, and the upstream sees the gateway's
 * verifiable assertion (and never the client's forged headers).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { startTestGateway, httpRequest } from '../../testing/harness.js';
import { launchBrowser } from '../../testing/browser.js';
import { demoConfig, DEMO_WORKFLOW_ID } from '../demo/config.js';

async function passesWithin(
  url: string,
  headers: Record<string, string>,
  limitMs: number,
): Promise<{ status: number; body: string; elapsed: number }> {
  const started = Date.now();
  for (;;) {
    const answer = await httpRequest(url, { headers });
    if (answer.status === 200 || Date.now() - started > limitMs) return { ...answer, elapsed: Date.now() - started };
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('kyc loop: challenge, hosted sandbox page in Chromium, signed webhook, then the same request passes', async (t) => {
  const browser = await launchBrowser(t);
  if (!browser) return;
  // The built-in demo's KYC setup, on ephemeral ports.
  const demo = demoConfig({ cert: '', key: '' }, {}) as {
    kyc: { providers: { sandbox: Record<string, unknown> } };
    routes: unknown[];
    upstreams: unknown;
  };
  demo.kyc.providers.sandbox.port = 0;
  const gw = await startTestGateway({ kyc: demo.kyc, upstreams: demo.upstreams, routes: demo.routes });
  t.after(() => gw.close());
  const api = gw.url + '/demo/kyc/orders';
  const user = { 'x-user-id': 'alice@example.test', accept: 'application/json' };

  // 1. An API client is told where to send the user.
  const first = await httpRequest(api, { headers: user });
  assert.equal(first.status, 403);
  const challenge = JSON.parse(first.body);
  assert.equal(challenge.type, 'https://kycgate.dev/problems/kyc-required');
  assert.deepEqual(challenge.missing_claims, ['kyc_full']);
  assert.match(challenge.verification_url, /^http:\/\/127\.0\.0\.1:\d+\/verify\//);
  assert.ok(challenge.session_id);

  // 2. A browser on the same route is redirected to the hosted page (the same session: no duplicate).
  const context = await browser.newContext({ extraHTTPHeaders: { 'x-user-id': 'alice@example.test' } });
  const page = await context.newPage();
  await page.goto(api);
  assert.equal(page.url(), challenge.verification_url);
  assert.match((await page.title()) ?? '', /verification/i);

  // 3. The user approves; the sandbox shows the result and sends the signed webhook.
  await Promise.all([page.waitForLoadState('load'), page.getByRole('button', { name: 'Approve' }).click()]);
  assert.equal(await page.getByRole('status').textContent(), 'Verification approved');

  // 4. The status change reaches the gate within a second.
  const passed = await passesWithin(api, { ...user, 'x-kyc-status': 'forged', 'x-kyc-claims': 'everything' }, 5000);
  assert.equal(passed.status, 200, passed.body);
  assert.ok(passed.elapsed < 1000, `visible after ${passed.elapsed} ms`);
  const echoed = JSON.parse(passed.body) as { headers: Record<string, string> };
  assert.equal(echoed.headers['x-kyc-status'], 'verified', 'the forged status never reaches the upstream');
  assert.equal(echoed.headers['x-kyc-claims'], 'kyc_full');
  assert.match(echoed.headers['x-subject-id']!, /^sub_/);
  assert.doesNotMatch(passed.body, /alice@example\.test"?,?\s*"x-subject/, 'the raw user id is not the subject');

  // 5. The upstream can verify the assertion with the gateway's published keys.
  const jwks = createRemoteJWKSet(new URL(gw.url + '/.well-known/jwks.json'));
  const { payload } = await jwtVerify(echoed.headers['x-kycgate-assertion']!, jwks, {
    audience: 'echo',
    issuer: 'kycgate',
  });
  assert.equal(payload.sub, echoed.headers['x-subject-id']);

  // 6. In the browser too, the same URL now shows the upstream's answer.
  const again = await page.goto(api);
  assert.equal(again?.status(), 200);
  assert.ok(DEMO_WORKFLOW_ID);
  await context.close();
});
