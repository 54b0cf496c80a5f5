/** Route matching: host, method and path (exact, prefix, parameters), most specific first. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestGateway, httpRequest } from '../../testing/harness.js';

const reply = (body: string) => [{ 'static-response': { body } }];

test('routing: static beats parameter beats prefix; host-bound beats any-host; methods filter', async (t) => {
  const gw = await startTestGateway({
    routes: [
      { name: 'prefix', match: { prefix: '/users' }, policies: reply('prefix') },
      { name: 'param', match: { path: '/users/:id' }, policies: reply('param') },
      { name: 'static', match: { path: '/users/me' }, policies: reply('static') },
      { name: 'host', match: { hosts: ['api.example.test'], path: '/users/me' }, policies: reply('host') },
      { name: 'wildcard-host', match: { hosts: ['*.tenant.test'], prefix: '/' }, policies: reply('tenant') },
      { name: 'post-only', match: { path: '/submit', methods: ['POST'] }, policies: reply('post') },
      { name: 'exact', match: { path: '/exact' }, policies: reply('exact') },
    ],
  });
  t.after(() => gw.close());
  const get = async (path: string, headers: Record<string, string> = {}, method = 'GET') => {
    const r = await httpRequest(gw.url + path, { headers, method });
    return r.status === 200 ? r.body : r.status;
  };
  assert.equal(await get('/users/me'), 'static');
  assert.equal(await get('/users/42'), 'param');
  assert.equal(await get('/users/42/orders'), 'prefix');
  assert.equal(await get('/users'), 'prefix');
  assert.equal(await get('/usersx'), 404, 'a prefix matches on segment boundaries');
  assert.equal(await get('/users/me', { host: 'api.example.test' }), 'host');
  assert.equal(await get('/users/me', { host: 'API.Example.Test:8080' }), 'host', 'host match ignores case and port');
  assert.equal(await get('/anything', { host: 'a.tenant.test' }), 'tenant');
  assert.equal(await get('/anything', { host: 'a.b.tenant.test' }), 404, 'a wildcard host matches one label');
  assert.equal(await get('/submit', {}, 'POST'), 'post');
  assert.equal(await get('/submit'), 404);
  assert.equal(await get('/exact'), 'exact');
  assert.equal(await get('/exact/more'), 404);
  assert.equal(await get('/exact?q=1'), 'exact');
});
