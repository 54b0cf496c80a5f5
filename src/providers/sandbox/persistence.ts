/**
 * Where the sandbox keeps its sessions and undelivered webhooks: the gateway's Store when one is given (so a
 * restart resumes pending deliveries), otherwise nothing (memory only). The sandbox's working set always lives in
 * memory; this is write-through durability.
 */
import type { Migration, Store } from '../../store/store.js';
import type { SandboxSession } from './sessions.js';

export const SANDBOX_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'sandbox sessions and webhook deliveries',
    sql: `CREATE TABLE sandbox_sessions (
  session_id TEXT PRIMARY KEY,
  session_token TEXT NOT NULL UNIQUE,
  data TEXT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE TABLE sandbox_webhook_deliveries (
  event_id TEXT PRIMARY KEY,
  session_id TEXT NOT NULL,
  envelope TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  state TEXT NOT NULL,
  next_attempt_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
)`,
  },
];

export interface PendingDelivery {
  eventId: string;
  envelope: Record<string, unknown>;
  attempts: number;
  nextAttemptAt: number;
}

export interface SandboxPersistence {
  loadSessions(): Promise<SandboxSession[]>;
  saveSession(s: SandboxSession): Promise<void>;
  loadPendingDeliveries(): Promise<PendingDelivery[]>;
  saveDelivery(d: PendingDelivery, state: 'pending' | 'delivered' | 'failed'): Promise<void>;
}

export const memoryPersistence: SandboxPersistence = {
  loadSessions: () => Promise.resolve([]),
  saveSession: () => Promise.resolve(),
  loadPendingDeliveries: () => Promise.resolve([]),
  saveDelivery: () => Promise.resolve(),
};

export async function storePersistence(store: Store): Promise<SandboxPersistence> {
  await store.migrate('sandbox', SANDBOX_MIGRATIONS);
  return {
    async loadSessions() {
      const rows = await store.query<{ data: string }>('SELECT data FROM sandbox_sessions');
      return rows.map((r) => JSON.parse(r.data) as SandboxSession);
    },
    async saveSession(s) {
      await store.query(
        'INSERT INTO sandbox_sessions (session_id, session_token, data, updated_at) VALUES ($1, $2, $3, $4) ' +
          'ON CONFLICT (session_id) DO UPDATE SET data = $3, updated_at = $4',
        [s.sessionId, s.sessionToken, JSON.stringify(s), Date.now()],
      );
    },
    async loadPendingDeliveries() {
      const rows = await store.query<{
        event_id: string;
        envelope: string;
        attempts: number;
        next_attempt_at: number | string;
      }>(
        "SELECT event_id, envelope, attempts, next_attempt_at FROM sandbox_webhook_deliveries WHERE state = 'pending' ORDER BY next_attempt_at",
      );
      return rows.map((r) => ({
        eventId: r.event_id,
        envelope: JSON.parse(r.envelope) as Record<string, unknown>,
        attempts: Number(r.attempts),
        nextAttemptAt: Number(r.next_attempt_at),
      }));
    },
    async saveDelivery(d, state) {
      await store.query(
        `INSERT INTO sandbox_webhook_deliveries (event_id, session_id, envelope, attempts, state, next_attempt_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (event_id) DO UPDATE SET attempts = $4, state = $5, next_attempt_at = $6, updated_at = $7`,
        [
          d.eventId,
          String(d.envelope.session_id),
          JSON.stringify(d.envelope),
          d.attempts,
          state,
          d.nextAttemptAt,
          Date.now(),
        ],
      );
    },
  };
}
