/**
 * Crypto-shredding: each subject's personal data is sealed under a data key of its own (AES-256-GCM, 32 random
 * bytes), stored wrapped by the configured encryption key in `kyc_subject_keys`. Erasing the subject deletes that
 * row with the others: every copy of the subject's sealed data (a backup, a replica, a dump taken before) becomes
 * unreadable, while the audit journal, which never holds personal data, stays intact and verifiable.
 */
import { randomBytes } from 'node:crypto';
import type { Store } from '../store/store.js';
import { DataSealer } from './sealed-data.js';

/** Key id of a subject's data key in sealed values (`v1.sk.<nonce>.<ciphertext>`). */
export const SUBJECT_KEY_ID = 'sk';

function wrapContext(subject: string): string {
  return `subject-key:${subject}`;
}

function sealerOf(master: DataSealer, subject: string, wrapped: string): DataSealer {
  const key = Buffer.from(master.open(wrapped, wrapContext(subject)), 'base64');
  return new DataSealer([{ id: SUBJECT_KEY_ID, key }]);
}

/** The subject's own sealer, its data key made (and stored wrapped) on first use; the same on every instance. */
export async function subjectSealer(
  store: Store,
  master: DataSealer,
  subject: string,
  now: number,
): Promise<DataSealer> {
  const found = await store.query<{ wrapped: string }>('SELECT wrapped FROM kyc_subject_keys WHERE subject = $1', [
    subject,
  ]);
  if (found[0]) return sealerOf(master, subject, found[0].wrapped);
  const wrapped = master.seal(randomBytes(32).toString('base64'), wrapContext(subject));
  await store.query(
    'INSERT INTO kyc_subject_keys (subject, wrapped, key_id, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (subject) DO NOTHING',
    [subject, wrapped, master.currentKeyId, now],
  );
  // Another instance may have made one first: the stored key wins.
  const stored = await store.query<{ wrapped: string }>('SELECT wrapped FROM kyc_subject_keys WHERE subject = $1', [
    subject,
  ]);
  return sealerOf(master, subject, stored[0]!.wrapped);
}

/** The subject's sealer if its key still exists (undefined once erased: its data can no longer be opened). */
export async function existingSubjectSealer(
  store: Store,
  master: DataSealer,
  subject: string,
): Promise<DataSealer | undefined> {
  const found = await store.query<{ wrapped: string }>('SELECT wrapped FROM kyc_subject_keys WHERE subject = $1', [
    subject,
  ]);
  return found[0] ? sealerOf(master, subject, found[0].wrapped) : undefined;
}
