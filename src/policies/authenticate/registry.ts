/**
 * The authenticators the `authenticate` policy can combine, by method name. Adding one is one import and one
 * entry here; the policy and its config schema pick it up.
 */
import type { AuthenticatorDefinition } from './authenticator.js';
import { apiKeyAuthenticator } from './api-key/api-key.js';
import { jwtAuthenticator } from './jwt/jwt.js';
import { introspectionAuthenticator } from './introspection/introspection.js';
import { mtlsAuthenticator } from './mtls/mtls.js';
import { spiffeJwtAuthenticator } from './spiffe-jwt/spiffe-jwt.js';

export const AUTHENTICATORS: readonly AuthenticatorDefinition[] = [
  apiKeyAuthenticator,
  jwtAuthenticator,
  introspectionAuthenticator,
  mtlsAuthenticator,
  spiffeJwtAuthenticator,
];

const byMethod = new Map(AUTHENTICATORS.map((a) => [a.method, a]));

export function authenticatorFor(method: string): AuthenticatorDefinition | undefined {
  return byMethod.get(method);
}
