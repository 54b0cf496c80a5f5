import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AddressList } from './address-list.js';
import { inCidr } from '../policies/kyc-gate/rules.js';

test('address lists keep the families apart and read IPv4-mapped addresses as IPv4', () => {
  const list = new AddressList(['::/0', '10.0.0.0/8'], 'test');
  assert.equal(list.has('2001:db8::1'), true);
  assert.equal(list.has('203.0.113.5'), false, '::/0 does not cover IPv4');
  assert.equal(list.has('10.1.2.3'), true);
  assert.equal(list.has('::ffff:10.1.2.3'), true);
  assert.equal(list.has('not-an-ip'), false);
});

test('prefix lengths must be decimal and in range', () => {
  for (const entry of ['10.0.0.0/', '10.0.0.0/0x8', '10.0.0.0/ 8', '10.0.0.0/33', '::/129', 'x/8']) {
    assert.throws(() => new AddressList([entry], 'server.trusted_proxies'), /server\.trusted_proxies/, entry);
  }
});

test('in_cidr: same rules, and a malformed range fails the condition instead of matching everything', () => {
  assert.equal(inCidr('10.1.2.3', '10.0.0.0/8'), true);
  assert.equal(inCidr('203.0.113.5', '::/0'), false);
  assert.throws(() => inCidr('203.0.113.5', '10.0.0.0/'));
});
