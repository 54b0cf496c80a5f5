/**
 * The browser side of the loop in a real Chromium: the hosted page says which application asks and why; after the
 * decision the user is taken back to the application; a user whose verification is in review or declined sees a
 * page (HTML, with the request id), never raw JSON; an approved user reaches the upstream.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { httpRequest, startTestGateway } from '../../testing/harness.js';
import { launchBrowser } from '../../testing/browser.js';
import { freePort } from '../../testing/ports.js';
import { kycTestbed } from '../../testing/kyc-testbed.js';

test('hosted page names the application and purpose, returns the user, and pending or declined users see a page', async (t) => {
  const browser = await launchBrowser(t);
  if (!browser) return;
  const bed = await kycTestbed(t);
  const port = await freePort();
  const gw = await startTestGateway(
    bed.config(
      {},
      {
        listeners: [{ name: 'main', port }],
        kyc: {
          providers: { sandbox: { type: 'sandbox', retry_delays_ms: [50] } },
          workflows: {
            full: {
              provider: 'sandbox',
              workflow_id: '0b6f2f7e-3c1d-4a5b-9e8f-7a6b5c4d3e2f',
              claims: { kyc_full: 'true' },
              application_name: 'Acme Bank',
              purpose: 'Opening an account requires a verified identity.',
              callback_url: `http://127.0.0.1:${port}/api/account`,
            },
          },
        },
      },
    ),
  );
  t.after(() => gw.close());
  const api = `http://127.0.0.1:${port}/api/account`;

  const journey = async (user: string, button: 'Approve' | 'Decline' | 'Send to review') => {
    const context = await browser.newContext({ extraHTTPHeaders: { 'x-user-id': user } });
    t.after(() => context.close());
    const page = await context.newPage();
    await page.goto(api);
    assert.match(page.url(), /\/verify\//, 'redirected to the hosted page');
    assert.equal(
      await page.locator('#requester').textContent(),
      'Acme Bank asks you to verify your identity: Opening an account requires a verified identity.',
    );
    await Promise.all([page.waitForLoadState('load'), page.getByRole('button', { name: button }).click()]);
    // Back to the application: the button, or the page's own timed return.
    const back = page.getByRole('link', { name: 'Return to Acme Bank' });
    assert.equal(await back.count(), 1);
    const [request] = await Promise.all([page.waitForRequest((r) => r.url().startsWith(api)), back.click()]);
    assert.equal(request.url(), `${api}?verificationSessionId=${request.url().split('verificationSessionId=')[1]}`);
    return page;
  };

  const approved = await journey('ana', 'Approve');
  // The webhook may land a moment after the user is back: the page reloads until it does.
  let body = '';
  for (let i = 0; i < 100 && !body.includes('"upstream"'); i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, 50));
    body = (await (await approved.goto(api))?.text()) ?? '';
  }
  assert.match(body, /"upstream":"api"/, 'the approved user reaches the application');

  const review = await journey('ben', 'Send to review');
  let title = '';
  for (let i = 0; i < 100 && title !== 'Identity verification pending'; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, 50));
    await review.goto(api);
    title = await review.title();
  }
  assert.equal(title, 'Identity verification pending');
  assert.match((await review.getByRole('status').textContent()) ?? '', /being reviewed/);
  assert.match((await review.locator('.id').textContent()) ?? '', /Request id: \S+/);
  const raw = await httpRequest(api, { headers: { 'x-user-id': 'ben', accept: 'text/html' } });
  assert.equal(raw.status, 403);
  assert.match(String(raw.headers['content-type']), /^text\/html/);
  assert.ok(raw.headers['retry-after'], 'Retry-After as for API clients');
  const json = await httpRequest(api, { headers: { 'x-user-id': 'ben', accept: 'application/json' } });
  assert.match(String(json.headers['content-type']), /problem\+json/, 'API clients still get problem+json');

  const declined = await journey('cleo', 'Decline');
  title = '';
  for (let i = 0; i < 100 && title !== 'Identity verification does not allow this request'; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, 50));
    await declined.goto(api);
    title = await declined.title();
  }
  assert.equal(title, 'Identity verification does not allow this request');
  assert.match((await declined.getByRole('status').textContent()) ?? '', /declined/);
});
