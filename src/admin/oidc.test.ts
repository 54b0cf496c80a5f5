/**
 * The OIDC sign-in flow over HTTPS, driven like a browser but from Node (redirects followed by hand, cookies carried):
 * both cookies are Secure on a TLS admin listener, and the id_token checks refuse an audience of another client, an
 * expired token and a subject outside `allowed_subjects`, each audited with its reason.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startTestGateway } from '../../testing/harness.js';
import { startIdP } from '../../testing/oidc-issuer.js';
import { freePort } from '../../testing/ports.js';
import { ensureDevCertificate } from '../server/devcert.js';
import type { GatewayEvent } from '../pipeline/events.js';

interface Answer {
  status: number;
  location: string | undefined;
  cookies: string[];
  body: string;
}

/** A plain HTTP request to the issuer, redirects not followed. */
async function get(url: string): Promise<Answer> {
  const res = await fetch(url, { redirect: 'manual' });
  return {
    status: res.status,
    location: res.headers.get('location') ?? undefined,
    cookies: res.headers.getSetCookie(),
    body: await res.text(),
  };
}

/** A request to the HTTPS admin listener (its certificate is the test's own: not verified). */
function tlsGet(url: string, cookie = ''): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { rejectUnauthorized: false, headers: cookie ? { cookie } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode!,
          location: res.headers.location,
          cookies: res.headers['set-cookie'] ?? [],
          body: Buffer.concat(chunks).toString('utf8'),
        }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

test('OIDC sign-in over HTTPS: Secure cookies; audience, expiry and allowed subjects enforced', async (t) => {
  const idp = await startIdP(t);
  const port = await freePort();
  const origin = `https://127.0.0.1:${port}`;
  const redirectUri = `${origin}/admin/api/oidc/callback`;
  process.env.KYCGATE_TEST_OIDC_SECRET_2 = 'another-client-secret-0123456789';
  await idp.enableCodeFlow({ id: 'dash', secret: 'another-client-secret-0123456789', redirectUri });
  const tls = await ensureDevCertificate(mkdtempSync(path.join(os.tmpdir(), 'kycgate-oidc-tls-')));
  const gw = await startTestGateway({
    log: { level: 'warn' },
    admin: {
      port,
      tls,
      api: {
        enabled: true,
        store_keys: false,
        oidc: {
          issuer: idp.url,
          client_id: 'dash',
          client_secret: { env: 'KYCGATE_TEST_OIDC_SECRET_2' },
          redirect_url: redirectUri,
          role_claim: 'roles',
          roles: [{ value: 'viewer', role: 'viewer' }],
          allowed_subjects: ['alice', 'bob'],
          session_ttl_s: 120,
        },
      },
    },
  });
  t.after(() => gw.close());
  const outcomes: string[] = [];
  gw.gateway.services.events.on('admin.auth.failure', (e: GatewayEvent) => outcomes.push(String(e.outcome)));
  const config = JSON.parse((await tlsGet(`${origin}/admin/api/oidc/config`)).body) as { name: string };
  assert.equal(config.name, new URL(idp.url).host, 'named after the issuer by default');

  /** The whole round trip; the callback's answer. */
  const signIn = async (): Promise<Answer> => {
    const login = await tlsGet(`${origin}/admin/api/oidc/login`);
    assert.equal(login.status, 303);
    const flow = login.cookies[0]!;
    assert.match(
      flow,
      /^kg_admin_oidc=[^;]+; Path=\/admin\/api\/oidc\/callback; Max-Age=600; HttpOnly; SameSite=Lax; Secure$/,
    );
    const authorize = new URL(login.location!);
    assert.equal(authorize.searchParams.get('code_challenge_method'), 'S256');
    const back = await get(authorize.toString());
    assert.equal(back.status, 302);
    return tlsGet(back.location!, flow.split(';')[0]);
  };

  idp.user = { sub: 'alice', claims: { roles: 'viewer' } };
  const ok = await signIn();
  assert.equal(ok.status, 303);
  assert.equal(ok.location, '/#signed-in');
  const session = ok.cookies.find((c) => c.startsWith('kg_admin_session='))!;
  assert.match(session, /; Path=\/admin\/api; Max-Age=120; HttpOnly; SameSite=Strict; Secure$/);

  for (const [tamper, user] of [
    ['audience', 'alice'],
    ['expired', 'alice'],
    [undefined, 'carol'],
  ] as const) {
    idp.tamper = tamper;
    idp.user = { sub: user, claims: { roles: 'viewer' } };
    const refused = await signIn();
    assert.equal(refused.status, 403, `${tamper ?? user}: refused`);
    assert.ok(!refused.cookies.some((c) => c.startsWith('kg_admin_session=')), 'no session');
    assert.match(refused.body, /Sign-in refused/);
  }
  assert.deepEqual(outcomes, ['invalid_token', 'invalid_token', 'subject_not_allowed']);
  // The callback without the flow cookie (not started here) is refused too.
  const stray = await tlsGet(`${origin}/admin/api/oidc/callback?code=x&state=y`);
  assert.equal(stray.status, 403);
  assert.equal(outcomes.at(-1), 'no_flow');

  // A forged callback (a cross-site link the browser follows with its flow cookie, another state) is refused and
  // leaves the sign-in under way: the issuer's own answer still completes it.
  idp.tamper = undefined;
  idp.user = { sub: 'alice', claims: { roles: 'viewer' } };
  const login = await tlsGet(`${origin}/admin/api/oidc/login`);
  const flowCookie = login.cookies[0]!.split(';')[0]!;
  const forged = await tlsGet(`${origin}/admin/api/oidc/callback?code=forged&state=forged`, flowCookie);
  assert.equal(forged.status, 403);
  assert.equal(outcomes.at(-1), 'state_mismatch');
  assert.deepEqual(forged.cookies, [], 'the flow cookie is not cleared');
  const back = await get(login.location!);
  const genuine = await tlsGet(back.location!, flowCookie);
  assert.equal(genuine.status, 303, 'the genuine answer signs in');
  assert.ok(genuine.cookies.some((c) => c.startsWith('kg_admin_session=')));
});
