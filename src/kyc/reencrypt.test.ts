/**
 * Key rotation's re-encryption job: with a new key first, every value sealed under the old one (subject data keys,
 * hosted session links, stored webhook payloads) is sealed again under the new key, so the old key can then be
 * removed; a second run finds nothing left to do.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { httpRequest, startTestGateway } from '../../testing/harness.js';
import { eventually, kycTestbed, postWebhook } from '../../testing/kyc-testbed.js';
import type { Store } from '../store/store.js';
import { DataSealer } from './sealed-data.js';
import { reencryptAll } from './reencrypt.js';
import { eventContext, type KycService } from './service.js';

test('re-encryption: values under the old key are sealed again under the new one, which alone then opens them', async (t) => {
  const bed = await kycTestbed(t);
  const k1 = randomBytes(32);
  const k2 = randomBytes(32);
  writeFileSync(path.join(bed.dir, 'k1'), k1.toString('base64'), { mode: 0o600 });
  const gw = await startTestGateway(
    bed.config(
      {},
      {
        kyc: {
          encryption_keys: [{ id: 'k1', key: { file: path.join(bed.dir, 'k1') } }],
          workflows: {
            full: {
              provider: 'testprov',
              workflow_id: 'wf-full',
              claims: { kyc_full: 'true' },
              retain_personal: ['date_of_birth'],
            },
          },
        },
      },
    ),
  );
  t.after(() => gw.close());
  const kyc = gw.gateway.services.get<KycService>('kyc');
  const store = gw.gateway.services.get<Store>('store');
  const as = (user: string) => ({ headers: { 'x-user-id': user, accept: 'application/json' } });
  const sessionOf = async (user: string) =>
    (JSON.parse((await httpRequest(`${gw.url}/api/x`, as(user))).body) as { session_id: string }).session_id;
  const approved = await sessionOf('ada');
  const personal = { firstName: 'Ada', lastName: 'L', dateOfBirth: '1985-12-10' };
  assert.equal((await postWebhook(gw.url, bed.provider.webhook(approved, 'Approved', { personal }))).status, 200);
  assert.ok(await eventually(async () => (await httpRequest(`${gw.url}/api/x`, as('ada'))).status === 200, 5000));
  await sessionOf('bob'); // an unfinished session: its link is sealed
  await store.query(
    'INSERT INTO kyc_webhook_events (provider, event_id, session_id, event_seq, received_at, payload, key_id) ' +
      "VALUES ('testprov', 'evt-kept', 'x', 0, 0, $1, 'k1')",
    [kyc.setup.sealer.seal('{"kept":true}', eventContext('testprov', 'evt-kept'))],
  );

  const rotated = new DataSealer([
    { id: 'k2', key: k2 },
    { id: 'k1', key: k1 },
  ]);
  assert.deepEqual(await reencryptAll(kyc.records, rotated), {
    subject_keys: 1,
    session_links: 1,
    personal: 0,
    webhook_events: 1,
  });
  assert.deepEqual(await reencryptAll(kyc.records, rotated), {
    subject_keys: 0,
    session_links: 0,
    personal: 0,
    webhook_events: 0,
  });

  const onlyNew = new DataSealer([{ id: 'k2', key: k2 }]);
  const [key] = await store.query<{ subject: string; wrapped: string; key_id: string }>(
    'SELECT * FROM kyc_subject_keys',
  );
  assert.equal(key!.key_id, 'k2');
  assert.equal(Buffer.from(onlyNew.open(key!.wrapped, `subject-key:${key!.subject}`), 'base64').length, 32);
  const [link] = await store.query<{ provider: string; session_id: string; session_url: string }>(
    'SELECT provider, session_id, session_url FROM kyc_verifications WHERE session_url IS NOT NULL',
  );
  assert.match(onlyNew.open(link!.session_url, `session-url:${link!.provider}:${link!.session_id}`), /^http/);
  const [event] = await store.query<{ payload: string; key_id: string }>(
    "SELECT payload, key_id FROM kyc_webhook_events WHERE event_id = 'evt-kept'",
  );
  assert.equal(event!.key_id, 'k2');
  assert.equal(onlyNew.open(event!.payload, eventContext('testprov', 'evt-kept')), '{"kept":true}');
  assert.throws(() =>
    new DataSealer([{ id: 'k1', key: k1 }]).open(
      link!.session_url,
      `session-url:${link!.provider}:${link!.session_id}`,
    ),
  );
});
