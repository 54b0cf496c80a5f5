import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestGateway, httpRequest } from '../../../testing/harness.js';
import { POLICIES_WITH_DECISION_TESTS } from '../../../testing/decision-policies.js';

test('static-response: answers with the configured status, headers and body, and never reaches an upstream', async (t) => {
  const gw = await startTestGateway({
    routes: [
      {
        name: 'gone',
        match: { path: '/old' },
        policies: [{ 'static-response': { status: 410, body: 'retired', headers: { 'x-why': 'sunset' } } }],
      },
      {
        name: 'json',
        match: { path: '/status' },
        policies: [{ 'static-response': { body: '{"ok":true}', content_type: 'application/json' } }],
      },
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

test('a header value Node cannot write is refused when the config is loaded, naming the key', async () => {
  for (const value of ['price in €', 'tab\tok but bell \u0007 is not']) {
    await assert.rejects(
      startTestGateway({
        routes: [
          { name: 'r', match: { path: '/x' }, policies: [{ 'static-response': { headers: { 'x-note': value } } }] },
        ],
      }),
      (err: Error) =>
        /static-response\.headers\/x-note|static-response\.headers\.x-note/.test(err.message) &&
        /pattern/.test(err.message),
    );
  }
  await assert.rejects(
    startTestGateway({
      routes: [
        {
          name: 'r',
          match: { path: '/x' },
          policies: [{ 'static-response': { content_type: 'text/plain; name="ünïcödé €"' } }],
        },
      ],
    }),
    /content_type/,
  );
  await assert.rejects(
    startTestGateway({
      routes: [
        { name: 'r', match: { path: '/x' }, policies: [{ 'request-headers': { set: { 'x-a': 'line\u0001' } } }] },
      ],
    }),
    /request-headers/,
  );
});

test('an answer Node refuses to write is a 500 problem, and the gateway keeps serving', async (t) => {
  const gw = await startTestGateway(
    {
      routes: [
        { name: 'broken', match: { path: '/broken' }, policies: [{ 'test-bad-response-header': {} }] },
        { name: 'fine', match: { path: '/fine' }, policies: [{ 'static-response': { body: 'still here' } }] },
        { name: 'throws', match: { path: '/throws' }, policies: [{ 'test-throw': {} }] },
      ],
    },
    { policies: POLICIES_WITH_DECISION_TESTS },
  );
  t.after(() => gw.close());
  const broken = await httpRequest(gw.url + '/broken');
  assert.equal(broken.status, 500);
  assert.equal(broken.headers['content-type'], 'application/problem+json');
  assert.equal(JSON.parse(broken.body).type, 'https://kycgate.dev/problems/internal-error');
  assert.equal(broken.headers['x-injected'], undefined);
  const thrown = await httpRequest(gw.url + '/throws');
  assert.equal(thrown.status, 500);
  assert.doesNotMatch(thrown.body, /policy internals/, 'the error stays in the log');
  const line = gw.logs.find((l) => l.msg === 'policy failed');
  assert.ok(
    line && line.policy === 'test-throw' && line.route === 'throws' && line.req_id === thrown.headers['x-request-id'],
    'logged with the route, policy and request id',
  );
  const fine = await httpRequest(gw.url + '/fine');
  assert.equal(fine.status, 200);
  assert.equal(fine.body, 'still here');
});
