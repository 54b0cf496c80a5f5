/**
 * Dashboard sessions and sign-in flows kept in the store (oidc-sessions.ts), driven from Node like a browser behind
 * one admin address (the test plays the load balancer, sending each request to the instance it names):
 * - two gateways on one PostgreSQL schema: a sign-in started on A completes on B; the session cookie is accepted by
 *   both; a replayed callback is refused on either without reaching the token endpoint; with B's store cut off, B
 *   answers 503 problem+json with Retry-After (session lookup, login, callback) and signs nobody in, and the same
 *   callback completes once the store is back; a sign-out on B is refused afterwards on A;
 * - one gateway on SQLite: a session survives a restart; an expired session is refused while its row is still
 *   there, and the next sign-in deletes the row.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { httpRequest, startTestGateway, type TestGateway } from '../../testing/harness.js';
import { type IdP, startIdP } from '../../testing/oidc-issuer.js';
import { POSTGRES_URL, requirePostgres, uniqueName } from '../../testing/services.js';
import { startTcpRelay } from '../../testing/tcp-relay.js';
import type { GatewayEvent } from '../pipeline/events.js';
import { PostgresStore } from '../store/postgres.js';
import type { Store } from '../store/store.js';

/** The one address the instances are behind, as registered at the issuer. */
const FRONT = 'http://admin.kycgate.test';
const SECRET = 'sessions-client-secret-0123456789';
process.env.KYCGATE_TEST_OIDC_SECRET_SESSIONS = SECRET;

type Answer = Awaited<ReturnType<typeof httpRequest>>;

function oidcAdmin(idp: IdP) {
  return {
    port: 0,
    api: {
      enabled: true,
      store_keys: false,
      oidc: {
        issuer: idp.url,
        client_id: 'dash',
        client_secret: { env: 'KYCGATE_TEST_OIDC_SECRET_SESSIONS' },
        redirect_url: `${FRONT}/admin/api/oidc/callback`,
        role_claim: 'groups',
        roles: [{ value: 'kyc-ops', role: 'operator' }],
        session_ttl_s: 600,
      },
    },
  };
}

async function issuer(t: Parameters<typeof startIdP>[0]): Promise<IdP> {
  const idp = await startIdP(t);
  await idp.enableCodeFlow({ id: 'dash', secret: SECRET, redirectUri: `${FRONT}/admin/api/oidc/callback` });
  return idp;
}

/** `url` (on the front address) sent to instance `gw`. */
const at = (gw: TestGateway, url: string) => {
  const u = new URL(url);
  return `${gw.adminUrl}${u.pathname}${u.search}`;
};

/** `name=value` of the cookie `name` an answer sets. */
function cookieOf(answer: Answer, name: string): string {
  const set = ([] as string[]).concat(answer.headers['set-cookie'] ?? []).find((c) => c.startsWith(`${name}=`));
  assert.ok(set, `sets ${name}`);
  return set.split(';')[0]!;
}

const setsSession = (answer: Answer) =>
  ([] as string[]).concat(answer.headers['set-cookie'] ?? []).some((c) => /^kg_admin_session=[^;]/.test(c));

/** The login on `gw` and the issuer's approval: the callback URL (on the front address) and the flow cookie. */
async function startSignIn(gw: TestGateway): Promise<{ callback: string; flow: string; authorize: URL }> {
  const login = await httpRequest(`${gw.adminUrl}/admin/api/oidc/login`);
  assert.equal(login.status, 303);
  const back = await fetch(String(login.headers.location), { redirect: 'manual' });
  assert.equal(back.status, 302);
  return {
    callback: back.headers.get('location')!,
    flow: cookieOf(login, 'kg_admin_oidc'),
    authorize: new URL(String(login.headers.location)),
  };
}

const callback = (gw: TestGateway, started: { callback: string; flow: string }) =>
  httpRequest(at(gw, started.callback), { headers: { cookie: started.flow } });

const me = (gw: TestGateway, session: string) =>
  httpRequest(`${gw.adminUrl}/admin/api/v1/me`, { headers: { cookie: session, 'x-kycgate-dashboard': '1' } });

function assertUnavailable(answer: Answer, what: string): void {
  assert.equal(answer.status, 503, `${what}: ${answer.body}`);
  assert.equal(answer.headers['content-type'], 'application/problem+json', what);
  assert.ok(Number(answer.headers['retry-after']) >= 1, `${what} says when to retry`);
  assert.equal(JSON.parse(answer.body).status, 503, what);
  assert.ok(!setsSession(answer), `${what}: nobody signed in`);
}

