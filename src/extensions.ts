/**
 * The list of what plugs into the core: policies (one folder each under src/policies/) and modules that own a
 * top-level config section and the services behind it (stores, identity providers, audit ...). Adding a
 * capability means adding it here; the core itself does not change.
 */
import type { PolicyDefinition } from './pipeline/policy.js';
import type { GatewayModule } from './modules.js';
import { requestHeadersPolicy } from './policies/request-headers/request-headers.js';
import { staticResponsePolicy } from './policies/static-response/static-response.js';
import { clientCertificatePolicy } from './policies/client-certificate/client-certificate.js';
import { workloadJwtPolicy } from './policies/workload-jwt/workload-jwt.js';
import { storeModule } from './store/module.js';
import { redisModule } from './shared/redis.js';

export const POLICIES: readonly PolicyDefinition[] = [requestHeadersPolicy, staticResponsePolicy, clientCertificatePolicy, workloadJwtPolicy];

/** Modules start in this order: later ones may use services of earlier ones. */
export const MODULES: readonly GatewayModule[] = [storeModule, redisModule];
