/**
 * Tables of the KYC subsystem (portable SQL for SQLite and PostgreSQL). Nothing here holds images or presigned links;
 * the hosted session link and personal fields are sealed (AES-256-GCM) and removed when no longer needed.
 */
import type { Migration } from '../store/store.js';

export const KYC_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'verification state, sessions, webhook inbox, history',
    sql: `
CREATE TABLE kyc_verifications (
  subject TEXT NOT NULL,
  provider TEXT NOT NULL,
  workflow TEXT NOT NULL,
  workflow_id TEXT NOT NULL,
  session_id TEXT,
  session_url TEXT,
  session_started_at BIGINT,
  lease_owner TEXT,
  lease_until BIGINT NOT NULL DEFAULT 0,
  provider_status TEXT NOT NULL DEFAULT '',
  state TEXT NOT NULL DEFAULT 'unverified',
  claims TEXT NOT NULL DEFAULT '',
  status_seq BIGINT NOT NULL DEFAULT 0,
  verified_at BIGINT,
  expires_at BIGINT,
  personal TEXT,
  key_id TEXT,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (subject, provider, workflow)
);
CREATE TABLE kyc_sessions (
  provider TEXT NOT NULL,
  session_id TEXT NOT NULL,
  subject TEXT NOT NULL,
  workflow TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (provider, session_id)
);
CREATE TABLE kyc_webhook_events (
  provider TEXT NOT NULL,
  event_id TEXT NOT NULL,
  session_id TEXT NOT NULL,
  event_seq BIGINT NOT NULL,
  received_at BIGINT NOT NULL,
  payload TEXT NOT NULL,
  key_id TEXT NOT NULL,
  processed_at BIGINT,
  outcome TEXT,
  attempts INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (provider, event_id)
);
CREATE INDEX kyc_webhook_events_pending ON kyc_webhook_events (processed_at, event_seq);
CREATE INDEX kyc_webhook_events_session ON kyc_webhook_events (provider, session_id);
CREATE TABLE kyc_history (
  subject TEXT NOT NULL,
  field TEXT NOT NULL,
  value DOUBLE PRECISION NOT NULL,
  at BIGINT NOT NULL
);
CREATE INDEX kyc_history_subject ON kyc_history (subject, field, at);
`,
  },
  {
    version: 2,
    name: 'per-subject data keys (crypto-shredding)',
    sql: `
CREATE TABLE kyc_subject_keys (
  subject TEXT PRIMARY KEY,
  wrapped TEXT NOT NULL,
  key_id TEXT NOT NULL,
  created_at BIGINT NOT NULL
);
`,
  },
];