test('OIDC sign-in across two instances sharing PostgreSQL: flow and session in the store, single-use flow, sign-out everywhere, store down is 503', {
  timeout: 120_000,
}, async (t) => {
  if (!(await requirePostgres(t))) return;
  const idp = await issuer(t);
  const schema = uniqueName('oidc');
  const relay = await startTcpRelay(5432);
  const started: TestGateway[] = [];
  t.after(async () => {
    for (const gw of started) await gw.close();
    await relay.close();
    const admin = new PostgresStore({ connectionString: POSTGRES_URL });
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => undefined);
    await admin.close();
  });
  const config = (url: string) => ({
    log: { level: 'warn' },
    store: { driver: 'postgres', postgres: { url, schema, query_timeout_ms: 2000 } },
    admin: oidcAdmin(idp),
  });
  const a = await startTestGateway(config(POSTGRES_URL));
  started.push(a);
  // B reaches the same database through a relay the test can cut.
  const b = await startTestGateway(config(`postgres://postgres@127.0.0.1:${relay.port}/test`));
  started.push(b);
  const audited: string[] = [];
  for (const [name, gw] of [
    ['A', a],
    ['B', b],
  ] as const)
    for (const type of ['admin.login', 'admin.auth.failure', 'admin.logout'])
      gw.gateway.services.events.on(type, (e: GatewayEvent) => audited.push(`${name} ${type} ${e.outcome}`));

  // Started on A, completed on B.
  idp.user = { sub: 'alice', claims: { groups: ['kyc-ops'] } };
  const first = await startSignIn(a);
  // The flow's row: the hash of the cookie's id, and the nonce and PKCE verifier sealed with a key from that id.
  const [flowRow] = await a.gateway.services
    .get<Store>('store')
    .query<{ id_hash: string; nonce: string; verifier: string }>(
      'SELECT id_hash, nonce, verifier FROM admin_oidc_flows',
    );
  assert.equal(flowRow!.id_hash, hash('sha256', first.flow.slice('kg_admin_oidc='.length), 'hex'));
  const nonce = first.authorize.searchParams.get('nonce')!;
  const challenge = first.authorize.searchParams.get('code_challenge')!;
  for (const column of [flowRow!.nonce, flowRow!.verifier]) {
    assert.match(column, /^v1\.[\w-]{40,}$/);
    assert.ok(!column.includes(nonce), 'the nonce is not readable in the store');
    assert.notEqual(hash('sha256', column, 'base64url'), challenge, 'the stored value is not the verifier');
  }
  const done = await callback(b, first);
  assert.equal(done.status, 303, done.body);
  assert.equal(done.headers.location, '/#signed-in');
  const session = cookieOf(done, 'kg_admin_session');
  for (const gw of [a, b]) {
    const r = await me(gw, session);
    assert.equal(r.status, 200, `accepted on ${gw === a ? 'A' : 'B'}`);
    assert.deepEqual(JSON.parse(r.body), { actor: 'oidc:alice', role: 'operator', method: 'oidc' });
  }
  // The store holds the id's hash, never the id.
  const storeA = a.gateway.services.get<Store>('store');
  const rows = await storeA.query<{ id_hash: string; subject: string; role: string }>(
    'SELECT id_hash, subject, role FROM admin_sessions',
  );
  const id = session.slice('kg_admin_session='.length);
  assert.deepEqual(
    rows.map((r) => ({ ...r })),
    [{ id_hash: hash('sha256', id, 'hex'), subject: 'alice', role: 'operator' }],
  );

  // The same callback again (same state, code and flow cookie) is refused on either instance, before the issuer.
  const tokens = idp.tokens;
  for (const gw of [a, b]) {
    const replay = await callback(gw, first);
    assert.equal(replay.status, 403);
    assert.match(replay.body, /did not start here/);
    assert.ok(!setsSession(replay));
  }
  assert.equal(idp.tokens, tokens, 'a replay never reaches the token endpoint');

  // A sealed value moved to another flow's row (a store altered by hand) does not open there: no sign-in.
  const [one, two] = [await startSignIn(a), await startSignIn(a)];
  const rowOf = (started: { flow: string }) => hash('sha256', started.flow.slice('kg_admin_oidc='.length), 'hex');
  const store = a.gateway.services.get<Store>('store');
  const [moved] = await store.query<{ verifier: string }>('SELECT verifier FROM admin_oidc_flows WHERE id_hash = $1', [
    rowOf(two),
  ]);
  await store.query('UPDATE admin_oidc_flows SET verifier = $1 WHERE id_hash = $2', [moved!.verifier, rowOf(one)]);
  const altered = await callback(b, one);
  assert.equal(altered.status, 403, altered.body);
  assert.ok(!setsSession(altered));
  assert.equal(idp.tokens, tokens, 'an altered flow never reaches the token endpoint');
  assert.equal((await callback(b, two)).status, 303, 'the other flow is untouched');

  // B's store cut off: B answers 503 for a session lookup, a callback and a login; A is unaffected.
  const storeB = b.gateway.services.get<Store>('store');
  const refusedOnB: string[] = [];
  const stopListening = b.gateway.services.events.on('admin.refused', (e) =>
    refusedOnB.push(`${e.outcome} ${String(e.data?.path)}`),
  );
  await relay.cut('refuse');
  assertUnavailable(await me(b, session), 'session lookup');
  assert.equal((await me(a, session)).status, 200, 'A still reads its store');
  const pending = await startSignIn(a);
  assertUnavailable(await callback(b, pending), 'callback');
  assertUnavailable(await httpRequest(`${b.adminUrl}/admin/api/oidc/login`), 'login');
  stopListening();
  assert.deepEqual(
    refusedOnB,
    [
      'service-unavailable /admin/api/v1/me',
      'service-unavailable /admin/api/oidc/callback',
      'service-unavailable /admin/api/oidc/login',
    ],
    'each 503 is on record',
  );
  assert.ok(storeB.availability.down, 'B knows its store is down');
  const up = new Promise<void>((resolve) => {
    const stop = storeB.availability.onChange((isUp) => {
      if (!isUp) return;
      stop();
      resolve();
    });
  });
  await relay.restore();
  await up;
  // The outage used up nothing: the same callback completes now.
  const retried = await callback(b, pending);
  assert.equal(retried.status, 303, retried.body);
  const second = cookieOf(retried, 'kg_admin_session');

  // Signed out on B: refused on A (and B) at the next call; the other session lives on.
  const out = await httpRequest(`${b.adminUrl}/admin/api/oidc/logout`, {
    method: 'POST',
    headers: { cookie: session, 'x-kycgate-dashboard': '1' },
  });
  assert.equal(out.status, 204);
  assert.equal((await me(a, session)).status, 401);
  assert.equal((await me(b, session)).status, 401);
  assert.equal((await me(a, second)).status, 200);

  assert.deepEqual(audited, [
    'B admin.login ok',
    'A admin.auth.failure no_flow',
    'B admin.auth.failure no_flow',
    'B admin.auth.failure no_flow',
    'B admin.login ok',
    'B admin.login ok',
    'B admin.logout ok',
    'A admin.auth.failure invalid_credential',
    'B admin.auth.failure invalid_credential',
  ]);
});

