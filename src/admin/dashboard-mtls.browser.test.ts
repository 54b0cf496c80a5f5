/**
 * The dashboard on an HTTPS admin listener that maps client certificates to roles (`admin.api.mtls`): Chromium
 * presenting an X509-SVID signs in without a key; without a certificate the same button is refused and says why.
 * Incident detection is off on this gateway: the dashboard shows no incidents section.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { issueCertificate } from '../workload-identity/certificates.js';
import { startTestGateway } from '../../testing/harness.js';
import { launchBrowser } from '../../testing/browser.js';
import { issueSvid, tempDir, trustDomainCa, writeFile } from '../../testing/spiffe.js';

test('dashboard: sign in with a client certificate mapped to a role', async (t) => {
  const browser = await launchBrowser(t);
  if (!browser) return;
  const dir = tempDir('kycgate-dashboard-mtls-');
  const serverCa = await issueCertificate({ subject: 'CN=admin server CA', ca: true });
  const server = await issueCertificate({ subject: 'CN=localhost', issuer: serverCa, dns: ['localhost'] });
  const clientCa = await trustDomainCa('ops.example');
  const svid = await issueSvid(clientCa, 'spiffe://ops.example/console');
  const gw = await startTestGateway(
    {
      log: { level: 'warn' },
      admin: {
        port: 0,
        tls: {
          cert: writeFile(dir, 'server.pem', server.certPem),
          key: writeFile(dir, 'server.key', server.keyPem),
          client_ca: writeFile(dir, 'client-ca.pem', clientCa.certPem),
        },
        api: {
          enabled: true,
          store_keys: false,
          mtls: [{ spiffe_id: 'spiffe://ops.example/console', role: 'viewer' }],
        },
      },
    },
    { baseDir: dir },
  );
  t.after(async () => {
    await gw.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const origin = `https://localhost:${gw.gateway.admin!.port}`;

  // Without a certificate: refused, with the reason on the form.
  const bare = await browser.newContext({ ignoreHTTPSErrors: true });
  const refused = await bare.newPage();
  await refused.goto(`${origin}/`);
  await refused.getByRole('button', { name: 'Sign in with client certificate' }).click();
  assert.equal(await refused.getByRole('alert').textContent(), 'No client certificate mapped to a role was presented.');
  await bare.close();

  const context = await browser.newContext({
    ignoreHTTPSErrors: true,
    clientCertificates: [{ origin, cert: Buffer.from(svid.certPem), key: Buffer.from(svid.keyPem) }],
  });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(m.text());
  });
  page.on('response', (r) => {
    if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.url()}`);
  });
  await page.goto(`${origin}/`);
  await page.getByRole('button', { name: 'Sign in with client certificate' }).click();
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
  assert.equal(await page.locator('header .who').textContent(), 'spiffe://ops.example/console (viewer)');
  await page
    .getByRole('table', { name: 'Certificates served' })
    .getByRole('row', { name: /^admin\b/ })
    .waitFor();
  // Incident detection is off here: no incidents section, and no call to the incidents endpoint (it would be refused).
  await page
    .getByRole('status')
    .filter({ hasText: /^Updated / })
    .waitFor();
  assert.equal(await page.locator('section#incidents').count(), 0);
  assert.equal(await page.getByRole('link', { name: 'Incidents' }).count(), 0);
  // A reload keeps the sign-in (the certificate, no key stored), sign-out forgets it.
  await page.reload();
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByLabel('Admin key').waitFor();
  assert.deepEqual(problems, []);
  await context.close();
});
