/**
 * Dashboard sign-in through OIDC (`admin.api.oidc`) in real Chromium against the issuer stand-in
 * (testing/oidc-issuer.ts: authorization and token endpoints per OIDC Core, PKCE): a user whose group maps to a
 * role signs in with the "Sign in with" button and sees the dashboard with that role; the session cookie is
 * HttpOnly and SameSite=Strict and accepted only with the dashboard's header; sign-out ends it. A user without a
 * role, an answer with another state and an id_token with another nonce are refused with a page saying why, and
 * every sign-in and refusal is on the audit trail. The sign-in form's screenshot goes to $KYCGATE_SCREENSHOT_DIR
 * (docs/ for ADMIN.md), else to a temporary directory.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { httpRequest, startTestGateway } from '../../testing/harness.js';
import { launchBrowser } from '../../testing/browser.js';
import { startIdP } from '../../testing/oidc-issuer.js';
import { freePort } from '../../testing/ports.js';
import type { GatewayEvent } from '../pipeline/events.js';

test('dashboard: sign in through OIDC, mapped role, refusals, sign-out', { timeout: 180_000 }, async (t) => {
  const browser = await launchBrowser(t);
  if (!browser) return;
  const shots = process.env.KYCGATE_SCREENSHOT_DIR ?? mkdtempSync(path.join(os.tmpdir(), 'kycgate-dashboard-oidc-'));
  const idp = await startIdP(t);
  const port = await freePort();
  const redirectUri = `http://127.0.0.1:${port}/admin/api/oidc/callback`;
  const secret = 'dashboard-client-secret-0123456789';
  process.env.KYCGATE_TEST_OIDC_SECRET = secret;
  await idp.enableCodeFlow({ id: 'kycgate-dashboard', secret, redirectUri });
  const gw = await startTestGateway({
    log: { level: 'warn' },
    audit: { enabled: true },
    admin: {
      port,
      api: {
        enabled: true,
        store_keys: false,
        oidc: {
          issuer: idp.url,
          name: 'Example IdP',
          client_id: 'kycgate-dashboard',
          client_secret: { env: 'KYCGATE_TEST_OIDC_SECRET' },
          redirect_url: redirectUri,
          role_claim: 'groups',
          roles: [
            { value: 'kyc-ops', role: 'operator' },
            { value: 'kyc-admins', role: 'admin' },
          ],
        },
      },
    },
  });
  t.after(() => gw.close());
  const origin = `http://127.0.0.1:${port}`;
  const audited: string[] = [];
  for (const type of ['admin.login', 'admin.auth.failure', 'admin.logout'])
    gw.gateway.services.events.on(type, (e: GatewayEvent) =>
      audited.push(`${type} ${e.outcome} ${String(e.data?.actor ?? e.data?.subject ?? '')}`.trim()),
    );

  const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(m.text());
  });
  page.on('response', (r) => {
    if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.url()}`);
  });
  idp.user = { sub: 'alice', claims: { groups: ['staff', 'kyc-ops'], email: 'alice@example.test' } };
  await page.goto(`${origin}/`);
  const button = page.getByRole('button', { name: 'Sign in with Example IdP' });
  await button.waitFor();
  assert.match(
    (await page.locator('form.login p').first().textContent())!,
    /^Sign in through Example IdP or with an admin key\./,
  );
  await page.screenshot({ path: path.join(shots, 'dashboard-login-oidc.png') });
  await button.click();
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
  assert.equal(await page.locator('header .who').textContent(), 'oidc:alice (operator)');
  assert.equal(new URL(page.url()).hash, '', 'the return marker is gone from the address');
  await page.getByTestId('decisions-summary').waitFor();
  assert.equal(idp.tokens, 1);

  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === 'kg_admin_session');
  assert.ok(session, 'a session cookie');
  assert.equal(session.httpOnly, true);
  assert.equal(session.sameSite, 'Strict');
  assert.equal(session.path, '/admin/api');
  assert.ok(session.expires > Date.now() / 1000 && session.expires <= Date.now() / 1000 + 901, 'short-lived');
  // The cookie alone is not a credential (a cross-site request could carry it): the dashboard's header is needed.
  const me = (headers: Record<string, string>) =>
    httpRequest(`${origin}/admin/api/v1/me`, { headers: { cookie: `kg_admin_session=${session.value}`, ...headers } });
  assert.equal((await me({})).status, 401);
  assert.equal((await me({ 'x-kycgate-dashboard': '1' })).status, 200);

  // A reload keeps the session; sign-out ends it (the same cookie is refused afterwards).
  await page.reload();
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByLabel('Admin key').waitFor();
  assert.equal((await me({ 'x-kycgate-dashboard': '1' })).status, 401, 'the session ended');
  assert.equal((await context.cookies()).filter((c) => c.name === 'kg_admin_session').length, 0);
  // Sign-out without the dashboard's header (a cross-site form) is refused.
  const forged = await httpRequest(`${origin}/admin/api/oidc/logout`, { method: 'POST' });
  assert.equal(forged.status, 403);
  assert.equal(forged.headers['content-type'], 'application/problem+json');
  assert.deepEqual(problems, []);
  await context.close();

  // Refusals: each lands on a page that says why, and signs nobody in.
  const refused = async (why: string): Promise<void> => {
    const ctx = await browser.newContext();
    const p = await ctx.newPage();
    await p.goto(`${origin}/`);
    await p.getByRole('button', { name: 'Sign in with Example IdP' }).click();
    await p.getByRole('heading', { name: 'Sign-in refused' }).waitFor();
    assert.match((await p.getByRole('alert').textContent())!, why ? new RegExp(why) : /./);
    assert.equal((await ctx.cookies()).filter((c) => c.name === 'kg_admin_session').length, 0);
    await p.getByRole('link', { name: 'Back to the sign-in page' }).click();
    await p.getByLabel('Admin key').waitFor();
    await ctx.close();
  };
  idp.user = { sub: 'mallory', claims: { groups: ['staff'] } };
  await refused('has no role on this dashboard');
  idp.user = { sub: 'alice', claims: { groups: ['kyc-admins'] } };
  idp.tamper = 'state';
  await refused('does not match this sign-in');
  idp.tamper = 'nonce';
  await refused('not issued for this sign-in');
  idp.user = undefined;
  idp.tamper = undefined;
  await refused('The identity provider refused');

  assert.deepEqual(audited, [
    'admin.login ok oidc:alice',
    'admin.auth.failure invalid_credential', // the cookie without the dashboard's header
    'admin.logout ok oidc:alice',
    'admin.auth.failure invalid_credential', // the cookie after sign-out
    'admin.auth.failure no_role mallory',
    'admin.auth.failure state_mismatch',
    'admin.auth.failure nonce_mismatch',
    'admin.auth.failure issuer_access_denied',
  ]);
});
