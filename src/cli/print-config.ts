/**
 * `kycgate start --print-config`: the configuration a gateway would run, the built-in demo's or a file's, with every
 * default filled in, as YAML. Secrets are never in a config (only references to them, printed as references); a
 * credential written into a URL or under a secret-looking key anyway is shown as `[redacted]`.
 */
import path from 'node:path';
import { stringify } from 'yaml';
import { type ConfigValidator, loadConfigFile } from '../config/load.js';
import { dataDirectory } from '../config/data-dir.js';
import { isSecretRef } from '../config/secrets.js';
import { demoConfig } from '../demo/config.js';

const SECRET_KEY = /(secret|password|passwd|token|api_key|apikey|private_key)$/i;

export function redact(value: unknown, key = ''): unknown {
  if (isSecretRef(value)) return value;
  if (typeof value === 'string') {
    if (SECRET_KEY.test(key)) return '[redacted]';
    if (/^[a-z][a-z0-9+.-]*:\/\/[^/@\s]*:[^/@\s]*@/i.test(value)) {
      try {
        const url = new URL(value);
        url.password = '[redacted]';
        return url.toString();
      } catch {
        return '[redacted]';
      }
    }
    return value;
  }
  if (Array.isArray(value)) return value.map((v) => redact(v, key));
  if (typeof value === 'object' && value !== null)
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redact(v, k)]));
  return value;
}

/** The effective configuration as YAML, headed by where it comes from and its data directory. */
export function printConfig(configFile: string | undefined, validator: ConfigValidator): string {
  let config: unknown;
  let source: string;
  let dataDir: string;
  if (configFile) {
    const loaded = loadConfigFile(configFile, validator);
    config = loaded.config;
    source = loaded.file!;
    dataDir = dataDirectory(loaded.config, loaded.baseDir);
  } else {
    dataDir = dataDirectory(undefined, process.cwd());
    const tls = path.join(dataDir, 'tls');
    config = validator.validate(
      demoConfig({ cert: path.join(tls, 'dev-cert.pem'), key: path.join(tls, 'dev-key.pem') }),
    );
    source = 'the built-in demo';
  }
  const header =
    `# Effective configuration of ${source}, defaults filled in (kycgate start --print-config).\n` +
    `# Data directory: ${dataDir}\n`;
  return header + stringify(redact(config), { lineWidth: 0 });
}
