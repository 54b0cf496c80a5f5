/**
 * The authenticators the `authenticate` policy can combine, by method name. Adding one is one import and one
 * entry here; the policy and its config schema pick it up.
 */
import type { AuthenticatorDefinition } from './authenticator.js';
import { apiKeyAuthenticator } from './api-key/api-key.js';
import { jwtAuthenticator } from './jwt/jwt.js';
import { introspectionAuthenticator } from './introspection/introspection.js';

export const AUTHENTICATORS: readonly AuthenticatorDefinition[] = [
  apiKeyAuthenticator,
  jwtAuthenticator,
  introspectionAuthenticator,
];

const byMethod = new Map(AUTHENTICATORS.map((a) => [a.method, a]));

export function authenticatorFor(method: string): AuthenticatorDefinition | undefined {
  return byMethod.get(method);
}
