/**
 * Authenticators: the credential checks the `authenticate` policy combines (a route accepts any of them, or
 * requires all of them). Each lives in its own folder (api-key, jwt, introspection, mtls, spiffe-jwt ...) and
 * registers here. An authenticator never reads identity from client-supplied headers other than the credential.
 */
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
