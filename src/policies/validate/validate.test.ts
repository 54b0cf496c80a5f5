import { test } from 'node:test';
import assert from 'node:assert/strict';
import { httpRequest, rawRequest, startTestGateway, startUpstream, statusOf } from '../../../testing/harness.js';

const payment = {
  type: 'object',
  properties: {
    amount: { type: 'integer', minimum: 1, maximum: 100000 },
    currency: { enum: ['EUR', 'USD'] },
    iban: { type: 'string', pattern: '^[A-Z]{2}[0-9A-Z]{10,30}$' },
    note: { type: 'string', maxLength: 140 },
  },
  required: ['amount', 'currency', 'iban'],
} as const;

async function setup(t: { after(fn: () => Promise<void>): void }, policy: Record<string, unknown>) {
  const bodies: string[] = [];
  const up = await startUpstream((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      bodies.push(Buffer.concat(chunks).toString());
      res.end('ok');
    });
  });
  const gw = await startTestGateway({
    upstreams: { app: { targets: [{ url: up.url }] } },
    routes: [
      {
        name: 'payments',
        match: { path: '/accounts/:account/payments' },
        upstream: 'app',
        max_body_bytes: 1024,
        policies: [{ validate: policy }],
      },
    ],
    log: { level: 'warn', access: false },
  });
  t.after(async () => {
    await gw.close();
    await up.close();
  });
  const post = (
    body: string | Buffer,
    headers: Record<string, string> = { 'content-type': 'application/json' },
    path = '/accounts/12/payments',
  ) => httpRequest(gw.url + path, { method: 'POST', headers, body });
  const events: Array<{ type: string; data?: Record<string, unknown> }> = [];
  gw.gateway.services.events.subscribe({ onEvent: (e) => void events.push(e) });
  return { up, gw, bodies, post, events };
}

test('oversized, malformed, wrong-type and schema-violating bodies all get 4xx problem+json and never reach the upstream', async (t) => {
  const { up, gw, post } = await setup(t, {
    body: payment,
    body_required: true,
    params: { type: 'object', properties: { account: { type: 'integer' } } },
  });
  const secret = 'DE89370400440532013000';
  const cases: Array<
    [string, Promise<{ status: number; headers: Record<string, unknown>; body: string }>, number, string]
  > = [
    [
      'oversized',
      post(JSON.stringify({ amount: 1, currency: 'EUR', iban: secret, note: 'x'.repeat(2000) })),
      413,
      'payload-too-large',
    ],
    ['malformed', post('{"amount": 1, "currency": '), 400, 'malformed-json'],
    [
      'wrong type',
      post('amount=1', { 'content-type': 'application/x-www-form-urlencoded' }),
      415,
      'unsupported-media-type',
    ],
    ['schema', post(JSON.stringify({ amount: 'lots', currency: 'GBP', iban: 'nope<script>' })), 400, 'invalid-request'],
    ['missing body', httpRequest(gw.url + '/accounts/12/payments', { method: 'POST' }), 400, 'invalid-request'],
    [
      'bad param',
      post(JSON.stringify({ amount: 1, currency: 'EUR', iban: secret }), undefined, '/accounts/abc/payments'),
      400,
      'invalid-request',
    ],
  ];
  for (const [name, pending, status, kind] of cases) {
    const r = await pending;
    assert.equal(r.status, status, name);
    assert.equal(r.headers['content-type'], 'application/problem+json', name);
    assert.equal(JSON.parse(r.body).type, `https://kycgate.dev/problems/${kind}`, name);
    assert.doesNotMatch(r.body, /lots|GBP|nope|script|DE89/, `${name}: no value is echoed`);
  }
  // A chunked oversized body (no Content-Length) is cut off by the body limit too.
  const chunk = 'x'.repeat(600);
  const raw = await rawRequest(
    gw.port,
    `POST /accounts/12/payments HTTP/1.1\r\nHost: a\r\nContent-Type: ` +
      `application/json\r\nTransfer-Encoding: chunked\r\n\r\n258\r\n${chunk}\r\n258\r\n${chunk}\r\n0\r\n\r\n`,
  );
  assert.equal(statusOf(raw), 413);
  assert.equal(up.requests, 0, 'the upstream saw none of them');

  const ok = await post(JSON.stringify({ amount: 250, currency: 'EUR', iban: secret }));
  assert.equal(ok.status, 200);
  assert.equal(up.requests, 1);
});

test('validation errors name each failing field as a JSON pointer', async (t) => {
  const { post, events } = await setup(t, { body: payment });
  const r = await post(JSON.stringify({ amount: 0, currency: 'GBP', extra: 1 }));
  assert.equal(r.status, 400);
  const pointers = (JSON.parse(r.body).errors as Array<{ pointer: string }>).map((e) => e.pointer).sort();
  assert.deepEqual(pointers, ['/body/amount', '/body/currency', '/body/extra', '/body/iban']);
  const failed = events.filter((e) => e.type === 'validation.failed');
  assert.equal(failed.length, 1);
  assert.deepEqual((failed[0]!.data!.fields as string[]).sort(), pointers);
  assert.doesNotMatch(JSON.stringify(failed[0]), /GBP/);
});

test('unknown fields: strip removes them before forwarding; allow keeps them', async (t) => {
  const strip = await setup(t, { body: payment, unknown_fields: 'strip' });
  const r = await strip.post(
    JSON.stringify({ amount: 5, currency: 'USD', iban: 'DE89370400440532013000', is_admin: true }),
  );
  assert.equal(r.status, 200);
  assert.deepEqual(JSON.parse(strip.bodies[0]!), { amount: 5, currency: 'USD', iban: 'DE89370400440532013000' });
  const allow = await setup(t, { body: payment, unknown_fields: 'allow' });
  assert.equal(
    (await allow.post(JSON.stringify({ amount: 5, currency: 'USD', iban: 'DE89370400440532013000', x: 1 }))).status,
    200,
  );
  assert.equal(JSON.parse(allow.bodies[0]!).x, 1);
});

test('query and header schemas, with string coercion for numbers', async (t) => {
  const { gw, up } = await setup(t, {
    query: {
      type: 'object',
      properties: { limit: { type: 'integer', maximum: 50 }, tag: { type: 'array', items: { type: 'string' } } },
    },
    headers: {
      type: 'object',
      properties: { 'x-tenant': { type: 'string', pattern: '^[a-z]+$' } },
      required: ['x-tenant'],
    },
  });
  const get = (q: string, headers: Record<string, string>) =>
    httpRequest(gw.url + '/accounts/1/payments' + q, { headers });
  assert.equal((await get('?limit=10&tag=a&tag=b', { 'x-tenant': 'acme' })).status, 200);
  const bad = await get('?limit=500&debug=1', { 'x-tenant': 'ACME' });
  assert.equal(bad.status, 400);
  const pointers = (JSON.parse(bad.body).errors as Array<{ pointer: string }>).map((e) => e.pointer).sort();
  assert.deepEqual(pointers, ['/headers/x-tenant', '/query/debug', '/query/limit']);
  assert.equal((await get('', {})).status, 400);
  assert.equal(up.requests, 1);
});
