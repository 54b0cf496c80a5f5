import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestGateway, httpRequest } from '../../../testing/harness.js';

test('static-response: answers with the configured status, headers and body, and never reaches an upstream', async (t) => {
  const gw = await startTestGateway({
    routes: [
      { name: 'gone', match: { path: '/old' }, policies: [{ 'static-response': { status: 410, body: 'retired', headers: { 'x-why': 'sunset' } } }] },
      { name: 'json', match: { path: '/status' }, policies: [{ 'static-response': { body: '{"ok":true}', content_type: 'application/json' } }] },
    ],
  });
  t.after(() => gw.close());
  const gone = await httpRequest(gw.url + '/old');
  assert.equal(gone.status, 410);
  assert.equal(gone.body, 'retired');
  assert.equal(gone.headers['x-why'], 'sunset');
  assert.ok(gone.headers['x-request-id']);
  const json = await httpRequest(gw.url + '/status');
  assert.equal(json.headers['content-type'], 'application/json');
  assert.deepEqual(JSON.parse(json.body), { ok: true });
  const head = await httpRequest(gw.url + '/status', { method: 'HEAD' });
  assert.equal(head.body, '');
});
