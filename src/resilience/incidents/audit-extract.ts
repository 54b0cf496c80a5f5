/**
 * The audit extract of an incident's window, attached to its reports: the journal's records of the window exactly
 * as stored (so their hashes still check), counted and hashed, optionally written to a file, with the result of
 * verifying the whole journal (hash chain and signed checkpoints) at the time of the report.
 */
import { createHash } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { exportRecords } from '../../audit/export.js';
import { loadPublicKey, verifyJournal } from '../../audit/verify.js';
import type { AuditExtract } from './report.js';

export function auditExtract(auditDir: string, from: number, to: number, file?: string): AuditExtract {
  const window = { from: new Date(from).toISOString(), to: new Date(to).toISOString() };
  if (!existsSync(auditDir))
    return {
      ...window,
      records: 0,
      sha256: createHash('sha256').digest('hex'),
      file: null,
      verification: null,
      note: `no audit journal at ${auditDir} (run where the journal is, or pass --journal)`,
    };
  const hash = createHash('sha256');
  const lines: string[] = [];
  for (const line of exportRecords(auditDir, {
    since: new Date(from),
    until: new Date(to),
    format: 'jsonl',
    version: '0',
  })) {
    hash.update(line + '\n');
    if (file !== undefined) lines.push(line);
  }
  if (file !== undefined) writeFileSync(file, lines.length === 0 ? '' : lines.join('\n') + '\n');
  let verification: AuditExtract['verification'] = null;
  let note: string | null = null;
  try {
    const v = verifyJournal(auditDir, loadPublicKey(auditDir));
    verification = {
      ok: v.ok,
      records: v.records,
      signed_through: v.signedThrough,
      problem: v.problem?.message ?? null,
    };
  } catch (err) {
    note = `journal not verified: ${(err as Error).message}`;
  }
  let records = 0;
  for (const _ of exportRecords(auditDir, {
    since: new Date(from),
    until: new Date(to),
    format: 'jsonl',
    version: '0',
  }))
    records++;
  return { ...window, records, sha256: hash.digest('hex'), file: file ?? null, verification, note };
}
