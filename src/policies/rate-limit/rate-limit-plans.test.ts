/**
 * Limits by consumer plan end to end: real API keys through the authenticate policy decide the consumer and its
 * plan; the rate-limit policy (a later phase) counts per consumer and applies the plan's limits.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { httpRequest, startTestGateway, startUpstream } from '../../../testing/harness.js';
import type { AuthService } from '../../auth/subsystem.js';

test("consumers get their plan's limits, counted per consumer and per API key", async (t) => {
  const up = await startUpstream((_req, res) => res.end('ok'));
  const gw = await startTestGateway({
    consumers: { bank: { plan: 'gold' }, startup: {} },
    upstreams: { app: { targets: [{ url: up.url }] } },
    routes: [
      {
        name: 'api',
        match: { prefix: '/api' },
        upstream: 'app',
        policies: [
          {
            'rate-limit': {
              limits: [{ name: 'free', rate: 2, per: 'hour', key: ['consumer'] }],
              plans: { gold: [{ name: 'gold', rate: 5, per: 'hour', key: ['consumer'] }] },
            },
          },
          { authenticate: { methods: [{ 'api-key': {} }] } },
        ],
      },
      {
        name: 'per-key',
        match: { prefix: '/keyed' },
        upstream: 'app',
        policies: [
          { authenticate: { methods: [{ 'api-key': {} }] } },
          { 'rate-limit': { limits: [{ rate: 1, per: 'hour', key: ['credential'] }] } },
        ],
      },
    ],
    log: { level: 'warn', access: false },
  });
  t.after(async () => {
    await gw.close();
    await up.close();
  });
  const auth = gw.gateway.services.get<AuthService>('auth');
  const bank = (await auth.createKey({ consumer: 'bank' })).key;
  const bank2 = (await auth.createKey({ consumer: 'bank' })).key;
  const startup = (await auth.createKey({ consumer: 'startup' })).key;
  const call = async (path: string, key: string) =>
    (await httpRequest(gw.url + path, { headers: { 'x-api-key': key } })).status;

  const startupStatuses = [await call('/api', startup), await call('/api', startup), await call('/api', startup)];
  assert.deepEqual(startupStatuses, [200, 200, 429], 'no plan: the default limit');
  const bankStatuses = [];
  // Two keys of one consumer share the consumer's quota.
  for (let i = 0; i < 6; i++) bankStatuses.push(await call('/api', i % 2 === 0 ? bank : bank2));
  assert.deepEqual(bankStatuses, [200, 200, 200, 200, 200, 429], 'gold plan: its own, larger limit');
  const rejected = await httpRequest(gw.url + '/api', { headers: { 'x-api-key': bank } });
  assert.match(String(rejected.headers['ratelimit-policy']), /^"gold";q=5;w=3600$/);
  // Keyed by credential: each key has its own counter.
  assert.deepEqual(
    [await call('/keyed', bank), await call('/keyed', bank), await call('/keyed', bank2)],
    [200, 429, 200],
  );
});
