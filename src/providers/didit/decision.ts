/**
 * Turns a Didit decision document into a VerificationResult: flat facts for claim mapping and the three personal
 * fields a claim may need. Everything else (document images, portrait and video URLs, which are short-lived
 * presigned links, document numbers, addresses, the raw document itself) is dropped here, before anything is
 * stored or logged.
 */
import type { VerificationResult } from '../provider.js';
import { diditStatusToState, statusSeverity } from './statuses.js';
import { ageAt } from '../../shared/age.js';

/** Decision list key → fact name. Didit's v2 API used one object per feature (`id_verification`); both are read. */
const FEATURE_LISTS: ReadonlyArray<readonly [list: string, single: string, fact: string]> = [
  ['id_verifications', 'id_verification', 'id_verification'],
  ['nfc_verifications', 'nfc', 'nfc'],
  ['liveness_checks', 'liveness', 'liveness'],
  ['face_matches', 'face_match', 'face_match'],
  ['poa_verifications', 'poa', 'poa'],
  ['phone_verifications', 'phone', 'phone'],
  ['email_verifications', 'email', 'email'],
  ['aml_screenings', 'aml', 'aml'],
  ['database_validations', 'database_validation', 'database_validation'],
  ['ip_analyses', 'ip_analysis', 'ip_analysis'],
];

type Item = Record<string, unknown>;

function isObject(v: unknown): v is Item {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function itemsOf(doc: Item, list: string, single: string): Item[] | undefined {
  const many = doc[list];
  if (Array.isArray(many)) return many.filter(isObject);
  const one = doc[single];
  if (isObject(one)) return [one];
  return undefined;
}

function worstStatus(items: Item[]): string | undefined {
  let worst: string | undefined;
  for (const item of items) {
    const s = item.status;
    if (typeof s !== 'string') continue;
    if (worst === undefined || statusSeverity(s) > statusSeverity(worst)) worst = s;
  }
  return worst;
}

function lowestScore(items: Item[]): number | undefined {
  let low: number | undefined;
  for (const item of items) {
    const s = item.score;
    if (typeof s === 'number' && Number.isFinite(s) && (low === undefined || s < low)) low = s;
  }
  return low;
}

function text(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** The id verification that speaks for the person: an approved one if any, else the first. */
function primaryIdVerification(items: Item[] | undefined): Item | undefined {
  if (!items || items.length === 0) return undefined;
  return items.find((i) => i.status === 'Approved') ?? items[0];
}

export interface DecisionFallbacks {
  sessionId?: string;
  status?: string;
  workflowId?: string;
  vendorData?: string;
}

/**
 * Maps a decision document (from `GET /v3/session/{id}/decision/` or a webhook's `decision`) at `nowSeconds`.
 * Fields missing in the document (webhook decisions omit some) are taken from `fallbacks` (the envelope).
 */
export function decisionFromDidit(
  doc: unknown,
  nowSeconds: number,
  fallbacks: DecisionFallbacks = {},
): VerificationResult {
  const d: Item = isObject(doc) ? doc : {};
  const status = text(d.status) ?? fallbacks.status ?? '';
  const facts: VerificationResult['facts'] = { status };
  const lists = new Map<string, Item[]>();
  for (const [list, single, fact] of FEATURE_LISTS) {
    const items = itemsOf(d, list, single);
    if (!items || items.length === 0) continue;
    lists.set(fact, items);
    const worst = worstStatus(items);
    if (worst !== undefined) facts[fact] = worst;
  }
  const personal: VerificationResult['personal'] = {};
  const id = primaryIdVerification(lists.get('id_verification'));
  if (id) {
    const age = ageAt(id.date_of_birth, nowSeconds);
    if (age !== undefined) facts.age = age;
    const documentType = text(id.document_type);
    if (documentType) facts.document_type = documentType;
    const country = text(id.issuing_state) ?? text(id.issuing_country);
    if (country) facts.issuing_country = country;
    const expires = text(id.expiration_date);
    if (expires && /^\d{4}-\d{2}-\d{2}$/.test(expires)) facts.document_expires = expires;
    const firstName = text(id.first_name);
    const lastName = text(id.last_name);
    const dateOfBirth = text(id.date_of_birth);
    if (firstName) personal.firstName = firstName;
    if (lastName) personal.lastName = lastName;
    if (dateOfBirth) personal.dateOfBirth = dateOfBirth;
  }
  const livenessScore = lowestScore(lists.get('liveness') ?? []);
  if (livenessScore !== undefined) facts.liveness_score = livenessScore;
  const faceMatchScore = lowestScore(lists.get('face_match') ?? []);
  if (faceMatchScore !== undefined) facts.face_match_score = faceMatchScore;
  return {
    sessionId: text(d.session_id) ?? fallbacks.sessionId ?? '',
    status,
    state: diditStatusToState(status),
    workflowId: text(d.workflow_id) ?? fallbacks.workflowId ?? '',
    vendorData: text(d.vendor_data) ?? fallbacks.vendorData,
    facts,
    personal,
  };
}
