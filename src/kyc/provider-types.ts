/**
 * Provider adapters bundled with kycgate. Each adapter registers its type with `registerProviderType` (see
 * providers.ts) when imported; importing them here makes `didit` and `sandbox` usable in
 * `kyc.providers.<name>.type`.
 */
import '../providers/register.js';
