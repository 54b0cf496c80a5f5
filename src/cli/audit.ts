/**
 * `kycgate audit verify` checks a journal's hash chain and signed checkpoints and names the first record that was
 * modified, deleted, inserted or reordered; `kycgate audit export` writes the records of a time window as JSON
 * lines or CEF, for an incident report or a SIEM import.
 */
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { verifyAuditTrail, loadPublicKey } from '../audit/verify.js';
import { exportRecords } from '../audit/export.js';
import { auditDirectory } from '../audit/subsystem.js';
import { loadCliConfig } from './configured-store.js';

function version(): string {
  try {
    const file = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../../package.json');
    return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
  } catch {
    return '0';
  }
}

function parseTime(value: string | undefined, name: string): Date | undefined {
  if (value === undefined) return undefined;
  const t = new Date(value);
  if (Number.isNaN(t.getTime())) {
    process.stderr.write(
      `kycgate audit export: ${name} is not a date/time (use ISO 8601, e.g. 2026-03-14T09:00:00Z)\n`,
    );
    process.exit(2);
  }
  return t;
}

export function registerAuditCommand(program: Command): void {
  const audit = program.command('audit').description('Check and extract the tamper-evident audit journal.');
  // The journal of the gateway given the same config (its data directory), or of the demo's without one.
  const journalDir = (opts: { journal?: string; config?: string }) => {
    if (opts.journal) return path.resolve(opts.journal);
    const dir = auditDirectory(loadCliConfig(opts.config).dataDir);
    process.stderr.write(`kycgate: audit journal: ${dir}\n`);
    return dir;
  };

  audit
    .command('verify')
    .description('Verify the hash chain and signed checkpoints; exits 1 and names the first altered record.')
    .option('-c, --config <file>', "the gateway's configuration: its data directory holds the journal")
    .option('--journal <dir>', 'audit directory (default: <data directory of --config, or ./.kycgate>/audit)')
    .option(
      '--public-key <pem>',
      'PEM public key checkpoints must be signed with (default: signing-key.pub.pem in the audit directory; pass a copy kept elsewhere for a real audit)',
    )
    .option('--json', 'print the result as JSON')
    .action((opts: { journal?: string; config?: string; publicKey?: string; json?: boolean }) => {
      let result: ReturnType<typeof verifyAuditTrail>;
      try {
        const dir = journalDir(opts);
        result = verifyAuditTrail(dir, loadPublicKey(dir, opts.publicKey));
      } catch (err) {
        process.stderr.write(`kycgate audit verify: ${(err as Error).message}\n`);
        process.exit(2);
      }
      if (opts.json) process.stdout.write(JSON.stringify(result) + '\n');
      else if (result.ok && result.chains.length > 1) {
        // One chain per worker (`server.workers`): each is checked on its own, the trail is their union.
        process.stdout.write(`OK: ${result.records} records in ${result.chains.length} chains, each intact\n`);
        for (const c of result.chains)
          process.stdout.write(
            `  ${c.chain || '.'}: ${c.records} records (seq ${c.records ? c.firstSeq : 0}..${c.lastSeq}), ` +
              `${c.checkpoints} signed checkpoints, signed through seq ${c.signedThrough}\n`,
          );
      } else if (result.ok) {
        process.stdout.write(
          `OK: ${result.records} records (seq ${result.records ? result.firstSeq : 0}..${result.lastSeq}), ` +
            `chain intact, ${result.checkpoints} signed checkpoints, signed through seq ${result.signedThrough}` +
            (result.lastSeq > result.signedThrough
              ? ` (${result.lastSeq - result.signedThrough} newer records covered by the chain only)`
              : '') +
            '\n',
        );
      } else {
        process.stdout.write(`TAMPERED: ${result.problem!.message}\n`);
      }
      process.exit(result.ok ? 0 : 1);
    });

  audit
    .command('export')
    .description('Write the records of a time window to stdout as JSON lines (as stored) or CEF.')
    .option('-c, --config <file>', "the gateway's configuration: its data directory holds the journal")
    .option('--journal <dir>', 'audit directory (default: <data directory of --config, or ./.kycgate>/audit)')
    .option('--since <time>', 'first instant included (ISO 8601)')
    .option('--until <time>', 'first instant excluded (ISO 8601)')
    .option('--format <format>', 'jsonl or cef', 'jsonl')
    .action((opts: { journal?: string; config?: string; since?: string; until?: string; format: string }) => {
      if (opts.format !== 'jsonl' && opts.format !== 'cef') {
        process.stderr.write('kycgate audit export: --format must be jsonl or cef\n');
        process.exit(2);
      }
      const since = parseTime(opts.since, '--since');
      const until = parseTime(opts.until, '--until');
      let dir: string;
      try {
        dir = journalDir(opts);
      } catch (err) {
        process.stderr.write(`kycgate audit export: ${(err as Error).message}\n`);
        process.exit(2);
      }
      let out = '';
      for (const line of exportRecords(dir, {
        format: opts.format,
        version: version(),
        ...(since ? { since } : {}),
        ...(until ? { until } : {}),
      })) {
        out += line + '\n';
        if (out.length > 1 << 20) {
          process.stdout.write(out);
          out = '';
        }
      }
      process.stdout.write(out);
    });
}
