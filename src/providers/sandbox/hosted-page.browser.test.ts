/**
 * The hosted verification page in a real browser (Chromium through playwright-core): the form works under the
 * page's own Content-Security-Policy, keyboard users can reach every control, and clicking Approve completes
 * the session, sends the webhook and offers the way back to the callback.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { chromium } from 'playwright-core';
import { SandboxServer } from './sandbox-server.js';
import { DiditProvider } from '../didit/didit.js';
import { startWebhookReceiver } from '../../../testing/webhook-receiver.js';

const CHROMIUM = process.env.KYCGATE_CHROMIUM ?? '/usr/bin/chromium';

test('hosted page in Chromium: fill in, click Approve, land on the result with a Continue link', async (t) => {
  if (!existsSync(CHROMIUM)) {
    const reason = `Chromium not found at ${CHROMIUM} (apt-get install chromium, or set KYCGATE_CHROMIUM)`;
    if (process.env.CI === 'true') throw new Error(reason);
    console.log(`# skipped: ${reason}`);
    t.skip(reason);
    return;
  }
  const apiKey = randomUUID();
  const secret = randomUUID();
  const receiver = await startWebhookReceiver();
  const sandbox = await new SandboxServer().start({
    apiKey,
    webhookSecret: secret,
    webhookUrl: receiver.url,
    retryDelaysMs: [],
  });
  const provider = new DiditProvider({ baseUrl: sandbox.url, apiKey, webhookSecret: secret });
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  t.after(async () => {
    await browser.close();
    await provider.close();
    await sandbox.close();
    await receiver.close();
  });
  const session = await provider.createSession({
    workflowId: randomUUID(),
    vendorData: 'browser',
    callback: 'http://127.0.0.1:9/back',
  });
  const page = await browser.newPage();
  const cspViolations: string[] = [];
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
  });
  const response = await page.goto(session.url);
  assert.equal(response?.status(), 200);
  assert.equal(await page.textContent('#session-id'), session.sessionId);
  await page.getByLabel('First name').fill('Zoë');
  await page.getByLabel('Last name').fill("<b>O'Brien</b>");
  await page.getByLabel('Date of birth').fill('2001-02-03');
  // every control is reachable with the keyboard
  const focusable = await page.$$eval('input, button', (els) =>
    els.map((e) => (e as unknown as { tabIndex: number }).tabIndex),
  );
  assert.ok(focusable.every((i) => i >= 0));
  await Promise.all([page.waitForURL(session.url), page.getByRole('button', { name: 'Approve' }).click()]);
  assert.equal(await page.getByRole('status').textContent(), 'Verification approved');
  const href = await page.getByRole('link', { name: 'Continue' }).getAttribute('href');
  const back = new URL(href!);
  assert.equal(back.searchParams.get('verificationSessionId'), session.sessionId);
  assert.equal(back.searchParams.get('status'), 'Approved');
  assert.deepEqual(cspViolations, [], 'the page works under its own CSP');

  const [hook] = await receiver.waitFor(1, (w) => w.json.status === 'Approved');
  const verified = provider.verifyWebhook(hook!.body, hook!.headers);
  assert.ok(verified.ok);
  if (verified.ok)
    assert.deepEqual(verified.event.decision?.personal, {
      firstName: 'Zoë',
      lastName: "<b>O'Brien</b>",
      dateOfBirth: '2001-02-03',
    });
});
