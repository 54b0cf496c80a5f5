import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { DataSealer } from './sealed-data.js';
import { SubjectPseudonymiser } from './pseudonym.js';
import { decodeKey32 } from './keys.js';

test('sealed data: AES-256-GCM round trip bound to its row; tampering, another row or an unknown key fail', () => {
  const sealer = new DataSealer([{ id: 'k1', key: randomBytes(32) }]);
  const sealed = sealer.seal('{"date_of_birth":"1990-01-02"}', 'personal:sub_a');
  assert.match(sealed, /^v1\.k1\./);
  assert.ok(!sealed.includes('1990'));
  assert.equal(sealer.open(sealed, 'personal:sub_a'), '{"date_of_birth":"1990-01-02"}');
  assert.throws(() => sealer.open(sealed, 'personal:sub_b'), 'copied to another row');
  const parts = sealed.split('.');
  const body = Buffer.from(parts[3]!, 'base64url');
  body[0]! ^= 1;
  assert.throws(() =>
    sealer.open([parts[0], parts[1], parts[2], body.toString('base64url')].join('.'), 'personal:sub_a'),
  );
  assert.throws(() => new DataSealer([{ id: 'k9', key: randomBytes(32) }]).open(sealed, 'personal:sub_a'), /key "k1"/);
});

test('sealed data: rotation — the first key seals, every key opens', () => {
  const oldKey = { id: 'old', key: randomBytes(32) };
  const before = new DataSealer([oldKey]).seal('secret', 'ctx');
  const rotated = new DataSealer([{ id: 'new', key: randomBytes(32) }, oldKey]);
  assert.equal(rotated.open(before, 'ctx'), 'secret');
  assert.equal(rotated.currentKeyId, 'new');
  assert.match(rotated.seal('secret', 'ctx'), /^v1\.new\./);
  assert.throws(() => new DataSealer([oldKey, { id: 'old', key: randomBytes(32) }]), /unique/);
});

test('keys: 32-byte keys as hex or base64, anything else refused without echoing the value', () => {
  const key = randomBytes(32);
  assert.deepEqual(decodeKey32(key.toString('hex'), 'k'), key);
  assert.deepEqual(decodeKey32(key.toString('base64'), 'k'), key);
  assert.throws(
    () => decodeKey32('short-secret-value', 'kyc.encryption_keys[k1]'),
    (err: Error) => /kyc\.encryption_keys\[k1\]/.test(err.message) && !err.message.includes('short-secret-value'),
  );
});

test('pseudonyms: stable per key and namespace, unlinkable without the key', () => {
  const key = randomBytes(32);
  const p = new SubjectPseudonymiser(key);
  const alice = p.pseudonymise('', 'alice@example.com');
  assert.equal(p.pseudonymise('', 'alice@example.com'), alice);
  assert.match(alice, /^sub_[A-Za-z0-9_-]{43}$/);
  assert.ok(!alice.includes('alice'));
  assert.notEqual(p.pseudonymise('issuer-b', 'alice@example.com'), alice, 'namespaces separate identity systems');
  assert.notEqual(
    new SubjectPseudonymiser(randomBytes(32)).pseudonymise('', 'alice@example.com'),
    alice,
    'another key, another pseudonym',
  );
  assert.throws(() => new SubjectPseudonymiser(randomBytes(16)), /32 bytes/);
});
