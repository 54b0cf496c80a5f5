/**
 * Authenticators: the credential checks the `authenticate` policy combines (a route accepts any of them, or
 * requires all of them). Each lives in its own folder (api-key, jwt, introspection, mtls, spiffe-jwt ...) and
 * registers here. An authenticator never reads identity from client-supplied headers other than the credential.
 */
import type { ConsumerDirectory } from '../../auth/consumers.js';
import type { Identity, RequestContext } from '../../pipeline/context.js';
import type { PolicySetup } from '../../pipeline/policy.js';

/** Why a credential was refused; `reason` is a stable machine-readable code used in metrics and audit. */
export interface AuthFailure {
  failed: true;
  reason: string;
  /** Safe to show the client. */
  detail?: string;
  /**
   * The credential could not be checked because a dependency (store, identity provider) is unreachable: the
   * client is answered 503 with Retry-After instead of 401, and the attempt does not count as a failed guess.
   */
  unavailable?: boolean;
}

/**
 * `undefined`: this request carries no credential of this kind (try the next authenticator).
 * `Identity`: authenticated. `AuthFailure`: a credential was present and is not acceptable.
 */
export type AuthOutcome = Identity | AuthFailure | undefined;

export interface Authenticator {
  /** Method name, e.g. `api-key`; also the `Identity.method` it sets. */
  readonly method: string;
  /** Value of the WWW-Authenticate challenge for a 401 (e.g. `Bearer realm="kycgate"`). */
  readonly challenge: string;
  authenticate(ctx: RequestContext): AuthOutcome | Promise<AuthOutcome>;
  close?(): void | Promise<void>;
}

// biome-ignore lint/suspicious/noExplicitAny: lists hold definitions of different configs; each checks its own
export interface AuthenticatorDefinition<Config = any> {
  /** Key in the `authenticate` policy's `methods` list. */
  readonly method: string;
  readonly description: string;
  readonly schema: Record<string, unknown>;
  create(config: Config, setup: PolicySetup): Authenticator | Promise<Authenticator>;
}

export function isAuthFailure(outcome: AuthOutcome): outcome is AuthFailure {
  return outcome !== undefined && (outcome as AuthFailure).failed === true;
}

const BEARER = /^bearer /i;

/**
 * The token of an `Authorization: Bearer <token>` value (RFC 6750 section 2.1; the scheme is case-insensitive), or
 * undefined for another scheme or an empty token. Every method that takes bearer tokens reads them this way.
 */
export function bearerToken(value: string | undefined): string | undefined {
  if (value === undefined || value.length < 8 || !BEARER.test(value)) return undefined;
  const token = value.slice(7).trim();
  return token === '' ? undefined : token;
}

/** Whether a token has the shape of a compact JWS: a JSON header (`eyJ`) and three dot-separated parts. */
export function isCompactJws(token: string): boolean {
  if (!token.startsWith('eyJ')) return false;
  const first = token.indexOf('.');
  if (first === -1) return false;
  const second = token.indexOf('.', first + 1);
  return second !== -1 && token.indexOf('.', second + 1) === -1;
}

/** Where a token's claims (or an introspection answer's members) name the consumer, its scopes and its groups. */
export interface ClaimMapping {
  /** The first of these holding a non-empty string names the consumer. */
  consumer_claims: readonly string[];
  /** Each holds scopes: a space-separated string or an array of strings. */
  scope_claims: readonly string[];
  /** Holds the groups (an array of strings). */
  groups_claim?: string | undefined;
}

/**
 * The identity a verified token (`jwt`) or an active introspection answer (`introspection`) stands for: its
 * consumer, scopes (deduplicated) and groups per the mapping, with the consumer record's groups and plan added when
 * the consumer is a configured one. `claims` are kept frozen; `jti` becomes the credential id.
 */
export function identityFromClaims(
  method: string,
  claims: Readonly<Record<string, unknown>>,
  mapping: ClaimMapping,
  consumers: ConsumerDirectory,
  expiresAt: number,
): Identity {
  let consumer: string | undefined;
  for (const claim of mapping.consumer_claims) {
    const v = claims[claim];
    if (typeof v === 'string' && v !== '') {
      consumer = v;
      break;
    }
  }
  const scopes: string[] = [];
  for (const claim of mapping.scope_claims) {
    const v = claims[claim];
    if (typeof v === 'string') for (const s of v.split(' ')) if (s !== '') scopes.push(s);
    if (Array.isArray(v)) for (const s of v) if (typeof s === 'string' && s !== '') scopes.push(s);
  }
  let groups: string[] | undefined;
  if (mapping.groups_claim !== undefined) {
    const v = claims[mapping.groups_claim];
    if (Array.isArray(v)) groups = v.filter((g): g is string => typeof g === 'string');
  }
  const record = consumer === undefined ? undefined : consumers.get(consumer);
  if (record !== undefined && record.groups.length > 0) groups = [...new Set([...(groups ?? []), ...record.groups])];
  const identity: Identity = {
    method,
    scopes: [...new Set(scopes)],
    claims: Object.freeze({ ...claims }),
    expiresAt,
  };
  if (consumer !== undefined) identity.consumer = consumer;
  if (groups !== undefined) identity.groups = groups;
  if (record?.plan !== undefined) identity.plan = record.plan;
  if (typeof claims.jti === 'string') identity.credentialId = claims.jti;
  return Object.freeze(identity);
}
