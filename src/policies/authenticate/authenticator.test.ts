import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bearerToken, isCompactJws } from './authenticator.js';

test('bearer tokens are read one way by every method', () => {
  assert.equal(bearerToken('Bearer abc.def'), 'abc.def');
  assert.equal(bearerToken('bEaReR   tok  '), 'tok', 'the scheme is case-insensitive and the token trimmed');
  for (const other of [undefined, '', 'Bearer', 'Bearer ', 'Bearer    ', 'Basic dXNlcjpwYXNz', 'Bearerxyz token'])
    assert.equal(bearerToken(other), undefined, String(other));
});

test('only compact JWS shapes are taken for JWTs (a JWE or an opaque token is not)', () => {
  assert.equal(isCompactJws('eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln'), true);
  for (const other of ['eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0', 'eyJa.b.c.d.e', 'abc.def.ghi', 'kg_live_x', ''])
    assert.equal(isCompactJws(other), false, other);
});
