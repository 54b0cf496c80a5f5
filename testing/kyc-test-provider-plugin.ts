/** The test provider type as a plugin, for gateway child processes: `kycgate start --plugin dist/testing/kyc-test-provider-plugin.js`. */
import type { Plugin } from '../src/cli/plugins.js';
import { TEST_PROVIDER_TYPE } from './kyc-test-provider.js';

const plugin: Plugin = { providers: [TEST_PROVIDER_TYPE] };
export default plugin;
