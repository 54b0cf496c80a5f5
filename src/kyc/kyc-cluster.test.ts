/**
 * Two gateway instances sharing PostgreSQL and Redis: one provider session for a burst of first requests spread
 * over both, and a webhook received by one instance changes what the other decides within a second.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { httpRequest, startTestGateway } from '../../testing/harness.js';
import { POSTGRES_URL, REDIS_URL, requirePostgres, requireRedis, uniqueName } from '../../testing/services.js';
import { kycTestbed, postWebhook, eventually } from '../../testing/kyc-testbed.js';
import { PostgresStore } from '../store/postgres.js';

test('two instances on PostgreSQL + Redis: one session for 200 concurrent first requests, and a status change is seen by both within 1 s', async (t) => {
  if (!(await requirePostgres(t)) || !(await requireRedis(t))) return;
  const bed = await kycTestbed(t);
  bed.provider.createDelayMs = 200;
  const schema = uniqueName('kyc');
  t.after(async () => {
    const admin = new PostgresStore({ connectionString: POSTGRES_URL, poolSize: 1 });
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => undefined);
    await admin.close();
  });
  const secret = (name: string, value: string) => {
    const file = path.join(bed.dir, name);
    writeFileSync(file, value, { mode: 0o600 });
    return { file };
  };
  const shared = {
    store: { driver: 'postgres', postgres: { url: POSTGRES_URL, schema, pool_size: 4 } },
    redis: { url: REDIS_URL, key_prefix: `${uniqueName('kyc')}:` },
  };
  const config = bed.config(
    {},
    {
      ...shared,
      kyc: {
        subject_key: secret('subject.key', randomBytes(32).toString('hex')),
        encryption_keys: [{ id: 'k1', key: secret('data.key', randomBytes(32).toString('base64')) }],
        assertion: {
          signing_key: secret(
            'assertion.pem',
            generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
          ),
        },
      },
    },
  );
  const a = await startTestGateway(config, { baseDir: bed.dir });
  t.after(() => a.close());
  const b = await startTestGateway(config, { baseDir: bed.dir });
  t.after(() => b.close());
  const as = (user: string) => ({ headers: { 'x-user-id': user, accept: 'application/json' } });

  const answers = await Promise.all(
    Array.from({ length: 200 }, (_, i) => httpRequest(`${(i % 2 === 0 ? a : b).url}/api/pay`, as('lena'))),
  );
  assert.equal(bed.provider.created, 1, 'one provider session across both instances');
  const sessions = new Set(
    answers.map((r) => {
      assert.equal(r.status, 403);
      return (JSON.parse(r.body) as { session_id: string }).session_id;
    }),
  );
  assert.equal(sessions.size, 1);
  const [sessionId] = sessions;

  // Both instances now hold lena's pending state in memory; the webhook reaches only A.
  assert.equal((await httpRequest(`${b.url}/api/pay`, as('lena'))).status, 403);
  assert.equal((await postWebhook(a.url, bed.provider.webhook(sessionId!, 'Approved'))).status, 200);
  const started = Date.now();
  const visible = await eventually(
    async () => (await httpRequest(`${b.url}/api/pay`, as('lena'))).status === 200,
    1000,
    20,
  );
  if (!visible)
    console.log(
      JSON.stringify(a.logs.filter((l) => Number(l.level) >= 40)),
      JSON.stringify(b.logs.filter((l) => Number(l.level) >= 40)),
    );
  assert.ok(visible, 'instance B sees the approval within 1 s');
  assert.ok(Date.now() - started < 1000);

  // Either instance's assertion verifies with either instance's JWKS (shared key).
  const seen = JSON.parse((await httpRequest(`${b.url}/api/pay`, as('lena'))).body) as {
    headers: Record<string, string>;
  };
  const jwks = JSON.parse((await httpRequest(`${a.url}/.well-known/jwks.json`)).body) as { keys: [] };
  const { payload, protectedHeader } = await jwtVerify(seen.headers['x-kycgate-assertion']!, createLocalJWKSet(jwks), {
    audience: 'api',
  });
  assert.equal(protectedHeader.alg, 'EdDSA');
  assert.equal(payload.sub, seen.headers['x-subject-id']);
});
