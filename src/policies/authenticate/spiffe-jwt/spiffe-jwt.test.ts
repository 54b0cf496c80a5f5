import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { Client } from 'undici';
import { createSecretKey, randomBytes } from 'node:crypto';
import { SignJWT, exportJWK, generateKeyPair, type JWK, type JWTPayload } from 'jose';
import { pino } from 'pino';
import { RequestContext } from '../../../pipeline/context.js';
import type { CompiledRoute } from '../../../routing/router.js';
import { Services } from '../../../pipeline/services.js';
import { createSpiffeJwtAuthenticator, type SpiffeJwtAuthenticator } from './spiffe-jwt.js';
import { isAuthFailure, type AuthOutcome } from '../authenticator.js';
import { httpRequest } from '../../../../testing/harness.js';
import { tempDir, writeFile } from '../../../../testing/spiffe.js';

type Signer = { privateKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey']; kid: string; alg: string };

let dir: string;
let server: http.Server;
let url: string;
let authenticator: SpiffeJwtAuthenticator;
let a: Signer;
let aRsa: Signer;
let b: Signer;
const outcomes: AuthOutcome[] = [];

async function jwtKey(alg: string, kid: string): Promise<{ signer: Signer; jwk: JWK }> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid, use: 'jwt-svid' };
  return { signer: { privateKey, kid, alg }, jwk };
}

function sign(signer: Signer, claims: JWTPayload, header: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: signer.alg, kid: signer.kid, typ: 'JWT', ...header })
    .sign(signer.privateKey);
}

const now = () => Math.floor(Date.now() / 1000);
const good = (sub = 'spiffe://a.test/ns/payments/sa/api'): JWTPayload => ({
  sub,
  aud: ['kycgate', 'other'],
  exp: now() + 300,
  iat: now(),
  jti: 'tok-1',
});

/** Sends the token over a real HTTP connection; the server authenticates the request's context. */
async function present(token: string | undefined): Promise<AuthOutcome> {
  const before = outcomes.length;
  const r = await httpRequest(url, { headers: token === undefined ? {} : { authorization: `Bearer ${token}` } });
  assert.equal(r.status, 200);
  assert.equal(outcomes.length, before + 1);
  return outcomes[before];
}

function refusedWith(outcome: AuthOutcome, reason: string): void {
  assert.ok(
    outcome !== undefined && isAuthFailure(outcome),
    `expected refusal ${reason}, got ${JSON.stringify(outcome)}`,
  );
  assert.equal(outcome.reason, reason);
}

