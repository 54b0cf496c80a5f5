/**
 * Incidents in the shared store, so that instances agree: one open incident per cause (a row in `incidents_open`
 * keyed by the cause, taken by whichever instance sees it first), a timeline of events from every instance, each
 * instance's measured figures (summed when classifying), the classification and the operator's input. An incident
 * no instance has seen for `close_after_ms` is closed by whichever instance notices first.
 */
import { randomUUID } from 'node:crypto';
import type { Migration, Queryable, Store } from '../../store/store.js';
import type { Measures } from './measures.js';

export const INCIDENT_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'incidents, open causes, timelines, figures',
    sql: `CREATE TABLE incidents (
  id TEXT PRIMARY KEY,
  cause TEXT NOT NULL,
  kind TEXT NOT NULL,
  title TEXT NOT NULL,
  status TEXT NOT NULL,
  detected_at BIGINT NOT NULL,
  detected_by TEXT NOT NULL,
  last_seen_at BIGINT NOT NULL,
  closed_at BIGINT,
  classification TEXT,
  classified_at BIGINT,
  override TEXT,
  operator TEXT,
  submissions TEXT
);
CREATE INDEX incidents_detected ON incidents (detected_at);
CREATE INDEX incidents_cause ON incidents (cause, detected_at);
CREATE TABLE incidents_open (
  cause TEXT PRIMARY KEY,
  incident_id TEXT NOT NULL
);
CREATE TABLE incident_events (
  id TEXT PRIMARY KEY,
  incident_id TEXT NOT NULL,
  at BIGINT NOT NULL,
  instance TEXT NOT NULL,
  type TEXT NOT NULL,
  detail TEXT NOT NULL
);
CREATE INDEX incident_events_incident ON incident_events (incident_id, at);
CREATE TABLE incident_measures (
  incident_id TEXT NOT NULL,
  instance TEXT NOT NULL,
  figures TEXT NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (incident_id, instance)
)`,
  },
];

export type IncidentKind = 'upstream' | 'route' | 'provider' | 'audit' | 'store' | 'redis' | 'certificate' | 'attack';

/** What the operator adds: facts the gateway cannot measure, and the report submissions. */
export interface OperatorInput {
  description?: string;
  root_cause?: string;
  actions?: string;
  reputational_impact?: boolean;
  member_states?: string[];
  economic_impact_eur?: number;
  malicious_access?: boolean;
  resolved_at?: string;
  [key: string]: unknown;
}

export interface Override {
  major: boolean;
  justification: string;
  by: string;
  at: number;
}

export interface IncidentEvent {
  at: number;
  instance: string;
  type: string;
  detail: Record<string, unknown>;
}

export interface Incident {
  id: string;
  cause: string;
  kind: IncidentKind;
  title: string;
  status: 'open' | 'closed';
  detectedAt: number;
  detectedBy: string;
  lastSeenAt: number;
  closedAt: number | undefined;
  classification: Record<string, unknown> | undefined;
  classifiedAt: number | undefined;
  override: Override | undefined;
  operator: OperatorInput;
  /** Report kind → when the operator submitted it (epoch ms). */
  submissions: Record<string, number>;
}

interface IncidentRow {
  id: string;
  cause: string;
  kind: string;
  title: string;
  status: string;
  detected_at: number | string;
  detected_by: string;
  last_seen_at: number | string;
  closed_at: number | string | null;
  classification: string | null;
  classified_at: number | string | null;
  override: string | null;
  operator: string | null;
  submissions: string | null;
}

const json = <T>(s: string | null, d: T): T => (s === null ? d : (JSON.parse(s) as T));
const num = (v: number | string | null): number | undefined => (v === null ? undefined : Number(v));

function fromRow(r: IncidentRow): Incident {
  return {
    id: r.id,
    cause: r.cause,
    kind: r.kind as IncidentKind,
    title: r.title,
    status: r.status === 'closed' ? 'closed' : 'open',
    detectedAt: Number(r.detected_at),
    detectedBy: r.detected_by,
    lastSeenAt: Number(r.last_seen_at),
    closedAt: num(r.closed_at),
    classification: json<Record<string, unknown> | undefined>(r.classification, undefined),
    classifiedAt: num(r.classified_at),
    override: json<Override | undefined>(r.override, undefined),
    operator: json<OperatorInput>(r.operator, {}),
    submissions: json<Record<string, number>>(r.submissions, {}),
  };
}

