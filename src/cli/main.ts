#!/usr/bin/env node
/**
 * kycgate command line: start the gateway, validate a config, print the config schema.
 */
// First import: runs before every other subsystem (see pin-tick-records.ts).
import './pin-tick-records.js';
import { Command } from 'commander';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ConfigError, ConfigValidator, fullSchema } from '../config/load.js';
import { checkConfigFile } from '../config/check.js';
import { SUBSYSTEMS, POLICIES } from '../bundled.js';
import { startGateway } from './start.js';
import { loadExtensions } from './plugins.js';
import { registerKeysCommand } from './keys.js';
import { registerAuditCommand } from './audit.js';
import { registerFaultsCommand } from './faults.js';
import { registerDrillCommand } from './drill.js';
import { registerAdminCommand } from './admin.js';
import { registerInitCommand } from './init.js';
import { printConfig } from './print-config.js';
import { drillIncidentSource, registerIncidentsCommand } from './incidents.js';

const pkg = JSON.parse(
  readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), '../../../package.json'), 'utf8'),
) as { version: string };

const program = new Command();
program
  .name('kycgate')
  .description('Identity-aware API gateway: authentication, KYC gating, rate limits and audit in front of your APIs.')
  .version(pkg.version);

program
  .command('start')
  .description('Start the gateway. Without --config, runs the built-in demo (HTTP :8080, HTTPS :8443, admin :9901).')
  .option('-c, --config <file>', 'YAML configuration file')
  .option(
    '--plugin <file...>',
    'load policies and verification-provider types from these subsystems (their default export: { policies, providers })',
  )
  .option('--print-config', 'print the effective configuration (defaults filled in, secrets redacted) and exit')
  .action(async (opts: { config?: string; plugin?: string[]; printConfig?: boolean }) => {
    try {
      if (opts.printConfig) {
        const { policies, subsystems } = await loadExtensions(opts.plugin ?? []);
        process.stdout.write(printConfig(opts.config, new ConfigValidator(subsystems, policies)));
        return;
      }
      await startGateway(opts.config, opts.plugin ?? []);
    } catch (err) {
      if (err instanceof ConfigError) {
        process.stderr.write(`kycgate: ${err.message}\n`);
      } else {
        process.stderr.write(`kycgate: cannot start: ${(err as Error).message}\n`);
      }
      process.exit(1);
    }
  });

program
  .command('validate')
  .description(
    'Check a configuration file and name every problem in one run: schema, references, policy options, provider ' +
      'types, secret references and the files it names (certificates, keys, CA bundles). Exits 1 when it is not valid.',
  )
  .argument('<file>', 'YAML configuration file')
  .option('--offline', 'skip the checks that need the environment (secret references, files)')
  .option('--plugin <file...>', 'load policies and verification-provider types from these subsystems, as `start` does')
  .action(async (file: string, opts: { plugin?: string[]; offline?: boolean }) => {
    try {
      const { policies, subsystems } = await loadExtensions(opts.plugin ?? []);
      checkConfigFile(file, new ConfigValidator(subsystems, policies), { offline: opts.offline === true });
      process.stdout.write(`${file}: valid${opts.offline ? ' (offline: secrets and files not checked)' : ''}\n`);
    } catch (err) {
      process.stderr.write(
        err instanceof ConfigError ? `${file}: ${err.message}\n` : `${file}: ${(err as Error).message}\n`,
      );
      process.exit(1);
    }
  });

program
  .command('schema')
  .description('Print the JSON Schema of the configuration file.')
  .action(() => {
    process.stdout.write(JSON.stringify(fullSchema(SUBSYSTEMS, POLICIES), null, 2) + '\n');
  });

registerKeysCommand(program);
registerAuditCommand(program);
registerFaultsCommand(program);
registerDrillCommand(program, drillIncidentSource);
registerIncidentsCommand(program);
registerAdminCommand(program);
registerInitCommand(program);

await program.parseAsync(process.argv);
