/**
 * `kycgate start`: loads the config (or the built-in demo), starts the gateway, and wires signals:
 * SIGHUP reloads, SIGTERM and SIGINT drain and exit 0. With `server.workers` above 1 this process becomes the
 * supervisor (src/cluster/) and every worker it forks runs this same function as a gateway.
 */
import cluster from 'node:cluster';
import os from 'node:os';
import path from 'node:path';
import { mkdirSync } from 'node:fs';
import { pino } from 'pino';
import { ConfigValidator, loadConfigFile } from '../config/load.js';
import type { LoadedConfig } from '../config/types.js';
import { loadExtensions } from './plugins.js';
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

export function dataDirectory(): string {
  return path.resolve(process.env.KYCGATE_DATA_DIR ?? '.kycgate');
}

export async function startGateway(configFile: string | undefined, plugins: readonly string[] = []): Promise<void> {
  const { policies, subsystems } = await loadExtensions(plugins);
  const dataDir = dataDirectory();
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const validator = new ConfigValidator(subsystems, policies);
  let loaded: LoadedConfig;
  if (configFile) {
    loaded = loadConfigFile(configFile, validator);
  } else {
    const tls = await ensureDevCertificate(dataDir);
    loaded = { config: validator.validate(demoConfig(tls)), file: undefined, baseDir: process.cwd() };
  }
  // Asynchronous destination: a log line is queued and written by the next event-loop turn's batch instead of one
  // blocking write(2) per line on the request path (the access log writes a line per request). Pino flushes the
  // queue synchronously when the process exits, however it exits.
  const logger = pino(
    {
      level: loaded.config.log.level,
      base: { service: 'kycgate' },
      redact: { paths: ['*.authorization', '*.cookie', '*["x-api-key"]'], censor: '[redacted]' },
    },
    pino.destination({ dest: 1, sync: false }),
  );

  const workers = workerCount(loaded.config.server.workers);
  if (cluster.isPrimary && workers > 1)
    return supervise(workers, logger, policies, loaded.config.server.drain_timeout_ms);
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
  await gateway.start();
  if (!configFile && (channel === undefined || channel.slot === 0)) {
    logger.info('built-in demo running: try  curl -i http://127.0.0.1:8080/demo/echo/hello');
  }

  process.on('SIGHUP', () => void gateway.reload('SIGHUP'));
  let stopping = false;
  const shutdown = (signal: string) => {
    // Once: SIGINT from a terminal reaches the supervisor and every worker, which the supervisor then asks again.
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    void gateway
      .stop()
      .then(async () => {
        if (echo) await (await echo).close();
        process.exit(0);
      })
      .catch(() => process.exit(1));
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  if (channel) {
    const urls: Record<string, string> = {};
    for (const l of gateway.listeners) urls[l.config.name] = gateway.urlOf(l);
    const admin = gateway.admin;
    const a = loaded.config.admin;
    const host = a.address.includes(':') ? `[${a.address}]` : a.address;
    channel.ready(urls, admin ? `${a.tls ? 'https' : 'http'}://${host}:${admin.port}` : undefined);
  }
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
