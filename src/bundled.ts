/**
 * The list of what plugs into the core: policies (one folder each under src/policies/) and modules that own a
 * top-level config section and the services behind it (stores, identity providers, audit ...). Adding a
 * capability means adding it here; the core itself does not change.
 */
import type { PolicyDefinition } from './pipeline/policy.js';
import type { GatewayModule } from './modules.js';
import { requestHeadersPolicy } from './policies/request-headers/request-headers.js';
import { staticResponsePolicy } from './policies/static-response/static-response.js';
import { rateLimitPolicy } from './policies/rate-limit/rate-limit.js';
import { networkRulesPolicy } from './policies/network-rules/network-rules.js';
import { validatePolicy } from './policies/validate/validate.js';
import { responseProtectionPolicy } from './policies/response-protection/response-protection.js';
import { transformPolicy } from './policies/transform/transform.js';
import { kycGatePolicy } from './policies/kyc-gate/kyc-gate.js';
import { kycWebhookPolicy } from './policies/kyc-webhook/kyc-webhook.js';
import { kycJwksPolicy } from './policies/kyc-jwks/kyc-jwks.js';
import { clientCertificatePolicy } from './policies/client-certificate/client-certificate.js';
import { workloadJwtPolicy } from './policies/workload-jwt/workload-jwt.js';
import { storeModule } from './store/module.js';
import { redisModule } from './shared/redis.js';
import { authModule } from './auth/module.js';
import { authenticatePolicy } from './policies/authenticate/authenticate.js';
import { authorizePolicy } from './policies/authorize/authorize.js';
import { kycModule } from './kyc/module.js';
import type { ProviderType } from './providers/provider.js';
import { diditProviderType, sandboxProviderType } from './providers/bundled-types.js';
import { auditModule } from './audit/module.js';
import { auditPolicy } from './policies/audit/audit.js';

export const POLICIES: readonly PolicyDefinition[] = [
  requestHeadersPolicy,
  staticResponsePolicy,
  authenticatePolicy,
  authorizePolicy,
  kycGatePolicy,
  kycWebhookPolicy,
  kycJwksPolicy,
  auditPolicy,
  clientCertificatePolicy,
  workloadJwtPolicy,
  networkRulesPolicy,
  rateLimitPolicy,
  validatePolicy,
  responseProtectionPolicy,
  transformPolicy,
];

/**
 * Modules start in this order: later ones may use services of earlier ones. Audit starts right after the shared
 * services so it records what the modules after it report while starting.
 */
export function bundledModules(providers: readonly ProviderType[] = PROVIDERS): readonly GatewayModule[] {
  return [storeModule, redisModule, auditModule, authModule, kycModule(providers)];
}

/** Identity-provider types `kyc.providers.<name>.type` may name. */
export const PROVIDERS: readonly ProviderType[] = [diditProviderType, sandboxProviderType];

export const MODULES: readonly GatewayModule[] = bundledModules();
