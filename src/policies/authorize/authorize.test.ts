import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SpiffeIdMatcher } from './spiffe-matcher.js';
import { authorizePolicy } from './authorize.js';
import { Services } from '../../pipeline/services.js';
import { pino } from 'pino';
import type { RequestContext, Identity } from '../../pipeline/context.js';
import { Problem } from '../../pipeline/problem.js';

test('SPIFFE ID allow list: exact, trust domain and path prefix on segment boundaries', () => {
  const m = new SpiffeIdMatcher([
    'spiffe://prod.example/ns/payments/sa/api',
    'spiffe://partner.example',
    'spiffe://prod.example/ns/kyc/*',
  ]);
  assert.ok(m.matches('spiffe://prod.example/ns/payments/sa/api'));
  assert.ok(!m.matches('spiffe://prod.example/ns/payments/sa/api2'));
  assert.ok(!m.matches('spiffe://prod.example/ns/payments/sa'));
  assert.ok(m.matches('spiffe://partner.example/anything/at/all'));
  assert.ok(m.matches('spiffe://partner.example'));
  assert.ok(!m.matches('spiffe://partner.example.evil/x'));
  assert.ok(m.matches('spiffe://prod.example/ns/kyc/sa/worker'));
  assert.ok(!m.matches('spiffe://prod.example/ns/kyc'));
  assert.ok(!m.matches('spiffe://prod.example/ns/kycx/sa/worker'), 'prefixes match whole segments');
  assert.ok(!m.matches(undefined));
  assert.ok(!m.matches('https://prod.example/ns/kyc/sa/worker'));
});

function ctxWith(identity: Identity | undefined): RequestContext {
  return { identity, id: 'r1', decision: undefined } as unknown as RequestContext;
}

test('authorize: 401 without identity, 403 for valid identities that are not allowed, pass otherwise', async () => {
  const services = new Services(pino({ level: 'silent' }), '.');
  const setup = { routeName: 'r', upstreamNames: new Set<string>(), services };
  const policy = await authorizePolicy.create(
    { scopes: { any_of: ['a', 'b'] }, groups: ['ops'], spiffe_ids: ['spiffe://td/ns/*'] },
    setup,
  );
  const run = (i: Identity | undefined) => policy.onRequest!(ctxWith(i)) as Problem | undefined;
  assert.equal(run(undefined)?.status, 401);
  const ok: Identity = { method: 'mtls', scopes: ['b'], groups: ['ops'], spiffeId: 'spiffe://td/ns/x/sa/y' };
  assert.equal(run(ok), undefined);
  assert.equal(run({ ...ok, scopes: ['c'] })?.status, 403);
  assert.equal(run({ ...ok, groups: ['dev'] })?.status, 403);
  assert.equal(run({ ...ok, spiffeId: 'spiffe://other/ns/x' })?.status, 403);
  assert.equal(run({ ...ok, spiffeId: undefined })?.status, 403);
  const denied = run({ ...ok, groups: [] })!;
  assert.ok(denied instanceof Problem);
  assert.equal(denied.type, 'https://kycgate.dev/problems/forbidden');
});
