/**
 * kyc-jwks: serves the public key(s) that verify `x-kycgate-assertion`, as a JSON Web Key Set, on the kyc
 * subsystem's JWKS route. Upstreams fetch it once and cache it (max-age 300 s).
 */
import type { PolicyDefinition, Reply } from '../../pipeline/policy.js';
import type { KycService } from '../../kyc/service.js';
import { kycJwksSchema, type KycJwksConfig } from './schema.js';

export const kycJwksPolicy: PolicyDefinition<KycJwksConfig> = {
  name: 'kyc-jwks',
  description:
    "Serves the KYC assertion public keys (JWKS) on the kyc subsystem's JWKS route (not for use on other routes).",
  phase: 'transform',
  schema: kycJwksSchema,
  create(_config, setup) {
    const kyc = setup.services.get<KycService>('kyc');
    // Built per config (reload re-creates this policy after the kyc subsystem applied a new key).
    const body = Buffer.from(kyc.setup.signer.jwksBody, 'utf8');
    const reply: Reply = {
      status: 200,
      headers: {
        'content-type': 'application/jwk-set+json',
        'cache-control': 'public, max-age=300',
        'content-length': body.length,
      },
      body,
    };
    return { decisionReuse: 'reusable', onRequest: () => reply };
  },
};
