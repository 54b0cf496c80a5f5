/**
 * The dashboard in a real headless Chromium against a real gateway (the demo's KYC setup with the sandbox provider,
 * an API-key route with a rate limit, an HTTPS listener, the audit journal, incident detection with a critical route
 * whose upstream is killed under traffic): real traffic first, then sign-in with
 * the admin key the gateway wrote, each view showing that traffic, the drill-down from a request to its audit
 * records, sign-out, and no console error or failed request on the way. Screenshots go to $KYCGATE_SCREENSHOT_DIR
 * (docs/ for the README's: `KYCGATE_SCREENSHOT_DIR=docs node scripts/run-tests.mjs dashboard.browser`), else to a
 * temporary directory.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { httpRequest, startTestGateway, startUpstream } from '../../testing/harness.js';
import { launchBrowser } from '../../testing/browser.js';
import { AdminClient } from '../../testing/admin-client.js';
import { eventually } from '../../testing/kyc-testbed.js';
import { startTcpRelay } from '../../testing/tcp-relay.js';
import { demoConfig } from '../demo/config.js';
import { ensureDevCertificate } from '../server/devcert.js';

const LAPTOP = { width: 1440, height: 900 };

test('dashboard: sign in, every view shows real traffic, drill down to audit records', async (t) => {
  const browser = await launchBrowser(t);
  if (!browser) return;
  const shots = process.env.KYCGATE_SCREENSHOT_DIR ?? mkdtempSync(path.join(os.tmpdir(), 'kycgate-dashboard-'));
  const demo = demoConfig({ cert: '', key: '' }, {}) as {
    kyc: { providers: { sandbox: Record<string, unknown> } };
    routes: unknown[];
    upstreams: unknown;
  };
  demo.kyc.providers.sandbox.port = 0;
  const certDir = mkdtempSync(path.join(os.tmpdir(), 'kycgate-dashboard-cert-'));
  const tls = await ensureDevCertificate(certDir);
  // The ledger: a real upstream behind two relays (its two targets) the test cuts: nothing listens any more.
  const ledger = await startUpstream((_req, res) => res.end('booked'));
  const relays = [await startTcpRelay(ledger.port), await startTcpRelay(ledger.port)];
  t.after(async () => {
    for (const r of relays) await r.close();
    await ledger.close();
  });
  const gw = await startTestGateway({
    listeners: [
      { name: 'http', port: 0 },
      { name: 'https', port: 0, tls },
    ],
    admin: { port: 0, api: { enabled: true, key_file: { path: 'admin-key' } } },
    log: { level: 'warn' },
    audit: { enabled: true },
    kyc: demo.kyc,
    upstreams: {
      ...(demo.upstreams as object),
      ledger: {
        targets: relays.map((r) => ({ url: `http://127.0.0.1:${r.port}` })),
        active_health: { path: '/health', interval_ms: 200, unhealthy_after: 2, healthy_after: 1, timeout_ms: 2000 },
      },
    },
    // Short intervals so that an outage is an incident within seconds; the ledger's function small enough that the
    // failed requests are a material share of its daily transactions and a second of downtime is material too.
    incidents: {
      enabled: true,
      instance: 'gw-1',
      interval_ms: 200,
      window_ms: 1000,
      confirm_ms: 300,
      close_after_ms: 60_000,
      slo: { default: { min_requests: 5 } },
      classification: { functions: { payments: { daily_transactions: 50 } }, downtime_hours: 0.0001 },
    },
    consumers: { acme: { scopes: ['orders:read'] } },
    routes: [
      ...demo.routes,
      { name: 'payments', match: { prefix: '/payments' }, upstream: 'ledger', critical: true, function: 'payments' },
      {
        name: 'orders',
        match: { prefix: '/orders' },
        upstream: 'echo',
        policies: [
          { authenticate: { methods: [{ 'api-key': {} }] } },
          { 'rate-limit': { limits: [{ name: 'burst', rate: 3, per: 'hour', key: ['consumer'] }] } },
        ],
      },
    ],
  });
  t.after(() => gw.close());
  const adminKey = readFileSync(path.join(gw.dataDir, 'admin-key'), 'utf8').trim();
  const admin = new AdminClient(gw.adminUrl, adminKey);

  // First the ledger killed under traffic (so that the other traffic is the latest): the detector opens an incident for its upstream group and classifies it as
  // major (a critical route down, its transactions failed); the operator then submits the initial notification.
  for (let i = 0; i < 3; i++) assert.equal((await httpRequest(`${gw.url}/payments/${i}`)).status, 200);
  for (const r of relays) await r.cut('refuse');
  type Summary = { id: string; cause: string; major: boolean | null };
  let incident: Summary | undefined;
  assert.ok(
    await eventually(
      async () => {
        assert.ok([502, 503].includes((await httpRequest(`${gw.url}/payments/x`)).status));
        const list = await admin.call<{ items: Summary[] }>('listIncidents');
        incident = list.body.items.find((i) => i.cause === 'upstream:ledger' && i.major === true);
        return incident !== undefined;
      },
      60_000,
      25,
    ),
    'a major incident for the ledger',
  );
  const report = await admin.call('incidentReport', {
    params: { id: incident!.id },
    body: { kind: 'initial', description: 'The ledger does not accept connections.', submitted: true },
  });
  assert.equal(report.status, 200);

  // Real traffic: a consumer's key (made through the admin API), over its limit; a wrong key; the demo routes; the
  // KYC loop for one user (challenged, verified in the sandbox's hosted page), another left pending.
  const created = await admin.call<{ key: string }>('createKey', { body: { consumer: 'acme' } });
  assert.equal(created.status, 201);
  const statuses: number[] = [];
  for (let i = 0; i < 5; i++)
    statuses.push((await httpRequest(`${gw.url}/orders/${i}`, { headers: { 'x-api-key': created.body.key } })).status);
  assert.deepEqual(statuses, [200, 200, 200, 429, 429]);
  const wrong = await httpRequest(`${gw.url}/orders/x`, { headers: { 'x-api-key': 'kg_nope' } });
  assert.equal(wrong.status, 401);
  const deniedId = String(wrong.headers['x-request-id']);
  for (let i = 0; i < 3; i++) assert.equal((await httpRequest(`${gw.url}/demo/echo/${i}`)).status, 200);
  assert.equal((await httpRequest(`${gw.url}/nowhere`)).status, 404);
  const kyc = (user: string) =>
    httpRequest(`${gw.url}/demo/kyc/orders`, { headers: { 'x-user-id': user, accept: 'application/json' } });
  const challenge = await kyc('bob@example.test');
  assert.equal(challenge.status, 403);
  assert.equal((await kyc('carol@example.test')).status, 403);
  const sandbox = await browser.newPage();
  await sandbox.goto(JSON.parse(challenge.body).verification_url);
  await Promise.all([sandbox.waitForLoadState('load'), sandbox.getByRole('button', { name: 'Approve' }).click()]);
  await sandbox.close();
  assert.ok(await eventually(async () => (await kyc('bob@example.test')).status === 200, 10_000));

  // A wrong admin key is refused on the sign-in form (its own context: the 401 is the browser's console error).
  const other = await browser.newContext({ viewport: LAPTOP });
  const refused = await other.newPage();
  await refused.goto(`${gw.adminUrl}/`);
  await refused.getByLabel('Admin key').fill(adminKey.slice(0, -1) + (adminKey.endsWith('A') ? 'B' : 'A'));
  await refused.getByRole('button', { name: 'Sign in' }).click();
  assert.equal(await refused.getByRole('alert').textContent(), 'This admin key was not accepted.');
  await other.close();

  const context = await browser.newContext({ viewport: LAPTOP });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()}`));
  page.on('response', (r) => {
    if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.url()}`);
  });

  // Sign in with the keyboard alone: the key field has the focus, Enter submits.
  await page.goto(`${gw.adminUrl}/`);
  assert.equal(await page.title(), 'kycgate dashboard');
  assert.equal(await page.evaluate(() => (globalThis as any).document.activeElement?.id), 'admin-key');
  await page.screenshot({ path: path.join(shots, 'dashboard-login.png') });
  assert.deepEqual(await accessibilityViolations(page), [], 'sign-in form: no WCAG 2.1 A/AA violation (axe-core)');
  await page.keyboard.type(adminKey);
  await page.keyboard.press('Enter');
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
  assert.match((await page.locator('header .who').textContent())!, /^admin-key:\S+ \(admin\)$/);
  await waitLoaded(page);

  await t.test('decisions over time, by route and consumer', async () => {
    const summary = await page.getByTestId('decisions-summary').textContent();
    // 3 orders + 3 echo + bob's pass = 7 allowed at least (the sandbox page's requests are not the gateway's).
    assert.match(summary!, /\b2 rate limited\b/);
    assert.ok(Number(/(\d+) challenged/.exec(summary!)![1]) >= 2, summary!);
    assert.ok(Number(/(\d+) allowed/.exec(summary!)![1]) >= 7, summary!);
    const byRoute = page.getByRole('table', { name: 'Decisions by route' });
    assert.deepEqual(await rowOf(byRoute.getByRole('row', { name: /^orders\b/ })), [
      'orders',
      '3',
      '1',
      '0',
      '2',
      '0',
      '6',
    ]);
    const byConsumer = page.getByRole('table', { name: 'Decisions by consumer' });
    assert.deepEqual(await rowOf(byConsumer.getByRole('row', { name: /^acme\b/ })), [
      'acme',
      '3',
      '0',
      '0',
      '2',
      '0',
      '5',
    ]);
    // Filtering by consumer redraws the series for that consumer only.
    await page.getByLabel('Consumer').selectOption('acme');
    await page
      .getByTestId('decisions-summary')
      .filter({ hasText: /^5 requests/ })
      .waitFor();
    // The latest requests follow the filter: acme's five, from the audit journal.
    await page.getByRole('heading', { name: 'Latest requests of consumer acme' }).waitFor();
    await waitLoaded(page);
    const latest = page.getByRole('table', { name: 'Latest requests (newest first)' });
    assert.deepEqual(await latest.locator('tbody td:nth-child(5)').allTextContents(), Array(5).fill('acme'));
    await page.getByLabel('Consumer').selectOption('');
    await page
      .getByTestId('decisions-summary')
      .filter({ hasNotText: /^5 requests/ })
      .waitFor();
    await page.getByRole('heading', { name: 'Latest requests', exact: true }).waitFor();
    await waitLoaded(page);
    assert.ok(await page.locator('#decisions canvas').evaluate((c: any) => c.width > 0 && c.height > 0));
    // The window applies to every section: 24 hours in 15-minute bars.
    await page.getByLabel('Window').selectOption('24h');
    await page.locator('#decisions canvas[aria-label^="Decisions per 15 min"]').waitFor();
    await waitLoaded(page);
    assert.match((await page.getByTestId('decisions-summary').textContent())!, /\b2 rate limited\b/);
    await page.getByLabel('Window').selectOption('1h');
    await page.locator('#decisions canvas[aria-label^="Decisions per 1 min"]').waitFor();
    await waitLoaded(page);
  });

  await t.test('KYC funnel: started, approved, conversion, time to verify', async () => {
    const funnel = page.locator('#funnel');
    assert.equal(await funnel.getByLabel('Conversion (approved / started)').textContent(), '50.0 %');
    const steps = await funnel.locator('dl dt, dl dd').allTextContents();
    const pairs = Object.fromEntries(steps.flatMap((v, i) => (i % 2 === 0 ? [[v, Number(steps[i + 1])]] : [])));
    assert.equal(pairs['Session started'], 2);
    assert.equal(pairs.Approved, 1);
    assert.ok(pairs.Challenged! >= 2, JSON.stringify(pairs));
    assert.match((await funnel.getByLabel('Time to verify, median').textContent())!, /^\d+ s$/);
  });

  await t.test('top refusal reasons', async () => {
    const problemsTable = page.getByRole('table', { name: 'Problem types answered' });
    assert.deepEqual(await rowOf(problemsTable.getByRole('row', { name: /^rate-limited\b/ })), ['rate-limited', '2']);
    assert.ok(await problemsTable.getByRole('row', { name: /^kyc-required\b/ }).isVisible());
    assert.ok(await problemsTable.getByRole('row', { name: /^not-found\b/ }).isVisible());
    const auth = page.getByRole('table', { name: 'Authentication failure reasons' });
    assert.equal(await auth.getByRole('row').count(), 2, 'one reason: the wrong key');
  });

  await t.test('upstream and provider health, certificates', async () => {
    const targets = page.getByRole('table', { name: 'Upstream targets' });
    assert.match((await targets.getByRole('row', { name: /^echo\b/ }).textContent())!, /in rotation/);
    const ledgerRows = await targets.getByRole('row', { name: /^ledger\b/ }).allTextContents();
    assert.equal(ledgerRows.length, 2);
    for (const row of ledgerRows) assert.match(row, /out of rotation/);
    const providers = page.getByRole('table', { name: 'Verification providers' });
    assert.match((await providers.getByRole('row', { name: /^sandbox\b/ }).textContent())!, /closed/);
    const certs = page.getByRole('table', { name: 'Certificates served' });
    assert.match((await certs.getByRole('row', { name: /^https\b/ }).textContent())!, /expires in \d+ days/);
  });

  await t.test('incidents: the ledger outage, classified major, with its DORA reporting deadlines', async () => {
    assert.equal(await page.getByRole('link', { name: 'Incidents' }).count(), 1);
    const table = page.getByRole('table', { name: 'Incidents' });
    const row = table.getByRole('row', { name: new RegExp(`^${incident!.id}\\b`) });
    const cells = await rowOf(row);
    assert.deepEqual(cells.slice(1, 4), ['Upstream ledger unavailable', 'major', 'open']);
    // Initial notification submitted (4 h after the classification at the latest); the intermediate report is due
    // 72 h after it, the final one a month after that.
    assert.match(cells[5]!, /initial: .+ submitted .+intermediate: .+ in 3 days.*final: .+ in 3[1-4] days/s);
    assert.equal(await table.getByRole('row').count(), 2, "one incident: the route failures are the upstream's");
    const why = await row.locator('.badge', { hasText: 'major' }).getAttribute('title');
    assert.match(why!, /^major: critical services affected and \d criteria met: .*clients_transactions/);
  });

  await page.screenshot({ path: path.join(shots, 'dashboard-overview.png'), fullPage: true });
  assert.deepEqual(await accessibilityViolations(page), [], 'dashboard: no WCAG 2.1 A/AA violation (axe-core)');

  await t.test('drill-down: a request to its audit records, by keyboard', async () => {
    const latest = page.getByRole('table', { name: 'Latest requests (newest first)' });
    const button = latest.getByRole('button', { name: `Audit records of request ${deniedId}` });
    await button.focus();
    await page.keyboard.press('Enter');
    const dialog = page.getByRole('dialog', { name: `Audit records of request ${deniedId}` });
    await dialog.getByRole('article').first().waitFor();
    const records = dialog.getByRole('article');
    const names = await records.evaluateAll((a) => a.map((e) => e.getAttribute('aria-label')!.split(' ')[0]));
    assert.ok(names.includes('http.request'), names.join());
    assert.ok(names.includes('auth.failure'), names.join());
    const request = dialog.getByRole('article', { name: /^http\.request/ });
    assert.match((await request.textContent())!, /status401/);
    assert.match((await request.textContent())!, new RegExp(`request id${deniedId}`));
    await page.screenshot({ path: path.join(shots, 'dashboard-drill-down.png') });
    assert.deepEqual(await accessibilityViolations(page), [], 'drill-down dialog: no WCAG 2.1 A/AA violation');
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
    // The same records through the search form.
    await page.getByLabel('Request id').fill(deniedId);
    await page.getByRole('button', { name: 'Show audit records' }).click();
    await dialog.getByRole('article').first().waitFor();
    await dialog.getByRole('button', { name: 'Close' }).click();
  });

  await t.test('the session survives a reload; sign-out forgets the key', async () => {
    await page.reload();
    await waitLoaded(page);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('Admin key').waitFor();
    assert.equal(await page.evaluate(() => (globalThis as any).sessionStorage.length), 0);
  });

  assert.deepEqual(problems, [], 'no console error, failed request or error answer');
  await context.close();

  await t.test('a viewer key sees every section but the audit journal; revoked, it is signed out', async () => {
    const viewerKey = await admin.call<{ key: string; admin_key: { id: string } }>('createAdminKey', {
      body: { name: 'compliance', role: 'viewer' },
    });
    assert.equal(viewerKey.status, 201);
    // A smaller laptop screen.
    const viewerContext = await browser.newContext({ viewport: { width: 1280, height: 720 } });
    const viewer = await viewerContext.newPage();
    const seen: string[] = [];
    viewer.on('console', (m) => {
      if (m.type() === 'error') seen.push(m.text());
    });
    viewer.on('response', (r) => {
      if (r.status() >= 400) seen.push(`HTTP ${r.status()}: ${r.url()}`);
    });
    await viewer.goto(`${gw.adminUrl}/`);
    await viewer.getByLabel('Admin key').fill(viewerKey.body.key);
    await viewer.getByRole('button', { name: 'Sign in' }).click();
    await viewer.getByRole('button', { name: 'Sign out' }).waitFor();
    await waitLoaded(viewer);
    assert.match((await viewer.locator('#requests').textContent())!, /needs the operator role/);
    assert.match((await viewer.getByTestId('decisions-summary').textContent())!, /\b2 rate limited\b/);
    assert.deepEqual(seen, [], 'a viewer is never sent to an operation its role does not allow');
    await viewer.screenshot({ path: path.join(shots, 'dashboard-viewer-1280.png') });
    const overflow = await viewer.evaluate(() => {
      const d = (globalThis as any).document.documentElement;
      return d.scrollWidth - d.clientWidth;
    });
    assert.equal(overflow, 0, 'nothing wider than a 1280-pixel screen');
    const revoked = await admin.call('revokeAdminKey', { params: { id: viewerKey.body.admin_key.id } });
    assert.equal(revoked.status, 200);
    await viewer.getByRole('button', { name: 'Refresh' }).click();
    await viewer.getByLabel('Admin key').waitFor();
    assert.match((await viewer.getByRole('alert').textContent())!, /no longer accepted/);
    assert.equal(await viewer.evaluate(() => (globalThis as any).sessionStorage.length), 0);
    await viewerContext.close();
  });
  console.log(`# screenshots in ${shots}`);
});

/** Waits until every section has loaded (aria-busy false) and shows no load error. */
async function waitLoaded(page: Page): Promise<void> {
  await page.locator('main section.card').first().waitFor();
  await page.waitForFunction(() => {
    const sections: any[] = [...(globalThis as any).document.querySelectorAll('main section.card')];
    return sections.length > 0 && sections.every((s) => s.getAttribute('aria-busy') === 'false');
  });
  assert.deepEqual(await page.locator('main .error').allTextContents(), []);
}

const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/**
 * WCAG 2.1 A and AA violations axe-core finds in the page as it is now (rule id and the elements). axe is evaluated
 * through the DevTools protocol, which the page's CSP does not apply to; the page itself still loads nothing but its
 * own files.
 */
async function accessibilityViolations(page: Page): Promise<string[]> {
  await page.evaluate(AXE);
  const violations = (await page.evaluate(() =>
    (globalThis as any).axe.run((globalThis as any).document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] },
    }),
  )) as { passes: Array<{ id: string }>; violations: Array<{ id: string; nodes: Array<{ target: string[] }> }> };
  const checked = new Set(violations.passes.map((p) => p.id));
  for (const rule of ['color-contrast', 'button-name'])
    assert.ok(checked.has(rule) || violations.violations.some((v) => v.id === rule), `axe checked ${rule}`);
  return violations.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

/** A table row's cell texts. */
async function rowOf(row: ReturnType<Page['getByRole']>): Promise<string[]> {
  return (await row.locator('th, td').allTextContents()).map((s) => s.trim());
}
