/**
 * The re-encryption job of key rotation: after a new key is put first in `kyc.encryption_keys`, every value sealed
 * under an older one (subject data keys, hosted session links, legacy personal fields, webhook payloads kept for a
 * replay) is opened and sealed again under the current key, in batches, each row updated only if it still holds
 * the value read (a concurrent change wins). Once it has run, the old key can be removed from the config.
 */
import type { DataSealer } from './sealed-data.js';
import { SUBJECT_KEY_ID } from './subject-keys.js';
import type { VerificationStore } from './verification-store.js';

const BATCH = 500;

export interface Reencrypted {
  subject_keys: number;
  session_links: number;
  personal: number;
  webhook_events: number;
}

export async function reencryptAll(records: VerificationStore, sealer: DataSealer): Promise<Reencrypted> {
  const store = records.store;
  const current = sealer.currentKeyId;
  const prefix = `v1.${current}.%`;
  const done: Reencrypted = { subject_keys: 0, session_links: 0, personal: 0, webhook_events: 0 };
  const again = (value: string, context: string) => sealer.seal(sealer.open(value, context), context);

  for (;;) {
    const rows = await store.query<{ subject: string; wrapped: string }>(
      `SELECT subject, wrapped FROM kyc_subject_keys WHERE key_id <> $1 LIMIT ${BATCH}`,
      [current],
    );
    for (const r of rows) {
      const wrapped = again(r.wrapped, `subject-key:${r.subject}`);
      await store.query('UPDATE kyc_subject_keys SET wrapped = $1, key_id = $2 WHERE subject = $3 AND wrapped = $4', [
        wrapped,
        current,
        r.subject,
        r.wrapped,
      ]);
      done.subject_keys++;
    }
    if (rows.length < BATCH) break;
  }
  for (;;) {
    const rows = await store.query<{
      subject: string;
      provider: string;
      workflow: string;
      session_id: string;
      session_url: string;
    }>(
      `SELECT subject, provider, workflow, session_id, session_url FROM kyc_verifications
       WHERE session_url IS NOT NULL AND session_url NOT LIKE $1 LIMIT ${BATCH}`,
      [prefix],
    );
    for (const r of rows) {
      const url = again(r.session_url, `session-url:${r.provider}:${r.session_id}`);
      await store.query(
        'UPDATE kyc_verifications SET session_url = $1 WHERE subject = $2 AND provider = $3 AND workflow = $4 AND session_url = $5',
        [url, r.subject, r.provider, r.workflow, r.session_url],
      );
      done.session_links++;
    }
    if (rows.length < BATCH) break;
  }
  for (;;) {
    // Fields sealed before per-subject keys existed are under the shared key: sealed again under it, current.
    const rows = await store.query<{ subject: string; provider: string; workflow: string; personal: string }>(
      `SELECT subject, provider, workflow, personal FROM kyc_verifications
       WHERE personal IS NOT NULL AND key_id <> $1 AND key_id <> $2 LIMIT ${BATCH}`,
      [current, SUBJECT_KEY_ID],
    );
    for (const r of rows) {
      const personal = again(r.personal, `personal:${r.subject}:${r.provider}:${r.workflow}`);
      await store.query(
        'UPDATE kyc_verifications SET personal = $1, key_id = $2 WHERE subject = $3 AND provider = $4 AND workflow = $5 AND personal = $6',
        [personal, current, r.subject, r.provider, r.workflow, r.personal],
      );
      done.personal++;
    }
    if (rows.length < BATCH) break;
  }
  for (;;) {
    const rows = await store.query<{ provider: string; event_id: string; payload: string }>(
      `SELECT provider, event_id, payload FROM kyc_webhook_events WHERE payload <> '' AND key_id <> $1 LIMIT ${BATCH}`,
      [current],
    );
    for (const r of rows) {
      const payload = again(r.payload, `webhook-event:${r.provider}:${r.event_id}`);
      await store.query(
        'UPDATE kyc_webhook_events SET payload = $1, key_id = $2 WHERE provider = $3 AND event_id = $4 AND payload = $5',
        [payload, current, r.provider, r.event_id, r.payload],
      );
      done.webhook_events++;
    }
    if (rows.length < BATCH) break;
  }
  return done;
}
