import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSpiffeId, MAX_SPIFFE_ID_BYTES, MAX_TRUST_DOMAIN_BYTES } from './spiffe-id.js';

const LOWER = 'abcdefghijklmnopqrstuvwxyz';
const UPPER = LOWER.toUpperCase();
const DIGITS = '0123456789';
const TD_CHARS = new Set([...LOWER, ...DIGITS, '.', '-', '_']);
const PATH_CHARS = new Set([...LOWER, ...UPPER, ...DIGITS, '.', '-', '_']);

test('every byte value in a trust domain: only a-z 0-9 . - _ are accepted', () => {
  for (let b = 0; b < 256; b++) {
    const ch = String.fromCharCode(b);
    // The trust domain ends at "/": that byte starts the path instead.
    if (ch === '/') continue;
    const result = parseSpiffeId(`spiffe://trust${ch}domain/path`);
    assert.equal(result.ok, TD_CHARS.has(ch), `byte 0x${b.toString(16)} in the trust domain`);
  }
});

test('every byte value in a path segment: only a-z A-Z 0-9 . - _ are accepted', () => {
  for (let b = 0; b < 256; b++) {
    const ch = String.fromCharCode(b);
    if (ch === '/') continue;
    const result = parseSpiffeId(`spiffe://trustdomain/pa${ch}th`);
    assert.equal(result.ok, PATH_CHARS.has(ch), `byte 0x${b.toString(16)} in the path`);
  }
});

test('valid IDs', () => {
  for (const [id, td, path] of [
    ['spiffe://example.org', 'example.org', ''],
    ['spiffe://example.org/ns/payments/sa/api', 'example.org', '/ns/payments/sa/api'],
    ['spiffe://a_b-c.9/x', 'a_b-c.9', '/x'],
    ['spiffe://example.org/...', 'example.org', '/...'],
    ['spiffe://example.org/.path', 'example.org', '/.path'],
    ['spiffe://example.org/Mixed/CASE', 'example.org', '/Mixed/CASE'],
  ] as const) {
    const r = parseSpiffeId(id);
    assert.ok(r.ok, id);
    assert.equal(r.value.trustDomain, td);
    assert.equal(r.value.path, path);
    assert.equal(r.value.id, id);
  }
});

test('invalid IDs are refused with a reason', () => {
  for (const id of [
    '',
    'spiffe://',
    'spiffe:///path',
    'Spiffe://example.org/a',
    'SPIFFE://example.org/a',
    'http://example.org/a',
    'spiffe:/example.org/a',
    'spiffe//example.org/a',
    'spiffe://Example.org/a',
    'spiffe://EXAMPLE.ORG/a',
    'spiffe://user@example.org/a',
    'spiffe://user:pw@example.org/a',
    'spiffe://example.org:8443/a',
    'spiffe://example.org/a?x=1',
    'spiffe://example.org/a#frag',
    'spiffe://example.org/a%2Fb',
    'spiffe://example%2Eorg/a',
    'spiffe://example.org/',
    'spiffe://example.org/a/',
    'spiffe://example.org//a',
    'spiffe://example.org/a//b',
    'spiffe://example.org/.',
    'spiffe://example.org/..',
    'spiffe://example.org/a/./b',
    'spiffe://example.org/a/../b',
    'spiffe://example.org/a b',
    ' spiffe://example.org/a',
    'spiffe://example.org/a\n',
    'spiffe://exämple.org/a',
    'spiffe://example.org/pâth',
  ]) {
    const r = parseSpiffeId(id);
    assert.equal(r.ok, false, JSON.stringify(id));
    if (!r.ok) assert.ok(r.reason.length > 0);
  }
});

test('length limits: trust domain up to 255 bytes, ID up to 2048 bytes', () => {
  const td255 = 'a'.repeat(MAX_TRUST_DOMAIN_BYTES);
  assert.ok(parseSpiffeId(`spiffe://${td255}/x`).ok);
  assert.equal(parseSpiffeId(`spiffe://${td255}a/x`).ok, false);
  const prefix = 'spiffe://example.org/';
  const exact = prefix + 'p'.repeat(MAX_SPIFFE_ID_BYTES - prefix.length);
  assert.equal(Buffer.byteLength(exact), MAX_SPIFFE_ID_BYTES);
  assert.ok(parseSpiffeId(exact).ok);
  assert.equal(parseSpiffeId(exact + 'p').ok, false);
});
