/**
 * Provider adapters bundled with kycgate. Each adapter module calls `registerProviderType(type, factory, schema)`
 * (src/kyc/providers.ts) when imported; importing it here makes the type usable in `kyc.providers.<name>.type`.
 * The Didit adapter and the embedded sandbox register `didit` and `sandbox`:
 *
 *   import '../providers/didit/register.js';
 *   import '../providers/sandbox/register.js';
 */
export {};
