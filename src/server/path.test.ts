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
  for (const p of [
    '/a%2fb',
    '/a%2Fb',
    '/a%5cb',
    '/a\\b',
    '/a%00b',
    '/a%0ab',
    '/%zz',
    '/a%2',
    '/..',
    '/a/../..',
    '/%2e%2e/x',
    'a/b',
    '',
    '/a b',
    '/a\x7fb',
    '/a"b',
    '/a<b>',
  ]) {
    assert.equal(normalisePath(p).ok, false, JSON.stringify(p));
  }
});

test('path normalisation: what a server behind the gateway could read as another path is refused as ambiguous', () => {
  const cases = [
    '/public/..;/admin/x', // Tomcat, Jetty and Spring drop ";..." before resolving ".."
    '/public/..;jsessionid=1/admin',
    '/public/.;x/admin',
    '/public/%2e%2e;/admin',
    '/public/%2E%2E%3B/admin',
    '/public/..%3bx/admin',
    '/public/%252e%252e/admin', // decodes to ".." a second time
    '/public/%252fadmin',
    '/public/%25%32%65', // "%2e" once decoded... and "." twice
    '/public/%EF%BC%8E%EF%BC%8E/admin', // full-width dots (U+FF0E) fold to ".." under NFKC
    '/public/%EF%BC%8Fadmin', // full-width solidus
    '/public/%E2%80%A4%E2%80%A4/admin', // one-dot leaders
  ];
  for (const p of cases) {
    const r = normalisePath(p);
    assert.equal(r.ok, false, p);
    assert.equal((r as { ambiguous?: boolean }).ambiguous, true, `${p}: ${JSON.stringify(r)}`);
  }
});

test('path normalisation: semicolons pass unless path_semicolons refuses them; ordinary percent signs and non-ASCII pass', () => {
  assert.deepEqual(normalisePath('/a;b/c'), { ok: true, path: '/a;b/c' });
  assert.deepEqual(normalisePath('/files/report;v=2'), { ok: true, path: '/files/report;v=2' });
  assert.deepEqual(normalisePath('/a/x..;/b'), { ok: true, path: '/a/x..;/b' }, 'not a dot-segment');
  assert.deepEqual(normalisePath('/100%25/off'), { ok: true, path: '/100%25/off' });
  assert.deepEqual(normalisePath('/caf%C3%A9'), { ok: true, path: '/caf%C3%A9' });
  assert.deepEqual(normalisePath('/%E6%97%A5%E6%9C%AC'), { ok: true, path: '/%E6%97%A5%E6%9C%AC' });
  const strict = { refuseSemicolons: true };
  for (const p of ['/a;b/c', '/files/report;v=2', '/a%3Bb', '/a%3bb']) {
    const r = normalisePath(p, strict);
    assert.equal(r.ok, false, p);
    assert.equal((r as { ambiguous?: boolean }).ambiguous, true, p);
  }
  assert.deepEqual(normalisePath('/a/b', strict), { ok: true, path: '/a/b' });
});
