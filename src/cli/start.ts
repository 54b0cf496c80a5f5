/**
 * `kycgate start`: loads the config (or the built-in demo), starts the gateway, and wires signals:
 * SIGHUP reloads, SIGTERM and SIGINT drain and exit 0 (also when they arrive during start-up). With `server.workers` above 1 this process becomes the
 * supervisor (src/cluster/) and every worker it forks runs this same function as a gateway.
 */
import cluster from 'node:cluster';
import os from 'node:os';
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
import { Supervisor } from '../cluster/supervisor.js';
import { workerChannel } from '../cluster/channel.js';
import type { Logger } from 'pino';
import type { PolicyDefinition } from '../pipeline/policy.js';

/** `server.workers` as a number of processes. */
export function workerCount(setting: 'auto' | number): number {
  return setting === 'auto' ? os.availableParallelism() : setting;
}

/** Starts the gateway; with several workers, in the supervisor, starts them and returns undefined. */
export async function startGateway(
  configFile: string | undefined,
  plugins: readonly string[] = [],
): Promise<Gateway | undefined> {
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

  const workers = workerCount(loaded.config.server.workers);
  if (cluster.isPrimary && workers > 1) {
    await supervise(workers, logger, policies, loaded.config.server.drain_timeout_ms);
    return undefined;
  }
  const channel = cluster.isWorker ? workerChannel() : undefined;

  let echo: Promise<EchoServer> | undefined;
  const gateway = new Gateway({
    loaded,
    logger,
    dataDir,
    policies,
    subsystems,
    builtinEchoUrl: () => (echo ??= startEchoServer()).then((e) => e.url),
    ...(channel ? { cluster: channel } : {}),
  });
  // Signals are taken from before start-up: a SIGTERM or SIGHUP that arrives while listeners are opening (a
  // rollout that replaces an instance at once) must not kill the process with the default action. Both wait for
  // start-up to finish, then drain or reload as they would later.
  const starting = gateway.start();
  const started = starting.then(
    () => true,
    () => false,
  );
  let stopping = false;
  process.on('SIGHUP', () => void started.then((ok) => ok && !stopping && gateway.reload('SIGHUP')));
  const shutdown = (signal: string) => {
    // Once: SIGINT from a terminal reaches the supervisor and every worker, which the supervisor then asks again.
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    void started
      .then(async (ok) => {
        // A start-up that failed ends the process with its own error (exit code 1).
        if (!ok) return;
        await gateway.stop();
        if (echo) await (await echo).close();
        process.exit(0);
      })
      .catch(() => process.exit(1));
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  await starting;
  if (stopping) return gateway;
  if (channel === undefined || channel.slot === 0) {
    logger.info(
      { ...startupSummary(gateway, loaded, dataDir), ...(channel ? { workers: channel.workers } : {}) },
      `kycgate ${VERSION} started`,
    );
    if (!configFile) logger.info('built-in demo running: try  curl -i http://127.0.0.1:8080/demo/echo/hello');
  }
  if (channel) {
    const urls: Record<string, string> = {};
    for (const l of gateway.listeners) urls[l.config.name] = gateway.urlOf(l);
    const admin = gateway.admin;
    const a = loaded.config.admin;
    const host = a.address.includes(':') ? `[${a.address}]` : a.address;
    channel.ready(urls, admin ? `${a.tls ? 'https' : 'http'}://${host}:${admin.port}` : undefined);
  }
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

/** The supervisor: forks the workers, restarts dead ones, forwards SIGHUP, drains all on SIGTERM / SIGINT. */
async function supervise(
  workers: number,
  logger: Logger,
  policies: readonly PolicyDefinition[],
  drainTimeoutMs: number,
): Promise<void> {
  const supervisor = new Supervisor({ workers, logger, policies, drainTimeoutMs });
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down every worker');
    void supervisor.stop().then(() => {
      logger.info('stopped');
      process.exit(0);
    });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGHUP', () => supervisor.reload());
  try {
    await supervisor.start();
  } catch (err) {
    stopping = true;
    await supervisor.stop();
    throw err;
  }
}