export interface Sighting {
  cause: string;
  kind: IncidentKind;
  title: string;
  detail: Record<string, unknown>;
}

export class IncidentStore {
  constructor(private readonly store: Store) {}

  migrate(): Promise<void> {
    return this.store.migrate('incidents', INCIDENT_MIGRATIONS);
  }

  private event(db: Queryable, incident: string, at: number, instance: string, type: string, detail: object) {
    return db.query(
      'INSERT INTO incident_events (id, incident_id, at, instance, type, detail) VALUES ($1, $2, $3, $4, $5, $6)',
      [randomUUID(), incident, at, instance, type, JSON.stringify(detail)],
    );
  }

  /**
   * This instance sees `s` now: opens the incident of its cause unless one is open (then joins it). Returns the
   * incident id and whether this call opened it.
   */
  async sighted(s: Sighting, instance: string, at: number): Promise<{ id: string; opened: boolean }> {
    return this.store.transaction(async (tx) => {
      const id = 'inc_' + randomUUID().replace(/-/g, '').slice(0, 16);
      const taken = await tx.query<{ incident_id: string }>(
        'INSERT INTO incidents_open (cause, incident_id) VALUES ($1, $2) ON CONFLICT (cause) DO NOTHING RETURNING incident_id',
        [s.cause, id],
      );
      if (taken.length > 0) {
        await tx.query(
          `INSERT INTO incidents (id, cause, kind, title, status, detected_at, detected_by, last_seen_at)
           VALUES ($1, $2, $3, $4, 'open', $5, $6, $5)`,
          [id, s.cause, s.kind, s.title, at, instance],
        );
        await this.event(tx, id, at, instance, 'opened', { title: s.title, ...s.detail });
        return { id, opened: true };
      }
      const open = await tx.query<{ incident_id: string }>('SELECT incident_id FROM incidents_open WHERE cause = $1', [
        s.cause,
      ]);
      const existing = open[0]?.incident_id ?? id;
      await this.event(tx, existing, at, instance, 'seen', { title: s.title, ...s.detail });
      await tx.query('UPDATE incidents SET last_seen_at = $2 WHERE id = $1 AND last_seen_at < $2', [existing, at]);
      return { id: existing, opened: false };
    });
  }

  /** Still seen: pushes back the close. */
  async stillSeen(ids: readonly string[], at: number): Promise<void> {
    for (const id of ids)
      await this.store.query('UPDATE incidents SET last_seen_at = $2 WHERE id = $1 AND last_seen_at < $2', [id, at]);
  }

  async addEvent(id: string, instance: string, type: string, detail: object, at: number): Promise<void> {
    await this.event(this.store, id, at, instance, type, detail);
  }

  async saveMeasures(id: string, instance: string, m: Measures, at: number): Promise<void> {
    await this.store.query(
      `INSERT INTO incident_measures (incident_id, instance, figures, updated_at) VALUES ($1, $2, $3, $4)
       ON CONFLICT (incident_id, instance) DO UPDATE SET figures = excluded.figures, updated_at = excluded.updated_at`,
      [id, instance, JSON.stringify(m), at],
    );
  }

  async measures(id: string): Promise<Array<{ instance: string; figures: Measures }>> {
    const rows = await this.store.query<{ instance: string; figures: string }>(
      'SELECT instance, figures FROM incident_measures WHERE incident_id = $1 ORDER BY instance',
      [id],
    );
    return rows.map((r) => ({ instance: r.instance, figures: JSON.parse(r.figures) as Measures }));
  }

