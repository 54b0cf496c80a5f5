import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isJsonMediaType, mediaTypeOf, MediaTypeMatcher } from './media-type.js';

test('media types: parameters and case ignored, wildcards, and +json only where JSON is read', () => {
  assert.equal(mediaTypeOf('Application/JSON; charset=utf-8'), 'application/json');
  assert.equal(mediaTypeOf(undefined), '');
  assert.equal(isJsonMediaType('application/merge-patch+json'), true);
  assert.equal(isJsonMediaType('text/json-ish'), false);
  const plain = new MediaTypeMatcher(['application/json', 'image/*']);
  assert.equal(plain.matches('image/png'), true);
  assert.equal(plain.matches('application/problem+json'), false, 'an allow list of types means exactly those');
  const json = new MediaTypeMatcher(['application/json'], { jsonSuffix: true });
  assert.equal(json.matches('application/problem+json'), true);
  assert.equal(new MediaTypeMatcher(['text/plain'], { jsonSuffix: true }).matches('application/problem+json'), false);
});
