import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ipv6Network } from './ipv6-prefix.js';

test('IPv6 addresses reduce to their network; IPv4 and mapped addresses stay as they are', () => {
  assert.equal(ipv6Network('2001:db8:1:2:aaaa:bbbb:cccc:dddd', 64), '2001:db8:1:2::/64');
  assert.equal(ipv6Network('2001:db8:1:2::7', 64), '2001:db8:1:2::/64');
  assert.equal(ipv6Network('2001:db8::1', 64), '2001:db8:0:0::/64');
  assert.equal(ipv6Network('::1', 64), '0:0:0:0::/64');
  assert.equal(ipv6Network('2001:db8:abcd:ef12::1', 56), '2001:db8:abcd:ef00::/56');
  assert.equal(ipv6Network('2001:db8::1', 128), '2001:db8::1');
  assert.equal(ipv6Network('192.0.2.1', 64), '192.0.2.1');
  assert.equal(ipv6Network('::ffff:192.0.2.1', 64), '::ffff:192.0.2.1');
});
