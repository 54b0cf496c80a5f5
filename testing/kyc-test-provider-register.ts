/** Preload for gateway child processes in tests: `node --import dist/testing/kyc-test-provider-register.js ...`. */
import { registerTestProviderType } from './kyc-test-provider.js';

registerTestProviderType();
