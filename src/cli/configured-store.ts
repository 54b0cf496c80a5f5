/**
 * What the store-backed commands (`kycgate keys`, `faults`, `drill`) open: the configuration a gateway runs, its data
 * directory (src/config/data-dir.ts) and the store it names (default: the embedded SQLite database in the data
 * directory), so a command acts on the same state as the gateways given the same config, from any current
 * directory. Each command says on standard error which store it used.
 */
import { mkdirSync } from 'node:fs';
import { ConfigError, ConfigValidator, loadConfigFile } from '../config/load.js';
import { resolveSecret } from '../config/secrets.js';
import { dataDirectory } from '../config/data-dir.js';
import type { GatewayConfig } from '../config/types.js';
import { SUBSYSTEMS, POLICIES } from '../bundled.js';
import { describeStore, storeFromConfig, type StoreConfig } from '../store/subsystem.js';
import type { Store } from '../store/store.js';

/** The CLI serves no request: it may wait longer for the store than the gateway's deadline (a long list, a lock). */
export const CLI_STORE_WAIT_MS = 30_000;

export interface CliConfig {
  config: GatewayConfig;
  baseDir: string;
  /** Absolute data directory of that config. */
  dataDir: string;
}

export interface ConfiguredStore extends CliConfig {
  store: Store;
}

/** The config file's, or without one the built-in demo's defaults (its data directory: ./.kycgate). */
export function loadCliConfig(configFile: string | undefined): CliConfig {
  const validator = new ConfigValidator(SUBSYSTEMS, POLICIES);
  const { config, baseDir } = configFile
    ? loadConfigFile(configFile, validator)
    : { config: validator.validate({ listeners: [{ name: 'main', port: 0 }] }), baseDir: process.cwd() };
  return { config, baseDir, dataDir: dataDirectory(config, baseDir) };
}

export function openConfiguredStore(configFile: string | undefined): ConfiguredStore {
  const loaded = loadCliConfig(configFile);
  const { config, baseDir, dataDir } = loaded;
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const storeConfig = config.store as StoreConfig;
  const store = storeFromConfig(storeConfig, dataDir, (ref) => resolveSecret(ref, baseDir), {
    minWaitMs: CLI_STORE_WAIT_MS,
  });
  process.stderr.write(`kycgate: store: ${describeStore(storeConfig, dataDir)}\n`);
  return { ...loaded, store };
}

/**
 * Runs a store-backed command: the store the config names is opened, `fn` runs, and the store is closed however it
 * ended. A failure is one line on standard error (the config error's message, or the error's) and exit code 1.
 */
export async function withConfiguredStore(
  configFile: string | undefined,
  fn: (configured: ConfiguredStore) => Promise<void>,
): Promise<void> {
  let configured: ConfiguredStore | undefined;
  try {
    configured = openConfiguredStore(configFile);
    await fn(configured);
  } catch (err) {
    process.stderr.write(`kycgate: ${err instanceof ConfigError ? err.message : (err as Error).message}\n`);
    process.exitCode = 1;
  } finally {
    await configured?.store.close().catch(() => undefined);
  }
}
