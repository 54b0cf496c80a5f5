import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KEY_LENGTH, KEY_PATTERN, generateKey, hashKey, parseDuration, parseKey } from './format.js';

test('generated keys have the documented shape, a valid checksum and scanner-detectable prefix', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const { key, id, hash } = generateKey();
    assert.equal(key.length, KEY_LENGTH);
    assert.match(key, /^kg_[0-9A-Za-z]{8}_[0-9A-Za-z]{38}$/);
    assert.ok(KEY_PATTERN.test(`leaked: ${key} in a log`));
    assert.equal(parseKey(key), id);
    assert.equal(hash, hashKey(key));
    assert.ok(!seen.has(key));
    seen.add(key);
  }
});

test('a single changed character fails the checksum', () => {
  const { key } = generateKey();
  for (const at of [3, 12, 30, KEY_LENGTH - 1]) {
    const c = key[at] === 'A' ? 'B' : 'A';
    assert.equal(parseKey(key.slice(0, at) + c + key.slice(at + 1)), undefined, `position ${at}`);
  }
  assert.equal(parseKey(key + 'x'), undefined);
  assert.equal(parseKey('kg_' + '-'.repeat(KEY_LENGTH - 3)), undefined);
});

test('durations', () => {
  assert.equal(parseDuration('90d'), 90 * 86_400_000);
  assert.equal(parseDuration('24h'), 86_400_000);
  assert.equal(parseDuration('500ms'), 500);
  assert.throws(() => parseDuration('1 week'), /not a duration/);
});
