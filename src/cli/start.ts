/**
 * `kycgate start`: loads the config (or the built-in demo), starts the gateway, and wires signals:
 * SIGHUP reloads, SIGTERM and SIGINT drain and exit 0.
 */
import { mkdirSync } from 'node:fs';
import { ConfigValidator } from '../config/load.js';
import { checkConfigFile } from '../config/check.js';
import { dataDirectory } from '../config/data-dir.js';
import type { LoadedConfig } from '../config/types.js';
import { loadExtensions } from './plugins.js';
import { createLogger } from './logger.js';
import { VERSION } from '../admin/version.js';
import type { KycService } from '../kyc/service.js';
import { describeStore, type StoreConfig } from '../store/subsystem.js';
import { Gateway } from '../gateway/gateway.js';
import { ensureDevCertificate } from '../server/devcert.js';
import { demoConfig } from '../demo/config.js';
import { startEchoServer, type EchoServer } from '../demo/echo.js';

export async function startGateway(configFile: string | undefined, plugins: readonly string[] = []): Promise<Gateway> {
  const { policies, subsystems } = await loadExtensions(plugins);
  const validator = new ConfigValidator(subsystems, policies);
  let loaded: LoadedConfig;
  let dataDir: string;
  if (configFile) {
    // Every check `kycgate validate` makes, the environment's included, before anything is bound or written.
    loaded = checkConfigFile(configFile, validator);
    dataDir = dataDirectory(loaded.config, loaded.baseDir);
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  } else {
    dataDir = dataDirectory(undefined, process.cwd());
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const tls = await ensureDevCertificate(dataDir);
    loaded = { config: validator.validate(demoConfig(tls)), file: undefined, baseDir: process.cwd() };
  }
  const logger = await createLogger(loaded.config.log);

  let echo: Promise<EchoServer> | undefined;
  const gateway = new Gateway({
    loaded,
    logger,
    dataDir,
    policies,
    subsystems,
    builtinEchoUrl: () => (echo ??= startEchoServer()).then((e) => e.url),
  });
  await gateway.start();
  logger.info(startupSummary(gateway, loaded, dataDir), `kycgate ${VERSION} started`);
  if (!configFile) {
    logger.info('built-in demo running: try  curl -i http://127.0.0.1:8080/demo/echo/hello');
  }

  process.on('SIGHUP', () => void gateway.reload('SIGHUP'));
  const shutdown = (signal: string) => {
    logger.info({ signal }, 'shutting down');
    void gateway
      .stop()
      .then(async () => {
        if (echo) await (await echo).close();
        process.exit(0);
      })
      .catch(() => process.exit(1));
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
  return gateway;
}

/** What a person starting the gateway needs to know: what runs, from which file, on which store, where to reach it. */
export function startupSummary(gateway: Gateway, loaded: LoadedConfig, dataDir: string): Record<string, unknown> {
  const a = gateway.addresses();
  const pages: Record<string, string> = {};
  const kyc = gateway.services.find<KycService>('kyc');
  for (const [name, p] of kyc?.setup.providers ?? []) if (p.pageUrl) pages[name] = p.pageUrl;
  return {
    version: VERSION,
    config: loaded.file ?? 'built-in demo',
    data_dir: dataDir,
    store: describeStore(loaded.config.store as StoreConfig, dataDir),
    listeners: a.listeners,
    ...(a.admin ? { admin: a.admin } : {}),
    ...(a.adminApi ? { admin_api: a.adminApi } : {}),
    ...(a.adminKeyFile ? { admin_key_file: a.adminKeyFile } : {}),
    // The sandbox's hosted verification page (one sandbox: its URL; several: by provider name).
    ...(Object.keys(pages).length === 1 ? { sandbox: Object.values(pages)[0] } : {}),
    ...(Object.keys(pages).length > 1 ? { sandbox: pages } : {}),
  };
}