  /** Closes the incidents nobody has seen since `quietSince`; returns those this call closed. */
  async closeQuiet(quietSince: number, instance: string, at: number): Promise<Incident[]> {
    const stale = await this.store.query<IncidentRow>(
      "SELECT * FROM incidents WHERE status = 'open' AND last_seen_at < $1",
      [quietSince],
    );
    const closed: Incident[] = [];
    for (const row of stale) {
      const won = await this.store.transaction(async (tx) => {
        const gone = await tx.query<{ cause: string }>(
          'DELETE FROM incidents_open WHERE cause = $1 AND incident_id = $2 RETURNING cause',
          [row.cause, row.id],
        );
        if (gone.length === 0) return false;
        await tx.query("UPDATE incidents SET status = 'closed', closed_at = $2 WHERE id = $1", [row.id, at]);
        await this.event(tx, row.id, at, instance, 'closed', { last_seen_at: new Date(Number(row.last_seen_at)) });
        return true;
      });
      if (won) closed.push({ ...fromRow(row), status: 'closed', closedAt: at });
    }
    return closed;
  }

  /** What operators did (assessed, override, annotated, submitted) at or after `since`, oldest first. */
  async operatorEvents(since: number): Promise<Array<IncidentEvent & { id: string; incident: string }>> {
    const rows = await this.store.query<{
      id: string;
      incident_id: string;
      at: number | string;
      instance: string;
      type: string;
      detail: string;
    }>(
      `SELECT id, incident_id, at, instance, type, detail FROM incident_events
       WHERE at >= $1 AND type IN ('assessed', 'override', 'annotated', 'submitted') ORDER BY at, id`,
      [since],
    );
    return rows.map((r) => ({
      id: r.id,
      incident: r.incident_id,
      at: Number(r.at),
      instance: r.instance,
      type: r.type,
      detail: JSON.parse(r.detail) as Record<string, unknown>,
    }));
  }

  async get(id: string): Promise<Incident | undefined> {
    const rows = await this.store.query<IncidentRow>('SELECT * FROM incidents WHERE id = $1', [id]);
    return rows[0] === undefined ? undefined : fromRow(rows[0]);
  }

  async timeline(id: string): Promise<IncidentEvent[]> {
    const rows = await this.store.query<{ at: number | string; instance: string; type: string; detail: string }>(
      'SELECT at, instance, type, detail FROM incident_events WHERE incident_id = $1 ORDER BY at, id',
      [id],
    );
    return rows.map((r) => ({
      at: Number(r.at),
      instance: r.instance,
      type: r.type,
      detail: JSON.parse(r.detail) as Record<string, unknown>,
    }));
  }

  /** Incidents detected in [from, to), or still open then, newest first. */
  async list(from: number, to: number, limit = 200): Promise<Incident[]> {
    const rows = await this.store.query<IncidentRow>(
      `SELECT * FROM incidents WHERE detected_at < $2 AND (closed_at IS NULL OR closed_at >= $1)
       ORDER BY detected_at DESC LIMIT $3`,
      [from, to, limit],
    );
    return rows.map(fromRow);
  }

  /** Earlier incidents of the same cause detected since `since` (recurring incidents). */
  async sameCause(cause: string, since: number, before: number): Promise<Incident[]> {
    const rows = await this.store.query<IncidentRow>(
      'SELECT * FROM incidents WHERE cause = $1 AND detected_at >= $2 AND detected_at < $3 ORDER BY detected_at',
      [cause, since, before],
    );
    return rows.map(fromRow);
  }

  async setClassification(id: string, classification: object, at: number): Promise<void> {
    await this.store.query('UPDATE incidents SET classification = $2, classified_at = $3 WHERE id = $1', [
      id,
      JSON.stringify(classification),
      at,
    ]);
  }

  async setOverride(id: string, override: Override | undefined): Promise<void> {
    await this.store.query('UPDATE incidents SET override = $2 WHERE id = $1', [
      id,
      override === undefined ? null : JSON.stringify(override),
    ]);
  }

  async setOperator(id: string, input: OperatorInput): Promise<void> {
    await this.store.query('UPDATE incidents SET operator = $2 WHERE id = $1', [id, JSON.stringify(input)]);
  }

  async setSubmissions(id: string, submissions: Record<string, number>): Promise<void> {
    await this.store.query('UPDATE incidents SET submissions = $2 WHERE id = $1', [id, JSON.stringify(submissions)]);
  }
}
