/**
 * Armed faults in the shared store: `kycgate faults arm` writes a row, every gateway instance reads the active ones
 * (a cheap indexed query each poll), and a disarm or the end of `until` takes them out everywhere. Rows are kept
 * after they end: they are the record of what was injected when.
 */
import { randomUUID } from 'node:crypto';
import type { Migration, Queryable, Store } from '../../store/store.js';
import type { ArmedFault, FaultSpec, FaultTargetKind } from './spec.js';

export const FAULT_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'armed faults',
    sql: `CREATE TABLE resilience_faults (
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  target TEXT NOT NULL,
  spec TEXT NOT NULL,
  armed_by TEXT NOT NULL,
  reason TEXT NOT NULL,
  armed_at BIGINT NOT NULL,
  until_at BIGINT NOT NULL,
  allow_critical INTEGER NOT NULL,
  disarmed_at BIGINT,
  disarmed_by TEXT
);
CREATE INDEX resilience_faults_until ON resilience_faults (until_at)`,
  },
];

interface FaultRow {
  id: string;
  kind: string;
  target: string;
  spec: string;
  armed_by: string;
  reason: string;
  armed_at: number | string;
  until_at: number | string;
  allow_critical: number | boolean;
  disarmed_at: number | string | null;
  disarmed_by: string | null;
}

export interface FaultRecord extends ArmedFault {
  readonly disarmedAt: number | undefined;
  readonly disarmedBy: string | undefined;
}

function fromRow(r: FaultRow): FaultRecord {
  return {
    id: r.id,
    kind: r.kind as FaultTargetKind,
    target: r.target,
    spec: JSON.parse(r.spec) as FaultSpec,
    armedBy: r.armed_by,
    reason: r.reason,
    armedAt: Number(r.armed_at),
    until: Number(r.until_at),
    allowCritical: r.allow_critical === 1 || r.allow_critical === true,
    source: 'store',
    disarmedAt: r.disarmed_at === null ? undefined : Number(r.disarmed_at),
    disarmedBy: r.disarmed_by ?? undefined,
  };
}

export class FaultStore {
  constructor(private readonly store: Store) {}

  migrate(): Promise<void> {
    return this.store.migrate('resilience-faults', FAULT_MIGRATIONS);
  }

  async arm(fault: Omit<ArmedFault, 'id' | 'source'>, db: Queryable = this.store): Promise<FaultRecord> {
    const id = 'flt_' + randomUUID().replace(/-/g, '').slice(0, 16);
    await db.query(
      `INSERT INTO resilience_faults (id, kind, target, spec, armed_by, reason, armed_at, until_at, allow_critical)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
      [
        id,
        fault.kind,
        fault.target,
        JSON.stringify(fault.spec),
        fault.armedBy,
        fault.reason,
        fault.armedAt,
        fault.until,
        fault.allowCritical ? 1 : 0,
      ],
    );
    return { ...fault, id, source: 'store', disarmedAt: undefined, disarmedBy: undefined };
  }

  /** Ends a fault now; false when no such fault is armed. */
  async disarm(id: string, by: string, now: number): Promise<boolean> {
    const rows = await this.store.query<{ id: string }>(
      'UPDATE resilience_faults SET disarmed_at = $2, disarmed_by = $3 WHERE id = $1 AND disarmed_at IS NULL AND until_at > $2 RETURNING id',
      [id, now, by],
    );
    return rows.length > 0;
  }

  /** Faults armed now: not disarmed, `until` still ahead. */
  async active(now: number): Promise<FaultRecord[]> {
    const rows = await this.store.query<FaultRow>(
      'SELECT * FROM resilience_faults WHERE disarmed_at IS NULL AND until_at > $1 ORDER BY armed_at',
      [now],
    );
    return rows.map(fromRow);
  }

  /** Faults armed since `since` (ended or not), newest first: the record of what was injected. */
  async history(since: number, limit = 100): Promise<FaultRecord[]> {
    const rows = await this.store.query<FaultRow>(
      'SELECT * FROM resilience_faults WHERE armed_at >= $1 ORDER BY armed_at DESC LIMIT $2',
      [since, limit],
    );
    return rows.map(fromRow);
  }
}
