/**
 * `kycgate drill run FILE`: runs a resilience test scenario against running gateways (faults armed through the
 * store the configuration names, traffic driven to the scenario's gateway URL) and writes the report as JSON (and
 * HTML with --html). Exits 0 when every objective was kept and verified users were unaffected, 2 when not, 1 when
 * the drill could not run. Ctrl-C stops it early; its faults are disarmed all the same.
 */
import type { Command } from 'commander';
import os from 'node:os';
import { writeFileSync } from 'node:fs';
import { ConfigError } from '../config/load.js';
import { FaultStore } from '../resilience/faults/store.js';
import { loadScenario } from '../resilience/drills/scenario.js';
import { runDrill, type DrillOptions } from '../resilience/drills/run.js';
import { drillReportHtml } from '../resilience/drills/html.js';
import { openConfiguredStore, type ConfiguredStore } from './configured-store.js';

interface DrillCliOptions {
  config?: string;
  out?: string;
  html?: string;
  gateway?: string;
  by?: string;
}

export function registerDrillCommand(
  program: Command,
  incidents?: (ctx: ConfiguredStore) => DrillOptions['incidents'],
): void {
  const drill = program
    .command('drill')
    .description('Resilience tests (DORA Art. 24-25): run a drill scenario (docs/DORA.md).');
  drill
    .command('run')
    .description('Arm the faults a scenario describes, drive its traffic, and write the resilience test report.')
    .argument('<file>', 'drill scenario (YAML), e.g. examples/drills/provider-outage.yaml')
    .option('-c, --config <file>', 'the configuration the gateways run (names the store the faults are armed in)')
    .option('--gateway <url>', "send the traffic here instead of the scenario's `gateway`")
    .option('--out <file>', 'write the JSON report to this file (default: stdout)')
    .option('--html <file>', 'also write the report as an HTML page')
    .option('--by <name>', 'who runs the drill (default: the OS user)')
    .action(async (file: string, opts: DrillCliOptions) => {
      let ctx: ConfiguredStore | undefined;
      const abort = new AbortController();
      const stop = () => {
        process.stderr.write('drill: stopping early; disarming its faults\n');
        abort.abort();
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      try {
        const scenario = loadScenario(file);
        if (opts.gateway !== undefined) scenario.gateway = opts.gateway;
        ctx = openConfiguredStore(opts.config);
        const store = new FaultStore(ctx.store);
        await store.migrate();
        const { before, fault, after } = scenario.durations;
        process.stderr.write(
          `drill ${scenario.name}: ${(before + fault + after) / 1000} s against ${scenario.gateway}\n`,
        );
        const report = await runDrill(scenario, ctx.config, store, {
          operator: opts.by ?? os.userInfo().username,
          signal: abort.signal,
          ...(incidents ? { incidents: incidents(ctx) } : {}),
          onPhase: (phase, at) => process.stderr.write(`drill: ${phase} phase from ${new Date(at).toISOString()}\n`),
        });
        const json = JSON.stringify(report, null, 2) + '\n';
        if (opts.out !== undefined) writeFileSync(opts.out, json);
        else process.stdout.write(json);
        if (opts.html !== undefined) writeFileSync(opts.html, drillReportHtml(report));
        process.stderr.write(`drill ${scenario.name}: ${report.result}\n`);
        process.exitCode = report.result === 'passed' ? 0 : 2;
      } catch (err) {
        process.stderr.write(`kycgate: ${err instanceof ConfigError ? err.message : (err as Error).message}\n`);
        process.exitCode = 1;
      } finally {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        await ctx?.store.close().catch(() => undefined);
      }
    });
}
