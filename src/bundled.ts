/**
 * The list of what plugs into the core: policies (one folder each under src/policies/) and subsystems that own a
 * top-level config section and the services behind it (stores, verification providers, audit ...). Adding a
 * capability means adding it here; the core itself does not change.
 */
import type { PolicyDefinition } from './pipeline/policy.js';
import type { Subsystem } from './subsystems.js';
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
import { storeSubsystem } from './store/subsystem.js';
import { redisSubsystem } from './shared/redis.js';
import { authSubsystem } from './auth/subsystem.js';
import { authenticatePolicy } from './policies/authenticate/authenticate.js';
import { authorizePolicy } from './policies/authorize/authorize.js';
import { kycSubsystem } from './kyc/subsystem.js';
import type { ProviderType } from './providers/provider.js';
import {
  diditProviderType,
  onfidoProviderType,
  personaProviderType,
  sandboxProviderType,
  sumsubProviderType,
  veriffProviderType,
} from './providers/bundled-types.js';
import { auditSubsystem } from './audit/subsystem.js';
import { auditPolicy } from './policies/audit/audit.js';
import { faultInjectionPolicy } from './policies/fault-injection/fault-injection.js';
import { resilienceSubsystem } from './resilience/subsystem.js';
import { incidentsSubsystem } from './resilience/incidents/subsystem.js';

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
  faultInjectionPolicy,
];

/**
 * Subsystems start in this order: later ones may use services of earlier ones. Audit starts right after the shared
 * services so it records what the subsystems after it report while starting.
 */
export function bundledSubsystems(providers: readonly ProviderType[] = PROVIDERS): readonly Subsystem[] {
  return [
    storeSubsystem,
    redisSubsystem,
    auditSubsystem,
    resilienceSubsystem,
    authSubsystem,
    kycSubsystem(providers),
    incidentsSubsystem,
  ];
}

/** Verification-provider types `kyc.providers.<name>.type` may name. */
export const PROVIDERS: readonly ProviderType[] = [
  diditProviderType,
  sandboxProviderType,
  veriffProviderType,
  onfidoProviderType,
  sumsubProviderType,
  personaProviderType,
];

export const SUBSYSTEMS: readonly Subsystem[] = bundledSubsystems();
