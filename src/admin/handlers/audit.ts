/** Handlers: the audit trail (query, verify, export), every worker's chain read as one. */
import type { AuditService } from '../../audit/subsystem.js';
import { exportTrail, queryTrail, verifyInWorker, type AuditFilter, type TrailCursor } from '../audit-query.js';
import { decodeCursor, encodeCursor, notConfigured, type Call, type Handler } from '../call.js';

/** The trail's directory: this process's chain, or with `server.workers` > 1 the directory of every worker's. */
function trailDir(call: Call): string {
  const audit = call.api.services.find<AuditService>('audit');
  if (!audit?.journal) return notConfigured('The audit journal is off here (audit.enabled).');
  return audit.trailDir;
}

const time = (v: unknown): number | undefined => (v === undefined ? undefined : Date.parse(String(v)));

const isTrailCursor = (v: unknown): v is { chains: TrailCursor; order: string } => {
  const chains = typeof v === 'object' && v !== null ? (v as { chains?: unknown }).chains : undefined;
  return (
    typeof chains === 'object' &&
    chains !== null &&
    Object.values(chains).every((seq) => typeof seq === 'number' && Number.isInteger(seq))
  );
};

export const AUDIT_HANDLERS: Record<string, Handler> = {
  async queryAudit(call) {
    const dir = trailDir(call);
    const q = call.query;
    const filter: AuditFilter = {};
    for (const k of ['request_id', 'consumer', 'subject', 'outcome', 'type', 'route'] as const)
      if (q[k] !== undefined) filter[k] = String(q[k]);
    const since = time(q.since);
    const until = time(q.until);
    if (since !== undefined) filter.since = since;
    if (until !== undefined) filter.until = until;
    const order = q.order as 'asc' | 'desc';
    const cursor = decodeCursor(q.cursor, isTrailCursor);
    const page = await queryTrail(dir, filter, {
      order,
      limit: q.limit as number,
      ...(cursor ? { after: cursor.chains } : {}),
    });
    return {
      body: {
        items: page.items,
        next_cursor: page.next === undefined ? null : encodeCursor({ chains: page.next, order }),
        scanned: page.scanned,
        complete: page.complete,
      },
    };
  },

  async verifyAudit(call) {
    // Every chain of the trail (one per worker with `server.workers` > 1), as `kycgate audit verify` reads them.
    const r = await verifyInWorker(trailDir(call));
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
    const dir = trailDir(call);
    const format = call.query.format as 'jsonl' | 'cef';
    const since = time(call.query.since);
    const until = time(call.query.until);
    return {
      contentType: format === 'jsonl' ? 'application/x-ndjson' : 'text/plain; charset=utf-8',
      stream: exportTrail(dir, {
        format,
        version: call.api.sources.version,
        ...(since !== undefined ? { since } : {}),
        ...(until !== undefined ? { until } : {}),
      }),
    };
  },
};
