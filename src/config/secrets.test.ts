import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestGateway } from '../../testing/harness.js';
import { connectionUrl } from './secrets.js';

const ROUTES = [{ name: 'r', match: { prefix: '/' }, policies: [{ 'static-response': {} }] }];

test('a password written into a connection URL is refused, in the user info or as a query parameter', async () => {
  const resolve = () => 'postgres://u:from-secret@db/app';
  assert.equal(
    connectionUrl('postgres://kycgate@db:5432/app?sslmode=require', 'store.postgres.url', resolve),
    'postgres://kycgate@db:5432/app?sslmode=require',
  );
  assert.equal(connectionUrl({ env: 'PG_URL' }, 'store.postgres.url', resolve), 'postgres://u:from-secret@db/app');
  for (const url of [
    'postgres://kycgate:hunter2@db/app',
    'postgres://kycgate@db/app?password=hunter2',
    'redis://:hunter2@cache:6379',
  ]) {
    assert.throws(
      () => connectionUrl(url, 'x.url', resolve),
      (err: Error) => /x\.url: contains a password/.test(err.message) && !err.message.includes('hunter2'),
    );
  }
  assert.throws(() => connectionUrl('not a url', 'x.url', resolve), /x\.url: not a URL/);
  assert.throws(() => connectionUrl(42, 'x.url', resolve), /x\.url: must be a URL or a secret reference/);
});

test('the gateway refuses to start with a password in store.postgres.url or redis.url', async () => {
  await assert.rejects(
    startTestGateway({
      store: { driver: 'postgres', postgres: { url: 'postgres://kycgate@127.0.0.1:1/test?password=hunter2' } },
      routes: ROUTES,
    }),
    (err: Error) => /store\.postgres\.url: contains a password/.test(err.message) && !err.message.includes('hunter2'),
  );
  await assert.rejects(
    startTestGateway({ redis: { url: 'redis://:hunter2@127.0.0.1:1' }, routes: ROUTES }),
    (err: Error) => /redis\.url: contains a password/.test(err.message) && !err.message.includes('hunter2'),
  );
});
