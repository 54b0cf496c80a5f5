import { test } from 'node:test';
import assert from 'node:assert/strict';
import { httpRequest, startTestGateway, startUpstream } from '../../../testing/harness.js';

test('request and response headers are added, removed and renamed; JSON bodies are mapped both ways', async (t) => {
  const received: Array<{ headers: Record<string, unknown>; body: string }> = [];
  const up = await startUpstream((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString() });
      res.writeHead(200, { 'content-type': 'application/json', 'x-internal-id': '42', 'x-old': 'v' });
      res.end(JSON.stringify({ data: { customer_id: 7, score: 0.3 }, debug: { trace: 'x' } }));
    });
  });
  const gw = await startTestGateway({
    upstreams: { app: { targets: [{ url: up.url }] } },
    routes: [
      {
        name: 'mapped',
        match: { prefix: '/v2' },
        upstream: 'app',
        policies: [
          {
            transform: {
              request: {
                headers: {
                  add: { 'x-api-version': '2' },
                  remove: ['x-debug'],
                  rename: { 'x-client-ref': 'x-reference' },
                },
                body: {
                  rename: { '$.customer.name': '$.full_name' },
                  remove: ['$.tracking', '$.items[*].internal'],
                  set: { '$.meta.source': 'gateway' },
                },
              },
              response: {
                headers: {
                  add: { 'cache-control': 'no-store' },
                  remove: ['x-internal-id'],
                  rename: { 'x-old': 'x-new' },
                },
                body: {
                  rename: { '$.data.customer_id': '$.data.customerId' },
                  remove: ['$.debug'],
                  set: { '$.version': 2 },
                },
              },
            },
          },
        ],
      },
    ],
    log: { level: 'warn', access: false },
  });
  t.after(async () => {
    await gw.close();
    await up.close();
  });
  const r = await httpRequest(gw.url + '/v2/customers', {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-debug': '1', 'x-client-ref': 'abc' },
    body: JSON.stringify({ customer: { name: 'Ada' }, tracking: 'utm', items: [{ id: 1, internal: true }] }),
  });
  assert.equal(r.status, 200);
  const sent = received[0]!;
  assert.equal(sent.headers['x-api-version'], '2');
  assert.equal(sent.headers['x-debug'], undefined);
  assert.equal(sent.headers['x-client-ref'], undefined);
  assert.equal(sent.headers['x-reference'], 'abc');
  assert.deepEqual(JSON.parse(sent.body), {
    customer: {},
    items: [{ id: 1 }],
    full_name: 'Ada',
    meta: { source: 'gateway' },
  });
  assert.equal(Number(sent.headers['content-length']), Buffer.byteLength(sent.body));
  assert.equal(r.headers['cache-control'], 'no-store');
  assert.equal(r.headers['x-internal-id'], undefined);
  assert.equal(r.headers['x-new'], 'v');
  assert.deepEqual(JSON.parse(r.body), { data: { score: 0.3, customerId: 7 }, version: 2 });

  // Malformed JSON in a mapped request body is refused before the upstream.
  const bad = await httpRequest(gw.url + '/v2/x', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{nope',
  });
  assert.equal(bad.status, 400);
  assert.equal(received.length, 1);
  // Non-JSON bodies pass untouched.
  await httpRequest(gw.url + '/v2/x', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hello' });
  assert.equal(received[1]!.body, 'hello');
});
