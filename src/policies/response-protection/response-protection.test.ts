import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { httpRequest, rawRequest, startTestGateway, startUpstream } from '../../../testing/harness.js';

const customer = {
  user: {
    name: 'Ada Lovelace',
    ssn: '123-45-6789',
    email: 'ada@example.com',
    dob: '1815-12-10',
    note: 'VIP since 2019, handle with care',
  },
  items: [
    { iban: 'DE89370400440532013000', amount: 10 },
    { iban: 'FR1420041010050500013M02606', amount: 20 },
  ],
  internal: { db_host: 'pg-7.internal' },
};
const KEY = 'k'.repeat(40);

async function setup(
  t: { after(fn: () => Promise<void>): void },
  policy: Record<string, unknown>,
  handler?: Parameters<typeof startUpstream>[0],
) {
  const seen: Array<string | undefined> = [];
  const up = await startUpstream(
    handler ??
      ((req, res) => {
        seen.push(req.headers['accept-encoding']);
        const body = JSON.stringify(customer);
        res.writeHead(200, {
          'content-type': 'application/json; charset=utf-8',
          server: 'nginx/1.18.0',
          'x-powered-by': 'Express',
          'x-backend': 'node-3',
          'content-length': Buffer.byteLength(body),
        });
        res.end(body);
      }),
  );
  process.env.KYCGATE_TEST_PSEUDONYM_KEY = KEY;
  const gw = await startTestGateway({
    upstreams: { app: { targets: [{ url: up.url }] } },
    routes: [
      {
        name: 'protected',
        match: { prefix: '/customers' },
        upstream: 'app',
        policies: [{ 'response-protection': policy }],
      },
      { name: 'plain', match: { prefix: '/plain' }, upstream: 'app' },
    ],
    log: { level: 'warn', access: false },
  });
  t.after(async () => {
    await gw.close();
    await up.close();
  });
  return { gw, up, seen };
}

test('mask, hash, drop and truncate JSON fields by path; leaky headers removed; content-length fixed', async (t) => {
  const { gw, seen } = await setup(t, {
    hash_key: { env: 'KYCGATE_TEST_PSEUDONYM_KEY' },
    remove_headers: ['X-Backend'],
    fields: [
      { path: '$.user.ssn', action: 'mask', keep_last: 4 },
      { path: '$.items[*].iban', action: 'mask', keep_last: 4, mask_char: 'X' },
      { path: '$.user.email', action: 'hash' },
      { path: '$.internal', action: 'drop' },
      { path: '$.user.dob', action: 'drop' },
      { path: '$.user.note', action: 'truncate', length: 3 },
    ],
  });
  const r = await httpRequest(gw.url + '/customers/1', { headers: { 'accept-encoding': 'gzip' } });
  assert.equal(r.status, 200);
  const body = JSON.parse(r.body);
  assert.equal(body.user.ssn, '*******6789');
  assert.equal(body.items[0].iban, 'XXXXXXXXXXXXXXXXXX3000');
  assert.equal(body.items[1].iban, 'XXXXXXXXXXXXXXXXXXXXXXX2606');
  assert.equal(body.user.email, createHmac('sha256', KEY).update('ada@example.com').digest('base64url').slice(0, 22));
  assert.equal(body.internal, undefined);
  assert.equal(body.user.dob, undefined);
  assert.equal(body.user.note, 'VIP');
  assert.equal(body.user.name, 'Ada Lovelace');
  assert.equal(body.items[1].amount, 20);
  assert.equal(Number(r.headers['content-length']), Buffer.byteLength(r.body));
  assert.equal(r.headers.server, undefined);
  assert.equal(r.headers['x-powered-by'], undefined);
  assert.equal(r.headers['x-backend'], undefined);
  assert.equal(r.headers['x-content-type-options'], 'nosniff');
  assert.equal(seen[0], undefined, 'the upstream is asked for an uncompressed answer');
  // The same value always gives the same pseudonym.
  const again = JSON.parse((await httpRequest(gw.url + '/customers/2')).body);
  assert.equal(again.user.email, body.user.email);
  // A route without the policy is untouched.
  const plain = await httpRequest(gw.url + '/plain');
  assert.equal(JSON.parse(plain.body).user.ssn, '123-45-6789');
  assert.equal(plain.headers.server, 'nginx/1.18.0');
});

test('non-JSON responses stream through unchanged; chunked JSON is buffered and protected', async (t) => {
  const { gw } = await setup(t, { fields: [{ path: '$.secret', action: 'drop' }] }, (req, res) => {
    if (req.url === '/customers/text') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('secret: ');
      res.end('visible');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/vnd.api+json' });
    res.write('{"secret":"s3cr3t",');
    res.end('"ok":true}');
  });
  const text = await httpRequest(gw.url + '/customers/text');
  assert.equal(text.body, 'secret: visible');
  assert.equal(text.headers['transfer-encoding'], 'chunked');
  const json = await httpRequest(gw.url + '/customers/json');
  assert.deepEqual(JSON.parse(json.body), { ok: true });
  assert.equal(json.headers['content-length'], String(Buffer.byteLength(json.body)));
});

test('JSON that cannot be protected (too large, compressed, invalid) is withheld with 502, or passed when configured', async (t) => {
  const big = JSON.stringify({ ssn: '1'.repeat(5000) });
  const handler: Parameters<typeof startUpstream>[0] = (req, res) => {
    if (req.url === '/customers/big') return void res.writeHead(200, { 'content-type': 'application/json' }).end(big);
    if (req.url === '/customers/bigchunked') {
      // No Content-Length: the limit is only found out while buffering.
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write(big.slice(0, 900));
      setTimeout(() => res.end(big.slice(900)), 10);
      return;
    }
    if (req.url === '/customers/gzip')
      return void res
        .writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' })
        .end('\x1f\x8b...');
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"ssn": "123-45-6789", oops');
  };
  const block = await setup(t, { max_body_bytes: 1000, fields: [{ path: '$.ssn', action: 'mask' }] }, handler);
  for (const p of ['/customers/big', '/customers/bigchunked', '/customers/gzip', '/customers/invalid']) {
    const r = await httpRequest(block.gw.url + p);
    assert.equal(r.status, 502, p);
    assert.equal(JSON.parse(r.body).type, 'https://kycgate.dev/problems/response-unprocessable');
    assert.doesNotMatch(r.body, /123-45|1111/);
  }
  const pass = await setup(
    t,
    { max_body_bytes: 1000, on_failure: 'pass', fields: [{ path: '$.ssn', action: 'mask' }] },
    handler,
  );
  for (const p of ['/customers/big', '/customers/bigchunked']) {
    const r = await httpRequest(pass.gw.url + p);
    assert.equal(r.status, 200);
    assert.equal(r.body, big, p);
  }
});

test('gateway answers never reflect request input unescaped', async (t) => {
  const { gw } = await setup(t, { fields: [] });
  const raw = await rawRequest(
    gw.port,
    'GET /nothing/<script>alert(1)</script>?q=<img/src=x> HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n',
  );
  assert.match(raw, /^HTTP\/1\.1 40\d/);
  assert.doesNotMatch(raw, /<script>|<img/);
  assert.match(raw, /content-type: application\/problem\+json/i);
  const r = await httpRequest(gw.url + '/customers/%3Cscript%3E');
  assert.equal(r.headers['x-content-type-options'], 'nosniff');
});
