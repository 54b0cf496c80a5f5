import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestGateway, startUpstream, httpRequest } from '../../../testing/harness.js';

test('request-headers: sets and removes headers upstream and on the response', async (t) => {
  const upstream = await startUpstream((req, res) => {
    res.setHeader('x-upstream-internal', 'leak');
    res.end(JSON.stringify(req.headers));
  });
  const gw = await startTestGateway({
    upstreams: { u: { targets: [{ url: upstream.url }] } },
    routes: [
      {
        name: 'r',
        match: { prefix: '/' },
        upstream: 'u',
        policies: [
          {
            'request-headers': {
              set: { 'X-Tenant': 'acme' },
              remove: ['cookie'],
              response_set: { 'x-frame-options': 'DENY' },
              response_remove: ['x-upstream-internal'],
            },
          },
        ],
      },
    ],
  });
  t.after(async () => {
    await gw.close();
    await upstream.close();
  });
  const answer = await httpRequest(gw.url + '/', { headers: { cookie: 'session=abc', 'x-tenant': 'spoofed' } });
  const seen = JSON.parse(answer.body) as Record<string, string>;
  assert.equal(seen['x-tenant'], 'acme', "the configured value replaces the client's");
  assert.equal(seen.cookie, undefined);
  assert.equal(answer.headers['x-frame-options'], 'DENY');
  assert.equal(answer.headers['x-upstream-internal'], undefined);
});

test('request-headers: header names and values are validated at config load', async () => {
  await assert.rejects(
    startTestGateway({
      routes: [
        { name: 'r', match: { prefix: '/' }, policies: [{ 'request-headers': { set: { 'bad header': 'x' } } }] },
      ],
    }),
    /request-headers\.set/,
  );
  await assert.rejects(
    startTestGateway({
      routes: [
        { name: 'r', match: { prefix: '/' }, policies: [{ 'request-headers': { set: { 'x-a': 'line\r\nbreak' } } }] },
      ],
    }),
    /request-headers\.set\.x-a/,
  );
});