test('OIDC in SQLite: a session and a sign-in under way survive a restart; an expired session is refused before its row is deleted', {
  timeout: 60_000,
}, async (t) => {
  const idp = await issuer(t);
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'kycgate-oidc-sessions-'));
  let running: TestGateway | undefined;
  t.after(async () => {
    await running?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  const config = { log: { level: 'warn' }, admin: oidcAdmin(idp) };
  const signIn = async (gw: TestGateway, sub: string) => {
    idp.user = { sub, claims: { groups: ['kyc-ops'] } };
    const done = await callback(gw, await startSignIn(gw));
    assert.equal(done.status, 303, done.body);
    return cookieOf(done, 'kg_admin_session');
  };

  running = await startTestGateway(config, { dataDir });
  const session = await signIn(running, 'alice');
  assert.equal((await me(running, session)).status, 200);
  // A sign-in started before the restart: its sealed nonce and verifier open with the cookie alone.
  idp.user = { sub: 'carol', claims: { groups: ['kyc-ops'] } };
  const underWay = await startSignIn(running);
  await running.close();
  running = undefined;

  const gw = await startTestGateway(config, { dataDir });
  running = gw;
  const after = await me(gw, session);
  assert.equal(after.status, 200, 'the session outlives the restart');
  assert.equal(JSON.parse(after.body).actor, 'oidc:alice');
  const completed = await callback(gw, underWay);
  assert.equal(completed.status, 303, `the sign-in completes after the restart: ${completed.body}`);
  assert.equal(JSON.parse((await me(gw, cookieOf(completed, 'kg_admin_session'))).body).actor, 'oidc:carol');

  // Past its expiry: refused at once, though its row is still there.
  const store = gw.gateway.services.get<Store>('store');
  const subjects = async () =>
    (await store.query<{ subject: string }>('SELECT subject FROM admin_sessions')).map((r) => r.subject);
  await store.query('UPDATE admin_sessions SET expires_at = $1', [Date.now() - 1]);
  assert.equal((await me(gw, session)).status, 401);
  assert.deepEqual((await subjects()).sort(), ['alice', 'carol']);
  // The next sign-in deletes it.
  const next = await signIn(gw, 'bob');
  assert.deepEqual(await subjects(), ['bob']);
  assert.equal((await me(gw, next)).status, 200);
});
