import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compilePath, getPath, removePath, setPath, visitPath } from './json-path.js';

test('paths compile members, indexes, wildcards and quoted names, and refuse anything else', () => {
  assert.deepEqual(compilePath("$.a[0]['b c'][*].*").segments, [
    { kind: 'member', name: 'a' },
    { kind: 'index', index: 0 },
    { kind: 'member', name: 'b c' },
    { kind: 'wildcard' },
    { kind: 'wildcard' },
  ]);
  for (const bad of ['a.b', '$', '$..a', '$[?(@.x)]', '$.a[', '$.a b'])
    assert.throws(() => compilePath(bad), /JSON path/, bad);
  assert.equal(compilePath('$.a.b').definite, true);
  assert.equal(compilePath('$.a[*]').definite, false);
});

test('visiting, getting, removing and setting by path', () => {
  const doc = { items: [{ iban: 'A' }, { iban: 'B' }, { other: 1 }], user: { ssn: '1' } };
  const seen: unknown[] = [];
  visitPath(doc, compilePath('$.items[*].iban'), (c, k) => seen.push((c as Record<string, unknown>)[k as string]));
  assert.deepEqual(seen.sort(), ['A', 'B']);
  assert.equal(getPath(doc, compilePath('$.user.ssn')), '1');
  assert.equal(getPath(doc, compilePath('$.user.none.deeper')), undefined);
  removePath(doc, compilePath('$.items[*].iban'));
  assert.deepEqual(doc.items, [{}, {}, { other: 1 }]);
  assert.equal(setPath(doc, compilePath('$.meta.source'), 'gw'), true);
  assert.deepEqual((doc as Record<string, unknown>).meta, { source: 'gw' });
  assert.equal(setPath(doc, compilePath('$.user.ssn.x'), 1), false, 'cannot set inside a string');
  // The prototype is never reached through a path.
  setPath({}, compilePath('$.__proto__.polluted'), true);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});
