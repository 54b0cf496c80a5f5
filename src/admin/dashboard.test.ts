/**
 * The dashboard's files on the admin listener: served from the build (dist/dashboard/) at `/` and `/assets/*` while
 * the admin API is on, with a Content Security Policy that allows only the page's own origin, and named in the
 * start-up line; off with the API or with `admin.api.dashboard: false`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { httpRequest, startTestGateway } from '../../testing/harness.js';

test('dashboard: served at / with its assets, a strict CSP and the start-up line naming it', async (t) => {
  const gw = await startTestGateway({
    log: { level: 'info' },
    admin: { port: 0, api: { enabled: true, key_file: { path: 'admin-key' } } },
  });
  t.after(() => gw.close());
  const page = await httpRequest(`${gw.adminUrl}/`);
  assert.equal(page.status, 200);
  assert.equal(page.headers['content-type'], 'text/html; charset=utf-8');
  assert.equal(page.headers['cache-control'], 'no-cache');
  const csp = String(page.headers['content-security-policy']);
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /script-src 'self'/);
  assert.match(csp, /frame-ancestors 'none'/);
  assert.equal(page.headers['x-content-type-options'], 'nosniff');
  // Every script and stylesheet the page loads comes from the admin listener itself (no CDN).
  const refs = [...page.body.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
  const assets = refs.filter((r) => r.startsWith('/assets/'));
  assert.ok(assets.some((a) => a.endsWith('.js')) && assets.some((a) => a.endsWith('.css')), refs.join());
  assert.deepEqual(
    refs.filter((r) => !r.startsWith('/assets/') && r !== 'data:,' && r !== '#main'),
    [],
  );
  for (const asset of assets) {
    const res = await httpRequest(`${gw.adminUrl}${asset}`);
    assert.equal(res.status, 200, asset);
    assert.equal(res.headers['cache-control'], 'public, max-age=31536000, immutable');
    assert.match(String(res.headers['content-type']), asset.endsWith('.js') ? /^text\/javascript/ : /^text\/css/);
  }
  const js = assets.find((a) => a.endsWith('.js'))!;
  const body = (await httpRequest(`${gw.adminUrl}${js}`)).body;
  assert.doesNotMatch(body, /https?:\/\/cdn|unpkg\.com|jsdelivr/);
  const unknown = await httpRequest(`${gw.adminUrl}/assets/missing.js`);
  assert.equal(unknown.status, 404);
  assert.equal(unknown.headers['content-type'], 'application/problem+json');
  const post = await httpRequest(`${gw.adminUrl}/`, { method: 'POST', body: 'x' });
  assert.equal(post.status, 405);
  assert.equal(post.headers.allow, 'GET, HEAD');
  // Health and the API are still where they were.
  assert.equal((await httpRequest(`${gw.adminUrl}/healthz`)).status, 200);
  assert.equal((await httpRequest(`${gw.adminUrl}/admin/api/v1/me`)).status, 401);
  const line = gw.logs.find((l) => l.dashboard !== undefined);
  assert.equal(line?.dashboard, `${gw.adminUrl}/`);
  assert.match(String(line?.msg), /^dashboard at http:\/\/127\.0\.0\.1:\d+\/, admin API at .*admin key in /);
});

test('dashboard: not served without the admin API, nor with admin.api.dashboard false', async (t) => {
  const off = await startTestGateway({ log: { level: 'warn' }, admin: { port: 0 } });
  t.after(() => off.close());
  const a = await httpRequest(`${off.adminUrl}/`);
  assert.equal(a.status, 404);
  assert.equal(a.headers['content-type'], 'application/problem+json');
  const noDashboard = await startTestGateway({
    log: { level: 'info' },
    admin: { port: 0, api: { enabled: true, dashboard: false, key_file: { path: 'admin-key' } } },
  });
  t.after(() => noDashboard.close());
  assert.equal((await httpRequest(`${noDashboard.adminUrl}/`)).status, 404);
  assert.equal((await httpRequest(`${noDashboard.adminUrl}/admin/api/v1/me`)).status, 401, 'the API stays on');
  assert.ok(!noDashboard.logs.some((l) => l.dashboard !== undefined));
});
