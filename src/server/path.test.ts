import { test } from 'node:test';
import assert from 'node:assert/strict';
import { normalisePath } from './path.js';

test('path normalisation: clean paths pass unchanged', () => {
  for (const p of ['/', '/a', '/a/b/', '/users/42', '/a-b_c.d~e', "/a!$&'()*+,;=:@"]) {
    assert.deepEqual(normalisePath(p), { ok: true, path: p });
  }
});

test('path normalisation: dot-segments, repeated slashes and encoded unreserved characters are resolved', () => {
  const cases: Array<[string, string]> = [
    ['/public/../admin', '/admin'],
    ['/public/%2e%2e/admin', '/admin'],
    ['/public/%2E%2E/admin', '/admin'],
    ['/public/.%2e/admin', '/admin'],
    ['/public/./admin', '/public/admin'],
    ['//admin', '/admin'],
    ['/public//../admin', '/admin'],
    ['/a/b/..', '/a/'],
    ['/a/.', '/a/'],
    ['/%61dmin', '/admin'],
    ['/a%7Eb', '/a~b'],
    ['/a%20b', '/a%20b'],
    ['/a%c3%a9', '/a%C3%A9'],
    ['/a/b/../../c', '/c'],
  ];
  for (const [input, expected] of cases) assert.deepEqual(normalisePath(input), { ok: true, path: expected }, input);
});

test('path normalisation: ambiguous paths are refused', () => {
  for (const p of ['/a%2fb', '/a%2Fb', '/a%5cb', '/a\\b', '/a%00b', '/a%0ab', '/%zz', '/a%2', '/..', '/a/../..', '/%2e%2e/x', 'a/b', '', '/a b', '/a\x7fb', '/a"b', '/a<b>']) {
    assert.equal(normalisePath(p).ok, false, JSON.stringify(p));
  }
});
