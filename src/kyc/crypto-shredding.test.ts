/**
 * Erasure by crypto-shredding (GDPR art. 17): a subject's retained personal data is sealed under its own data key;
 * `DELETE /admin/api/v1/subjects/{subject}` (kycgate subjects erase) deletes its rows and that key, so a copy of the
 * sealed data taken before (a backup) can no longer be opened; the audit trail gets a tombstone and `audit verify`
 * still passes over everything written before; a search of the store and the journal finds none of the user's data.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { httpRequest, startTestGateway } from '../../testing/harness.js';
import { AdminClient } from '../../testing/admin-client.js';
import { eventually, kycTestbed, postWebhook } from '../../testing/kyc-testbed.js';
import { journalLines, loadPublicKey, verifyJournal } from '../audit/verify.js';
import type { Store } from '../store/store.js';
import { SqliteStore } from '../store/sqlite.js';
import type { KycService } from './service.js';
import { existingSubjectSealer, SUBJECT_KEY_ID } from './subject-keys.js';

test('erasure shreds the subject data key: old copies unreadable, tombstone in the audit trail, audit verify passes', async (t) => {
  const bed = await kycTestbed(t);
  const gw = await startTestGateway(
    bed.config(
      { required_claims: ['age_over_18'] },
      {
        admin: { port: 0, api: { enabled: true, key_file: { path: 'admin-key' } } },
        audit: { enabled: true },
        kyc: {
          workflows: {
            full: {
              provider: 'testprov',
              workflow_id: 'wf-full',
              claims: { age_over_18: 'age(personal.date_of_birth) >= 18', kyc_full: 'true' },
              retain_personal: ['first_name', 'last_name', 'date_of_birth'],
            },
          },
        },
      },
    ),
    { dataDir: path.join(bed.dir, 'data') },
  );
  t.after(() => gw.close());
  const admin = new AdminClient(gw.adminUrl, readFileSync(path.join(gw.dataDir, 'admin-key'), 'utf8').trim());
  const kyc = gw.gateway.services.get<KycService>('kyc');
  const store = gw.gateway.services.get<Store>('store');
  const as = (user: string) => ({ headers: { 'x-user-id': user, accept: 'application/json' } });

  const verify = async (user: string, personal: { firstName: string; lastName: string; dateOfBirth: string }) => {
    const challenge = await httpRequest(`${gw.url}/api/x`, as(user));
    const sessionId = (JSON.parse(challenge.body) as { session_id: string }).session_id;
    assert.equal((await postWebhook(gw.url, bed.provider.webhook(sessionId, 'Approved', { personal }))).status, 200);
    assert.ok(await eventually(async () => (await httpRequest(`${gw.url}/api/x`, as(user))).status === 200, 5000));
    const seen = JSON.parse((await httpRequest(`${gw.url}/api/x`, as(user))).body) as {
      headers: Record<string, string>;
    };
    return seen.headers['x-subject-id']!;
  };
  const petra = await verify('petra.novak@example.test', {
    firstName: 'Petra',
    lastName: 'Novakova',
    dateOfBirth: '1988-11-23',
  });
  const quinn = await verify('quinn@example.test', {
    firstName: 'Quinn',
    lastName: 'Ostrowski',
    dateOfBirth: '1979-02-14',
  });

  // Sealed under the subject's own key, not the shared one.
  const rowOf = async (subject: string) =>
    (
      await store.query<{ personal: string; key_id: string; provider: string; workflow: string }>(
        'SELECT personal, key_id, provider, workflow FROM kyc_verifications WHERE subject = $1',
        [subject],
      )
    )[0]!;
  const backup = await rowOf(petra);
  assert.equal(backup.key_id, SUBJECT_KEY_ID);
  assert.match(backup.personal, new RegExp(`^v1\\.${SUBJECT_KEY_ID}\\.`));
  const context = `personal:${petra}:${backup.provider}:${backup.workflow}`;
  const before = await existingSubjectSealer(store, kyc.setup.sealer, petra);
  assert.deepEqual(JSON.parse(before!.open(backup.personal, context)), {
    first_name: 'Petra',
    last_name: 'Novakova',
    date_of_birth: '1988-11-23',
  });
  assert.throws(() => kyc.setup.sealer.open(backup.personal, context), 'the shared key does not open it');

  // Erase Petra.
  const erased = await admin.call<{ erased: { verifications: number } }>('eraseSubject', {
    params: { subject: petra },
  });
  assert.equal(erased.status, 200, erased.text);
  assert.equal(erased.body.erased.verifications, 1);
  assert.equal(await existingSubjectSealer(store, kyc.setup.sealer, petra), undefined, 'her data key is destroyed');
  assert.equal((await admin.call('getSubject', { params: { subject: petra } })).status, 404, 'nothing left of her');
  // A copy taken before the erasure is now noise: nothing configured can open it.
  assert.throws(() => kyc.setup.sealer.open(backup.personal, context));
  // Quinn is untouched.
  const q = await rowOf(quinn);
  const qSealer = await existingSubjectSealer(store, kyc.setup.sealer, quinn);
  assert.equal(
    JSON.parse(qSealer!.open(q.personal, `personal:${quinn}:${q.provider}:${q.workflow}`)).first_name,
    'Quinn',
  );

  // Nothing of Petra in the store or the journal (a dump of every KYC table, and every journal line).
  await gw.close();
  const auditDir = path.join(gw.dataDir, 'audit');
  const journal = [...journalLines(auditDir)].map((l) => l.line);
  assert.ok(
    journal.some((line) => line.includes('"admin.subject.erased"') && line.includes(petra)),
    `tombstone written: ${journal.map((l) => (JSON.parse(l) as { type: string }).type).join(' ')}`,
  );
  const result = verifyJournal(auditDir, loadPublicKey(auditDir));
  assert.equal(result.ok, true, result.problem?.message);
  const reopened = new SqliteStore(path.join(gw.dataDir, 'kycgate.db'));
  t.after(() => reopened.close());
  let dump = '';
  for (const table of ['kyc_verifications', 'kyc_sessions', 'kyc_webhook_events', 'kyc_history', 'kyc_subject_keys'])
    dump += JSON.stringify(await reopened.query(`SELECT * FROM ${table}`));
  assert.ok(dump.includes(quinn), 'the dump does read the store');
  const haystack = dump + journal.join('\n');
  for (const needle of ['Petra', 'Novakova', '1988-11-23', 'petra.novak@example.test'])
    assert.ok(!haystack.includes(needle), `${needle} found after erasure`);
  assert.ok(!dump.includes(petra), 'no row keyed by her pseudonym is left');
});