before(async () => {
  dir = tempDir();
  const ka = await jwtKey('ES256', 'a-1');
  const kr = await jwtKey('PS256', 'a-rsa');
  const kb = await jwtKey('ES384', 'b-1');
  a = ka.signer;
  aRsa = kr.signer;
  b = kb.signer;
  writeFile(
    dir,
    'a.json',
    JSON.stringify({
      keys: [ka.jwk, kr.jwk, { kty: 'OKP', use: 'jwt-svid', kid: 'ignored', crv: 'Ed25519', x: 'AA' }],
      spiffe_sequence: 3,
    }),
  );
  writeFile(dir, 'b.json', JSON.stringify({ keys: [kb.jwk] }));
  const services = new Services(pino({ level: 'silent' }), dir);
  authenticator = await createSpiffeJwtAuthenticator(
    {
      audience: ['kycgate'],
      trust_domains: [
        { name: 'a.test', bundle: 'a.json' },
        { name: 'b.test', bundle: 'b.json' },
      ],
      consumers: [
        { name: 'payments', spiffe_id: 'spiffe://a.test/ns/payments/sa/api' },
        { name: 'b-workloads', trust_domain: 'b.test' },
      ],
      allow_unmapped: false,
      leeway_s: 30,
      header: 'authorization',
    },
    { routeName: 'test', upstreamNames: new Set(), services, baseDir: dir },
  );
  const route = { name: 'test', upstream: undefined } as unknown as CompiledRoute;
  server = http.createServer((req, res) => {
    const ctx = new RequestContext({
      id: 'r',
      startedAt: 0,
      listener: 'main',
      protocol: 'http',
      method: req.method!,
      path: '/',
      query: '',
      host: 'localhost',
      hostname: 'localhost',
      clientIp: '127.0.0.1',
      remoteAddress: '127.0.0.1',
      req,
      route,
      params: {},
    });
    void Promise.resolve(authenticator.authenticate(ctx)).then((outcome) => {
      outcomes.push(outcome);
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}/`;
});

after(async () => {
  authenticator.close();
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
  rmSync(dir, { recursive: true, force: true });
});

test('valid JWT-SVIDs (ES256, PS256, another trust domain) authenticate with the SPIFFE ID and consumer', async () => {
  const es = await present(await sign(a, good()));
  assert.ok(es && !isAuthFailure(es));
  assert.equal(es.method, 'spiffe-jwt');
  assert.equal(es.spiffeId, 'spiffe://a.test/ns/payments/sa/api');
  assert.equal(es.consumer, 'payments');
  assert.equal(es.credentialId, 'tok-1');
  const ps = await present(await sign(aRsa, good(), { typ: 'JOSE' }));
  assert.ok(ps && !isAuthFailure(ps) && ps.consumer === 'payments');
  const fromB = await present(await sign(b, good('spiffe://b.test/batch')));
  assert.ok(fromB && !isAuthFailure(fromB));
  assert.equal(fromB.consumer, 'b-workloads');
  // Expired by less than the leeway: still accepted.
  assert.ok(!isAuthFailure(await present(await sign(a, { ...good(), exp: now() - 10 }))));
});

test('requests without a JWT-SVID are left to other authenticators', async () => {
  assert.equal(await present(undefined), undefined);
  assert.equal(await present('opaque-api-token'), undefined);
  assert.equal(await present(await sign(a, { ...good(), sub: 'user-42' })), undefined);
});

function base64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

test('JWT-SVID refusals: alg none, HS256, wrong or missing aud, expired, no exp, unknown domain, tampered, foreign key, typ', async () => {
  const unsignedNone = `${base64url({ alg: 'none', typ: 'JWT' })}.${base64url(good())}.`;
  refusedWith(await present(unsignedNone), 'jwt_algorithm');
  const hs = await new SignJWT(good())
    .setProtectedHeader({ alg: 'HS256', kid: 'a-1' })
    .sign(createSecretKey(randomBytes(32)));
  refusedWith(await present(hs), 'jwt_algorithm');
  refusedWith(await present(await sign(a, { ...good(), aud: 'someone-else' })), 'jwt_audience');
  const { aud: _aud, ...noAud } = good();
  refusedWith(await present(await sign(a, noAud)), 'jwt_audience');
  refusedWith(await present(await sign(a, { ...good(), exp: now() - 120 })), 'jwt_expired');
  const { exp: _exp, ...noExp } = good();
  refusedWith(await present(await sign(a, noExp)), 'jwt_claims');
  refusedWith(await present(await sign(a, good('spiffe://c.test/x'))), 'unknown_trust_domain');
  refusedWith(await present(await sign(a, good('spiffe://A.test/x'))), 'invalid_spiffe_id');
  const token = await sign(a, good());
  const [h, , s] = token.split('.');
  refusedWith(await present(`${h}.${base64url({ ...good(), sub: 'spiffe://a.test/ns/admin' })}.${s}`), 'jwt_signature');
  // Domain B's key cannot speak for domain A, even though B is trusted.
  refusedWith(await present(await sign(b, good())), 'jwt_unknown_key');
  refusedWith(await present(await sign(a, good(), { kid: undefined })), 'jwt_key_id');
  refusedWith(await present(await sign(a, good(), { typ: 'at+jwt' })), 'jwt_type');
  refusedWith(await present(await sign(a, good('spiffe://a.test/unmapped'))), 'unmapped_identity');
});

test('on one keep-alive connection a verified JWT-SVID is remembered (frozen), a tampered one is refused, and a bundle change verifies again', async () => {
  const client = new Client(url, { pipelining: 1, connections: 1 } as Client.Options);
  const sockets = new Set<unknown>();
  const onConnection = (socket: unknown) => void sockets.add(socket);
  server.on('connection', onConnection);
  const send = async (token: string): Promise<AuthOutcome> => {
    const before = outcomes.length;
    const r = await client.request({ path: '/', method: 'GET', headers: { authorization: `Bearer ${token}` } });
    await r.body.dump();
    assert.equal(r.statusCode, 200);
    return outcomes[before];
  };
  const original = readFileSync(path.join(dir, 'a.json'), 'utf8');
  try {
    const token = await sign(a, { ...good(), jti: 'memo-1' });
    const first = await send(token);
    assert.ok(first && !isAuthFailure(first));
    assert.ok(Object.isFrozen(first) && Object.isFrozen(first.claims), 'the identity is frozen');
    assert.equal(await send(token), first, 'the same token on the same connection is recalled, not verified again');

    const [h, , sig] = token.split('.');
    refusedWith(
      await send(`${h}.${base64url({ ...good(), jti: 'memo-1', sub: 'spiffe://a.test/ns/admin' })}.${sig}`),
      'jwt_signature',
    );
    refusedWith(await send(token.slice(0, -2) + (token.endsWith('AA') ? 'BB' : 'AA')), 'jwt_signature');
    const again = await send(token);
    assert.ok(again && !isAuthFailure(again) && again.spiffeId === 'spiffe://a.test/ns/payments/sa/api');

    // The trust domain stops publishing the signing key: the remembered verification is dropped at once.
    const bundle = JSON.parse(original) as { keys: JWK[]; spiffe_sequence: number };
    writeFile(dir, 'a.json', JSON.stringify({ keys: bundle.keys.filter((k) => k.kid !== 'a-1'), spiffe_sequence: 4 }));
    authenticator.trust.reload();
    assert.equal(authenticator.trust.bundle('a.test')!.jwtAuthorities.get('a-1'), undefined);
    refusedWith(await send(token), 'jwt_unknown_key');
    writeFile(dir, 'a.json', JSON.stringify({ ...bundle, spiffe_sequence: 5 }));
    authenticator.trust.reload();
    assert.ok(authenticator.trust.bundle('a.test')!.jwtAuthorities.get('a-1') !== undefined);
    const restored = await send(token);
    assert.ok(restored && !isAuthFailure(restored));
    assert.notEqual(restored, first, 'verified again after the change');
    assert.equal(sockets.size, 1, 'every request went over one connection');
  } finally {
    server.off('connection', onConnection);
    await client.close();
  }
});

test('JWT bundles from the Workload API: federated keys verify, withdrawn domains stop verifying', async () => {
  const { TestWorkloadApi } = await import('../../../../testing/workload-api.js');
  const grpc = await import('@grpc/grpc-js');
  const api = new TestWorkloadApi();
  await api.start(tempDir());
  const partner = await jwtKey('ES256', 'p-1');
  api.jwtBundles = new Map([['spiffe://partner.test', Buffer.from(JSON.stringify({ keys: [partner.jwk] }))]]);
  const services = new Services(pino({ level: 'silent' }), dir);
  const fromAgent = await createSpiffeJwtAuthenticator(
    {
      audience: ['kycgate'],
      workload_api: { socket: api.address, ready_timeout_ms: 5000 },
      consumers: [],
      allow_unmapped: true,
      leeway_s: 30,
      header: 'authorization',
    },
    { routeName: 'agent', upstreamNames: new Set(), services, baseDir: dir },
  );
  const route = { name: 'agent', upstream: undefined } as unknown as CompiledRoute;
  const authenticateToken = async (token: string) =>
    fromAgent.authenticate(
      new RequestContext({
        id: 'r',
        startedAt: 0,
        listener: 'main',
        protocol: 'http',
        method: 'GET',
        path: '/',
        query: '',
        host: 'localhost',
        hostname: 'localhost',
        clientIp: '127.0.0.1',
        remoteAddress: '127.0.0.1',
        headers: { authorization: `Bearer ${token}` },
        req: undefined,
        route,
        params: {},
      }),
    );
  try {
    assert.equal(api.missingHeader, 0);
    const token = await sign(partner.signer, good('spiffe://partner.test/bank'));
    const ok = await authenticateToken(token);
    assert.ok(ok && !isAuthFailure(ok));
    assert.equal(ok.spiffeId, 'spiffe://partner.test/bank');
    refusedWith(await authenticateToken(await sign(a, good())), 'unknown_trust_domain');

    const generation = fromAgent.trust.generation;
    api.pushJwtBundles(new Map());
    for (let i = 0; i < 200 && fromAgent.trust.generation === generation; i++)
      await new Promise((r) => setTimeout(r, 10));
    refusedWith(await authenticateToken(token), 'unknown_trust_domain');

    api.pushJwtBundles(new Map([['partner.test', Buffer.from(JSON.stringify({ keys: [partner.jwk] }))]]));
    for (let i = 0; i < 200 && fromAgent.trust.bundle('partner.test') === undefined; i++)
      await new Promise((r) => setTimeout(r, 10));
    assert.ok(!isAuthFailure(await authenticateToken(token)));
    api.mode = 'deny';
    api.fail(grpc.status.PERMISSION_DENIED);
    for (let i = 0; i < 200 && fromAgent.trust.bundle('partner.test') !== undefined; i++)
      await new Promise((r) => setTimeout(r, 10));
    refusedWith(await authenticateToken(token), 'unknown_trust_domain');
  } finally {
    fromAgent.close();
    await api.close();
  }
});
