/**
 * The facts every adapter derives the same way from what a document says, so that one claim expression
 * (`facts.age >= 18`, `facts.document_expires > "2030-01-01"`) reads the same whichever provider verified the user:
 * `age` (whole years, never the birth date itself), `document_type`, `issuing_country`, `document_expires`
 * (YYYY-MM-DD). Names and the birth date go to `personal`, which is kept only when a workflow asks for it.
 */
import type { VerificationResult } from './provider.js';
import { ageAt } from '../shared/age.js';

export interface DocumentReading {
  firstName?: string | undefined;
  lastName?: string | undefined;
  dateOfBirth?: string | undefined;
  documentType?: string | undefined;
  issuingCountry?: string | undefined;
  documentExpires?: string | undefined;
}

const DATE = /^\d{4}-\d{2}-\d{2}$/;

export function addDocumentFacts(
  result: Pick<VerificationResult, 'facts' | 'personal'>,
  reading: DocumentReading,
  nowSeconds: number,
): void {
  const { facts, personal } = result;
  if (reading.dateOfBirth !== undefined) {
    const age = ageAt(reading.dateOfBirth, nowSeconds);
    if (age !== undefined) facts.age = age;
    personal.dateOfBirth = reading.dateOfBirth;
  }
  if (reading.firstName) personal.firstName = reading.firstName;
  if (reading.lastName) personal.lastName = reading.lastName;
  if (reading.documentType) facts.document_type = reading.documentType;
  if (reading.issuingCountry) facts.issuing_country = reading.issuingCountry;
  const expires = reading.documentExpires?.slice(0, 10);
  if (expires !== undefined && DATE.test(expires)) facts.document_expires = expires;
}

/** Puts a provider's scalar field into the facts under `name` (strings, finite numbers and booleans only). */
export function addScalarFact(facts: VerificationResult['facts'], name: string, value: unknown): void {
  if (typeof value === 'string' || typeof value === 'boolean') facts[name] = value;
  else if (typeof value === 'number' && Number.isFinite(value)) facts[name] = value;
}
