/**
 * `kycgate start`: loads the config (or the built-in demo), starts the gateway, and wires signals:
 * SIGHUP reloads, SIGTERM and SIGINT drain and exit 0.
 */
import { mkdirSync } from 'node:fs';
import { pino } from 'pino';
import { ConfigValidator } from '../config/load.js';
import { checkConfigFile } from '../config/check.js';
import { dataDirectory } from '../config/data-dir.js';
import type { LoadedConfig } from '../config/types.js';
import { loadExtensions } from './plugins.js';
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
