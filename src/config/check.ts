/**
 * The checks of a config that need its environment: every `{env}` and `{file}` secret reference resolves, and every
 * file the config names (certificates, keys, CA bundles, JWKS files) can be read. `kycgate validate` runs them unless
 * `--offline`; `kycgate start` runs them before it binds anything. `{vault}` references are read from Vault by the
 * gateway, also before it binds anything (docs/SECRETS.md).
 */
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { ConfigError, type ConfigValidator, loadConfigFile } from './load.js';
import type { LoadedConfig } from './types.js';
import { isSecretRef, resolveSecret } from './secrets.js';

/** Keys holding a file path: under a `tls` block, and wherever else a config names a file to read. */
const TLS_FILE_KEYS = new Set(['cert', 'key', 'client_ca', 'ca']);
const FILE_KEYS = new Set(['ca_file', 'bundle', 'keys_file']);

function isFileKey(key: string, parent: string): boolean {
  return (parent === 'tls' && TLS_FILE_KEYS.has(key)) || FILE_KEYS.has(key);
}

/**
 * Every problem found, each `key.path: reason` (never a secret's value). `offline`: only what needs no environment
 * (a `{vault}` reference in a config without a `vault` section).
 */
export function environmentProblems(
  config: unknown,
  baseDir: string,
  env: NodeJS.ProcessEnv = process.env,
  offline = false,
): string[] {
  const problems: string[] = [];
  const hasVault = typeof config === 'object' && config !== null && 'vault' in config;
  const visit = (value: unknown, where: string, key: string, parent: string): void => {
    if (isSecretRef(value)) {
      if ('vault' in value) {
        if (!hasVault)
          problems.push(`${where}: a {vault: ...} reference needs a top-level \`vault\` section (address, auth)`);
        return;
      }
      if (offline) return;
      try {
        resolveSecret(value, baseDir, env);
      } catch (err) {
        const reason = err instanceof ConfigError ? err.problems.join('; ') : (err as Error).message;
        problems.push(`${where}: ${reason}`);
      }
      return;
    }
    if (typeof value === 'string') {
      if (offline || !isFileKey(key, parent)) return;
      const file = path.resolve(baseDir, value);
      try {
        accessSync(file, constants.R_OK);
      } catch (err) {
        problems.push(`${where}: file ${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
      }
      return;
    }
    if (Array.isArray(value)) {
      for (const [i, item] of value.entries()) visit(item, `${where}[${i}]`, key, parent);
      return;
    }
    if (typeof value === 'object' && value !== null) {
      for (const [k, v] of Object.entries(value)) visit(v, where ? `${where}.${k}` : k, k, key);
    }
  };
  visit(config, '', '', '');
  return problems;
}

/**
 * Loads a config file with every check, the environment's too unless `offline`: throws one ConfigError listing every
 * problem (the validator's and the environment's together), or returns the loaded config.
 */
export function checkConfigFile(
  file: string,
  validator: ConfigValidator,
  options: { offline?: boolean; env?: NodeJS.ProcessEnv } = {},
): LoadedConfig {
  let loaded: LoadedConfig | undefined;
  const problems: string[] = [];
  try {
    loaded = loadConfigFile(file, validator);
  } catch (err) {
    if (!(err instanceof ConfigError) || !err.raw) throw err;
    problems.push(...err.problems);
    problems.push(...environmentProblems(err.raw, path.dirname(path.resolve(file)), options.env, options.offline));
    throw new ConfigError(problems);
  }
  problems.push(...environmentProblems(loaded.config, loaded.baseDir, options.env, options.offline));
  if (problems.length > 0) throw new ConfigError(problems);
  return loaded;
}
