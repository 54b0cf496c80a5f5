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
