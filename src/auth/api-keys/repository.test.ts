import { test } from 'node:test';
import assert from 'node:assert/strict';
import { apiKeyStatus, type ApiKeyRecord } from './repository.js';

const key = (over: Partial<ApiKeyRecord>): ApiKeyRecord => ({
  id: 'abcdefgh',
  consumer: 'acme',
  hash: '00',
  scopes: [],
  label: undefined,
  createdAt: 0,
  expiresAt: undefined,
  revokedAt: undefined,
  rotatedFrom: undefined,
  rotatedTo: undefined,
  updatedAt: 0,
  ...over,
});

test('key status: revoked wins over expired and rotating; a key expires at its expiry instant', () => {
  const now = 1_000;
  assert.equal(apiKeyStatus(key({}), now), 'active');
  assert.equal(apiKeyStatus(key({ expiresAt: now + 1 }), now), 'active');
  assert.equal(apiKeyStatus(key({ expiresAt: now }), now), 'expired');
  assert.equal(apiKeyStatus(key({ rotatedTo: 'ijklmnop' }), now), 'rotating');
  assert.equal(apiKeyStatus(key({ rotatedTo: 'ijklmnop', expiresAt: now - 1 }), now), 'expired');
  assert.equal(apiKeyStatus(key({ revokedAt: 5, expiresAt: now - 1, rotatedTo: 'ijklmnop' }), now), 'revoked');
});
