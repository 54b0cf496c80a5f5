/**
 * Retention: the scheduled job deletes request history, old provider sessions and applied webhook events past their
 * periods, never the session a verification record still points at nor an event not applied yet; a verified user
 * keeps passing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { httpRequest, startTestGateway } from '../../testing/harness.js';
import { eventually, kycTestbed, postWebhook } from '../../testing/kyc-testbed.js';
import type { Store } from '../store/store.js';
import type { KycService } from './service.js';
import type { GatewayEvent } from '../pipeline/events.js';

const DAY = 86_400_000;

test('retention job: old history, sessions and applied events deleted; current session and pending events kept', async (t) => {
  const bed = await kycTestbed(t);
  const gw = await startTestGateway(
    bed.config({}, { kyc: { retention: { history_days: 30, sessions_days: 90, webhook_events_days: 7 } } }),
  );
  t.after(() => gw.close());
  const kyc = gw.gateway.services.get<KycService>('kyc');
  const store = gw.gateway.services.get<Store>('store');
  const events: GatewayEvent[] = [];
  gw.gateway.services.events.on('kyc.retention.enforced', (e) => events.push(e));
  const as = { headers: { 'x-user-id': 'rosa', accept: 'application/json' } };
  const sessionId = (JSON.parse((await httpRequest(`${gw.url}/api/x`, as)).body) as { session_id: string }).session_id;
  assert.equal(
    (await postWebhook(gw.url, bed.provider.webhook(sessionId, 'Approved', { eventId: 'evt-now' }))).status,
    200,
  );
  assert.ok(await eventually(async () => (await httpRequest(`${gw.url}/api/x`, as)).status === 200, 5000));

  const now = Date.now();
  await store.query('UPDATE kyc_sessions SET created_at = $1', [now - 200 * DAY]); // the current session, old
  await store.query(
    "INSERT INTO kyc_sessions (provider, session_id, subject, workflow, created_at) VALUES ('testprov', 's-old', 'sub_x', 'full', $1), " +
      "('testprov', 's-recent', 'sub_x', 'full', $2)",
    [now - 100 * DAY, now - 10 * DAY],
  );
  await store.query('INSERT INTO kyc_history (subject, field, value, at) VALUES ($1, $2, 1, $3), ($1, $2, 2, $4)', [
    'sub_x',
    'amount',
    now - 40 * DAY,
    now - DAY,
  ]);
  const insertEvent = (id: string, processedAt: number | null) =>
    store.query(
      'INSERT INTO kyc_webhook_events (provider, event_id, session_id, event_seq, received_at, payload, key_id, ' +
        "processed_at, outcome) VALUES ('testprov', $1, 's-old', 0, $2, '', 'local', $3, $4)",
      [id, now - 20 * DAY, processedAt, processedAt === null ? null : 'applied'],
    );
  await insertEvent('evt-old-applied', now - 10 * DAY);
  await insertEvent('evt-old-pending', null);

  assert.deepEqual(await kyc.enforceRetention(), { history: 1, sessions: 1, webhook_events: 1 });
  const ids = async (sql: string) => (await store.query<{ id: string }>(sql)).map((r) => r.id).sort();
  assert.deepEqual(await ids('SELECT session_id AS id FROM kyc_sessions'), [sessionId, 's-recent'].sort());
  assert.deepEqual(await ids('SELECT event_id AS id FROM kyc_webhook_events'), ['evt-now', 'evt-old-pending']);
  assert.deepEqual(
    (await store.query<{ value: number }>('SELECT value FROM kyc_history')).map((r) => Number(r.value)),
    [2],
  );
  assert.equal(events.length, 1, 'on record');
  assert.deepEqual(await kyc.enforceRetention(), { history: 0, sessions: 0, webhook_events: 0 }, 'idempotent');
  kyc.invalidate(JSON.parse((await httpRequest(`${gw.url}/api/x`, as)).body).headers['x-subject-id']);
  assert.equal((await httpRequest(`${gw.url}/api/x`, as)).status, 200, 'the verified user keeps passing');
});
