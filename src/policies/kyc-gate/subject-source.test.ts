import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RequestContext, type Identity } from '../../pipeline/context.js';
import type { CompiledRoute } from '../../routing/router.js';
import { compileSubjectSource } from './subject-source.js';
import type { SubjectSourceConfig } from './schema.js';

const route = { name: 'r', upstream: undefined } as unknown as CompiledRoute;
function ctx(identity: Identity | undefined, headers: Record<string, string> = {}): RequestContext {
  const c = new RequestContext({
    id: 'r1',
    startedAt: 0,
    listener: 'main',
    protocol: 'https',
    method: 'GET',
    path: '/',
    query: '',
    host: 'h',
    hostname: 'h',
    clientIp: '10.0.0.1',
    remoteAddress: '10.0.0.1',
    headers,
    req: undefined,
    route,
    params: {},
  });
  c.identity = identity;
  return c;
}
const source = (over: Partial<SubjectSourceConfig>) =>
  compileSubjectSource(
    { from: 'header', claim: 'sub', consumers: [], trust_unauthenticated_header: false, namespace: '', ...over },
    'test',
  );

test('subject sources: JWT claim, consumer, SPIFFE id and certificate fingerprint come from the verified identity only', () => {
  const identity: Identity = {
    method: 'jwt',
    scopes: [],
    consumer: 'mobile-app',
    claims: { sub: 'user-42', cust: 1234 },
    spiffeId: 'spiffe://bank.example/ns/pay/sa/api',
    certFingerprint: 'AB:CD',
  };
  assert.equal(source({ from: 'jwt_claim' })(ctx(identity)), 'user-42');
  assert.equal(source({ from: 'jwt_claim', claim: 'cust' })(ctx(identity)), '1234');
  assert.equal(source({ from: 'jwt_claim', claim: 'missing' })(ctx(identity)), undefined);
  assert.equal(source({ from: 'consumer' })(ctx(identity)), 'mobile-app');
  assert.equal(source({ from: 'spiffe_id' })(ctx(identity)), 'spiffe://bank.example/ns/pay/sa/api');
  assert.equal(source({ from: 'cert_fingerprint' })(ctx(identity)), 'AB:CD');
  assert.equal(source({ from: 'jwt_claim' })(ctx(undefined, { sub: 'forged' })), undefined, 'never from a header');
});

test('subject sources: a header counts only from authenticated consumers (optionally listed), or when explicitly trusted', () => {
  const backend: Identity = { method: 'api-key', scopes: [], consumer: 'orders-backend' };
  const other: Identity = { method: 'api-key', scopes: [], consumer: 'partner' };
  const h = { 'x-user-id': 'user-7' };
  assert.equal(source({ header: 'x-user-id' })(ctx(backend, h)), 'user-7');
  assert.equal(source({ header: 'x-user-id' })(ctx(undefined, h)), undefined);
  assert.equal(source({ header: 'x-user-id', consumers: ['orders-backend'] })(ctx(other, h)), undefined);
  assert.equal(source({ header: 'x-user-id', consumers: ['orders-backend'] })(ctx(backend, h)), 'user-7');
  assert.equal(source({ header: 'x-user-id', trust_unauthenticated_header: true })(ctx(undefined, h)), 'user-7');
  assert.equal(
    source({ header: 'x-user-id' })(ctx(backend, { 'x-user-id': 'u'.repeat(600) })),
    undefined,
    'absurdly long ids are refused',
  );
  assert.throws(() => source({ header: undefined }), /subject\.header/);
});
