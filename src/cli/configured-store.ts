/**
 * What the store-backed commands (`kycgate faults`, `kycgate drill`) open: the configuration a gateway runs and the
 * store it names (default: the embedded SQLite database under KYCGATE_DATA_DIR or .kycgate), so a command acts on
 * the same state as the running gateways.
 */
import { mkdirSync } from 'node:fs';
import { ConfigValidator, loadConfigFile } from '../config/load.js';
import { resolveSecret } from '../config/secrets.js';
import type { GatewayConfig } from '../config/types.js';
import { SUBSYSTEMS, POLICIES } from '../bundled.js';
import { storeFromConfig, type StoreConfig } from '../store/subsystem.js';
import type { Store } from '../store/store.js';
import { dataDirectory } from './start.js';

/** The CLI serves no request: it may wait longer for the store than the gateway's deadline (a long list, a lock). */
export const CLI_STORE_WAIT_MS = 30_000;

export interface ConfiguredStore {
  config: GatewayConfig;
  baseDir: string;
  store: Store;
}

export function loadCliConfig(configFile: string | undefined): { config: GatewayConfig; baseDir: string } {
  const validator = new ConfigValidator(SUBSYSTEMS, POLICIES);
  if (configFile) return loadConfigFile(configFile, validator);
  return { config: validator.validate({ listeners: [{ name: 'main', port: 0 }] }), baseDir: process.cwd() };
}

export function openConfiguredStore(configFile: string | undefined): ConfiguredStore {
  const { config, baseDir } = loadCliConfig(configFile);
  const dataDir = dataDirectory();
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const store = storeFromConfig(config.store as StoreConfig, dataDir, (ref) => resolveSecret(ref, baseDir), {
    minWaitMs: CLI_STORE_WAIT_MS,
  });
  return { config, baseDir, store };
}
