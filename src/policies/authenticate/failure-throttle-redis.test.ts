/**
 * The failed-authentication throttle counts across instances through real Redis: guesses spread over two gateways
 * reach the limit together, and both refuse the address from then on; with Redis gone, each instance still
 * throttles on its own count.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { httpRequest, startTestGateway, type TestGateway } from '../../../testing/harness.js';
import { REDIS_URL, requireRedis, uniqueName } from '../../../testing/services.js';
import { eventually } from '../../../testing/kyc-testbed.js';
import { startPrivateRedis } from '../../../testing/redis-server.js';
import type { RedisService } from '../../shared/redis.js';

const MAX_FAILURES = 4;

function config(redisUrl: string, prefix: string) {
  return {
    redis: { url: redisUrl, key_prefix: `${prefix}:`, command_timeout_ms: 1000 },
    // Each client is an address of its own (the test's requests all come from 127.0.0.1).
    server: { trusted_proxies: ['127.0.0.1'] },
    routes: [
      {
        name: 'guarded',
        match: { prefix: '/api' },
        policies: [
          {
            authenticate: {
              methods: [{ 'api-key': {} }],
              failure_limit: { max_failures: MAX_FAILURES, window_s: 600 },
            },
          },
          { 'static-response': { body: 'in' } },
        ],
      },
    ],
    log: { level: 'warn', access: false },
  };
}

async function pair(t: { after(fn: () => Promise<void>): void }, redisUrl: string) {
  const prefix = uniqueName('af');
  const a = await startTestGateway(config(redisUrl, prefix));
  const b = await startTestGateway(config(redisUrl, prefix));
  t.after(async () => {
    await a.close();
    await b.close();
  });
  // Connected to Redis before the test counts on it (until then failures are counted by each instance alone).
  for (const gw of [a, b]) {
    const client = gw.gateway.services.get<RedisService>('redis').client;
    // (not events.once: a failed attempt emits 'error', and the client keeps trying)
    if (client.status !== 'ready') await new Promise((resolve) => client.once('ready', resolve));
  }
  return [a, b] as const;
}

const guess = (gw: TestGateway, client: string) =>
  httpRequest(`${gw.url}/api/x`, { headers: { 'x-api-key': 'not-a-key', 'x-forwarded-for': client } });
/** A request without a credential: never counted, refused 429 only once the address is throttled. */
const knock = async (gw: TestGateway, client: string) =>
  (await httpRequest(`${gw.url}/api/x`, { headers: { 'x-forwarded-for': client } })).status;

test('guesses spread over two instances sharing Redis reach the limit together; both refuse the address', async (t) => {
  if (!(await requireRedis(t))) return;
  const [a, b] = await pair(t, REDIS_URL);
  const client = '198.51.100.20';
  // Two guesses on each: neither instance's own count reaches the limit of four.
  for (const gw of [a, b, a, b]) assert.equal((await guess(gw, client)).status, 401);
  // The fourth guess reached the shared limit: both instances now refuse the address, with or without a credential.
  for (const gw of [a, b])
    assert.ok(await eventually(async () => (await knock(gw, client)) === 429, 5000, 20), 'throttled on both');
  const refused = await guess(b, client);
  assert.equal(refused.status, 429);
  assert.ok(Number(refused.headers['retry-after']) > 500, 'until the shared window ends');
  // Another address is untouched.
  assert.equal(await knock(a, '198.51.100.21'), 401);
  assert.equal(await knock(b, '198.51.100.21'), 401);
});

test('with Redis unreachable, each instance throttles on its own count', async (t) => {
  if (!(await requireRedis(t))) return;
  const redis = await startPrivateRedis();
  t.after(() => redis.close());
  const [a, b] = await pair(t, redis.url);
  await redis.kill();
  const client = '198.51.100.30';
  for (const gw of [a, b, a, b]) assert.equal((await guess(gw, client)).status, 401);
  assert.equal(await knock(a, client), 401, 'two guesses here: under the limit');
  for (let i = 0; i < MAX_FAILURES - 2; i++) assert.equal((await guess(a, client)).status, 401);
  assert.equal(await knock(a, client), 429, 'four guesses here: throttled without Redis');
});
