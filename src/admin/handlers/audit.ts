/** Handlers: this instance's audit journal (query, verify, export). */
import type { AuditService } from '../../audit/subsystem.js';
import { exportJournal, queryJournal, verifyInWorker, type AuditFilter } from '../audit-query.js';
import { decodeCursor, encodeCursor, notConfigured, type Call, type Handler } from '../call.js';

function journalDir(call: Call): string {
  const audit = call.api.services.find<AuditService>('audit');
  if (!audit?.journal) return notConfigured('The audit journal is off here (audit.enabled).');
  return audit.auditDir;
}

const time = (v: unknown): number | undefined => (v === undefined ? undefined : Date.parse(String(v)));

const isSeqCursor = (v: unknown): v is { seq: number; order: string } =>
  typeof v === 'object' && v !== null && typeof (v as { seq?: unknown }).seq === 'number';

export const AUDIT_HANDLERS: Record<string, Handler> = {
  async queryAudit(call) {
    const dir = journalDir(call);
    const q = call.query;
    const filter: AuditFilter = {};
    for (const k of ['request_id', 'consumer', 'subject', 'outcome', 'type', 'route'] as const)
      if (q[k] !== undefined) filter[k] = String(q[k]);
    const since = time(q.since);
    const until = time(q.until);
    if (since !== undefined) filter.since = since;
    if (until !== undefined) filter.until = until;
    const order = q.order as 'asc' | 'desc';
    const cursor = decodeCursor(q.cursor, isSeqCursor);
    const page = await queryJournal(dir, filter, {
      order,
      limit: q.limit as number,
      ...(cursor ? { after: cursor.seq } : {}),
    });
    return {
      body: {
        items: page.items,
        next_cursor: page.next === undefined ? null : encodeCursor({ seq: page.next, order }),
        scanned: page.scanned,
        complete: page.complete,
      },
    };
  },

  async verifyAudit(call) {
    journalDir(call);
    // Every chain of the trail (one per worker with `server.workers` > 1), as `kycgate audit verify` reads them.
    const r = await verifyInWorker(call.api.services.get<AuditService>('audit').trailDir);
    return {
      body: {
        ok: r.ok,
        records: r.records,
        checkpoints: r.checkpoints,
        first_seq: r.firstSeq,
        last_seq: r.lastSeq,
        signed_through: r.signedThrough,
        ...(r.problem ? { problem: r.problem } : {}),
      },
    };
  },

  async exportAudit(call) {
    const dir = journalDir(call);
    const format = call.query.format as 'jsonl' | 'cef';
    const since = time(call.query.since);
    const until = time(call.query.until);
    return {
      contentType: format === 'jsonl' ? 'application/x-ndjson' : 'text/plain; charset=utf-8',
      stream: exportJournal(dir, {
        format,
        version: call.api.sources.version,
        ...(since !== undefined ? { since } : {}),
        ...(until !== undefined ? { until } : {}),
      }),
    };
  },
};
