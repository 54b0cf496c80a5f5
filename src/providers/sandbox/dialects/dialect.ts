/**
 * A provider dialect of the embedded sandbox: the API shape (paths, authentication, documents) and the webhook
 * format and signing of one provider, over the sandbox's own sessions, hosted page and delivery queue. Didit's is
 * built into the sandbox server; Veriff, Onfido, Sumsub and Persona are dialects, so each adapter runs its whole
 * loop (session, hosted page, signed webhook, result fetch) offline, unchanged.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { SandboxSession } from '../sessions.js';

export type DialectName = 'didit' | 'veriff' | 'onfido' | 'sumsub' | 'persona';

export interface DialectRequest {
  method: string;
  /** Path and query exactly as sent (signatures cover them). */
  pathWithQuery: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface DialectAnswer {
  status: number;
  doc: unknown;
  headers?: Record<string, string>;
}

export interface DialectContext {
  readonly apiKey: string;
  /** Key API requests are signed with (Sumsub's app secret; Veriff's shared secret is `webhookSecret`). */
  readonly apiSecret: string;
  readonly webhookSecret: string;
  /** Unix seconds. */
  now(): number;
  create(fields: {
    workflowId: string;
    vendorData?: string;
    callback?: string;
    sessionId?: string;
    metadata?: Record<string, unknown>;
  }): Promise<SandboxSession>;
  session(id: string): SandboxSession | undefined;
  /** The hosted page of a session. */
  pageUrl(s: SandboxSession): string;
}

export interface SandboxDialect {
  readonly name: Exclude<DialectName, 'didit'>;
  /** Answers an API request; undefined when the path is not part of this provider's API (404). */
  handle(req: DialectRequest, ctx: DialectContext): Promise<DialectAnswer | undefined>;
  /** The webhook body announcing a session's new status, or undefined when this provider sends none for it. */
  event(s: SandboxSession, nowSeconds: number, ctx: DialectContext): Record<string, unknown> | undefined;
  /** Body and headers of one delivery attempt (stamped and signed at `nowSeconds`). */
  sign(
    payload: Record<string, unknown>,
    nowSeconds: number,
    ctx: DialectContext,
  ): { body: string; headers: Record<string, string> };
}

/** What a sandbox verification "read from the document", shared by every dialect. */
export function sandboxIdentity(s: SandboxSession, nowSeconds: number) {
  const p = s.person;
  const today = new Date(nowSeconds * 1000).toISOString().slice(0, 10);
  const [y, m, d] = today.split('-');
  return {
    firstName: p?.firstName,
    lastName: p?.lastName,
    dateOfBirth: p?.dateOfBirth,
    documentNumber: 'SBX' + s.sessionNumber.toString().padStart(6, '0'),
    // A declined verification is one whose document had expired.
    expires: s.outcome === 'Declined' ? '2020-01-01' : `${Number(y) + 5}-${m}-${d}`,
    country2: 'ES',
    country3: 'ESP',
  };
}

export function isoAt(seconds: number): string {
  return new Date(seconds * 1000).toISOString();
}

export function bearer(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

export function jsonBody(body: Buffer): Record<string, unknown> | undefined {
  if (body.length === 0) return {};
  try {
    const v = JSON.parse(body.toString('utf8')) as unknown;
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
