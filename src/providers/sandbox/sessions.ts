/**
 * Sandbox sessions and the decision documents they produce, shaped like Didit's (`GET /v3/session/{id}/decision/`
 * and a webhook's `decision`): top-level fields, then one list per feature, `null` until that feature ran. The
 * outcome is chosen on the hosted page (Approve / Decline / Send to review), like Didit's sandbox scenarios.
 */
import { randomBytes, randomUUID } from 'node:crypto';

export interface SandboxPerson {
  firstName: string;
  lastName: string;
  /** YYYY-MM-DD */
  dateOfBirth: string;
}

/** The person a sandbox verification "reads from the document" unless the tester edits it on the page. */
export const DEFAULT_PERSON: SandboxPerson = {
  firstName: 'Elena',
  lastName: 'Sánchez Müller',
  dateOfBirth: '1990-05-17',
};

export interface SandboxSession {
  sessionId: string;
  sessionNumber: number;
  sessionToken: string;
  workflowId: string;
  workflowVersion: number;
  vendorData?: string;
  metadata?: Record<string, unknown>;
  callback?: string;
  callbackMethod?: string;
  language?: string;
  contactDetails?: Record<string, unknown>;
  expectedDetails?: Record<string, unknown>;
  status: string;
  /** Unix seconds. */
  createdAt: number;
  /** Set when the verification ran (page submitted or status updated by review). */
  person?: SandboxPerson;
  /** Unix seconds of the last decision (approved, declined, in review, resubmission asked). */
  decidedAt?: number;
  /** Feature outcome chosen on the page. */
  outcome?: 'Approved' | 'Declined' | 'In Review';
  reviews: Array<{ user: string; new_status: string; comment: string | null; created_at: string }>;
}

export function newSession(
  fields: Omit<SandboxSession, 'sessionId' | 'sessionToken' | 'status' | 'reviews' | 'createdAt'> & {
    sessionId?: string;
  },
  nowSeconds: number,
): SandboxSession {
  return {
    ...fields,
    sessionId: fields.sessionId ?? randomUUID(),
    sessionToken: randomBytes(18).toString('base64url'),
    status: 'Not Started',
    createdAt: nowSeconds,
    reviews: [],
  };
}

export function sessionUrl(publicBaseUrl: string, session: SandboxSession): string {
  return `${publicBaseUrl}/verify/${session.sessionToken}`;
}

/** The 201 answer of `POST /v3/session/`. */
export function sessionCreatedDocument(publicBaseUrl: string, s: SandboxSession): Record<string, unknown> {
  return {
    session_id: s.sessionId,
    session_number: s.sessionNumber,
    session_token: s.sessionToken,
    url: sessionUrl(publicBaseUrl, s),
    vendor_data: s.vendorData ?? null,
    metadata: s.metadata ?? null,
    status: s.status,
    workflow_id: s.workflowId,
    workflow_version: s.workflowVersion,
    callback: s.callback ?? null,
    session_kind: 'user',
  };
}

function presigned(publicBaseUrl: string, s: SandboxSession, name: string, nowSeconds: number): string {
  // Shaped like Didit's short-lived presigned media links; the adapter must never keep them.
  return `${publicBaseUrl}/media/${s.sessionId}/${name}?X-Amz-Expires=3600&X-Amz-Date=${nowSeconds}&X-Amz-Signature=${randomBytes(16).toString('hex')}`;
}

function plusYears(date: string, years: number): string {
  const [y, m, d] = date.split('-');
  return `${Number(y) + years}-${m}-${d}`;
}

/** The decision document of a session at `nowSeconds`. Feature lists stay null until the verification ran. */
export function decisionDocument(
  publicBaseUrl: string,
  s: SandboxSession,
  nowSeconds: number,
): Record<string, unknown> {
  const doc: Record<string, unknown> = {
    session_id: s.sessionId,
    session_number: s.sessionNumber,
    session_url: sessionUrl(publicBaseUrl, s),
    status: s.status,
    environment: 'sandbox',
    workflow_id: s.workflowId,
    workflow_version: s.workflowVersion,
    features: ['ID_VERIFICATION', 'LIVENESS', 'FACE_MATCH', 'AML'],
    vendor_data: s.vendorData ?? null,
    metadata: s.metadata ?? null,
    expected_details: s.expectedDetails ?? null,
    contact_details: s.contactDetails ?? null,
    callback: s.callback ?? null,
    created_at: new Date(s.createdAt * 1000).toISOString(),
    reviews: s.reviews,
    id_verifications: null,
    nfc_verifications: null,
    liveness_checks: null,
    face_matches: null,
    poa_verifications: null,
    phone_verifications: null,
    email_verifications: null,
    aml_screenings: null,
    ip_analyses: null,
    database_validations: null,
  };
  if (!s.person || !s.outcome) return doc;
  const p = s.person;
  const idStatus = s.outcome === 'Declined' ? 'Declined' : 'Approved';
  const amlStatus = s.outcome === 'In Review' ? 'In Review' : 'Approved';
  const url = (name: string) => presigned(publicBaseUrl, s, name, nowSeconds);
  doc.id_verifications = [
    {
      node_id: 'feature_ocr',
      status: idStatus,
      document_type: 'Identity Card',
      document_number: 'SBX' + s.sessionNumber.toString().padStart(6, '0'),
      personal_number: null,
      portrait_image: url('portrait.jpg'),
      front_image: url('front.jpg'),
      back_image: url('back.jpg'),
      full_front_image: url('full_front.jpg'),
      full_back_image: url('full_back.jpg'),
      date_of_birth: p.dateOfBirth,
      expiration_date:
        s.outcome === 'Declined' ? '2020-01-01' : plusYears(new Date(nowSeconds * 1000).toISOString().slice(0, 10), 5),
      date_of_issue: '2021-03-02',
      issuing_state: 'ESP',
      issuing_state_name: 'Spain',
      first_name: p.firstName,
      last_name: p.lastName,
      full_name: `${p.firstName} ${p.lastName}`,
      gender: 'F',
      address: 'Calle Mayor 1, 28013 Madrid',
      place_of_birth: 'Madrid',
      nationality: 'ESP',
      warnings:
        s.outcome === 'Declined'
          ? [
              {
                risk: 'DOCUMENT_EXPIRED',
                short_description: 'Document expired',
                long_description: 'The document expiration date has passed.',
              },
            ]
          : [],
    },
  ];
  doc.liveness_checks = [
    {
      node_id: 'feature_liveness',
      status: 'Approved',
      method: 'PASSIVE',
      score: 95.4,
      reference_image: url('liveness_reference.jpg'),
      video_url: url('liveness.mp4'),
      age_estimation: 34.2,
      warnings: [],
    },
  ];
  doc.face_matches = [
    {
      node_id: 'feature_face',
      status: 'Approved',
      score: 96.15,
      source_image: url('face_source.jpg'),
      target_image: url('face_target.jpg'),
      warnings: [],
    },
  ];
  doc.aml_screenings = [
    {
      node_id: 'feature_aml',
      status: amlStatus,
      total_hits: amlStatus === 'In Review' ? 1 : 0,
      score: amlStatus === 'In Review' ? 62.5 : 0,
      hits:
        amlStatus === 'In Review'
          ? [{ id: 'sbx-hit-1', match: 62.5, name: `${p.firstName} ${p.lastName}`, datasets: ['PEP'] }]
          : [],
      screened_data: { full_name: `${p.firstName} ${p.lastName}`, date_of_birth: p.dateOfBirth, nationality: 'ESP' },
      warnings: [],
    },
  ];
  return doc;
}
