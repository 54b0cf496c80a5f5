/**
 * `kycgate faults arm|disarm|list`: arms faults against running gateways for a resilience test. A fault is a row in
 * the store the configuration names; every gateway instance reads the armed ones within `resilience.faults.poll_ms`,
 * records the arming in its audit trail and injects the fault until its `until` or a disarm. The command refuses
 * what would be ambiguous or unsafe: injection disabled, an unknown target, a fault no route would inject, a
 * `critical` route without `--allow-critical`, or a time beyond `resilience.faults.max_duration_s`.
 */
import type { Command } from 'commander';
import os from 'node:os';
import { ConfigError } from '../config/load.js';
import { parseDuration } from '../auth/api-keys/format.js';
import { FaultStore, type FaultRecord } from '../resilience/faults/store.js';
import { checkArmRequest } from '../resilience/faults/arming.js';
import type { FaultSpec, FaultTargetKind } from '../resilience/faults/spec.js';
import { withConfiguredStore, type ConfiguredStore } from './configured-store.js';

interface ArmOptions {
  route?: string;
  upstream?: string;
  provider?: string;
  abort?: string;
  reset?: boolean;
  abortPercent?: string;
  delay?: string;
  delayPercent?: string;
  webhookDelay?: string;
  header?: string;
  consumer?: string[];
  for?: string;
  until?: string;
  allowCritical?: boolean;
  reason?: string;
  by?: string;
  json?: boolean;
  config?: string;
}

function operator(by: string | undefined): string {
  if (by !== undefined && by.trim() !== '') return by.trim();
  try {
    return os.userInfo().username;
  } catch {
    return 'cli';
  }
}

function percentOf(text: string | undefined, flag: string): number {
  if (text === undefined) return 100;
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0 || n > 100) throw new ConfigError([`${flag}: a percentage above 0, at most 100`]);
  return n;
}

function msOf(text: string, flag: string): number {
  const ms = /^\d+$/.test(text.trim()) ? Number(text) : parseDuration(text);
  if (!Number.isInteger(ms) || ms < 1 || ms > 600_000) throw new ConfigError([`${flag}: 1 ms to 10 min`]);
  return ms;
}

/** The fault the options describe (throws ConfigError naming the bad option). */
export function faultFromOptions(opts: ArmOptions): { kind: FaultTargetKind; target: string; spec: FaultSpec } {
  const targets = (['route', 'upstream', 'provider'] as const).filter((k) => opts[k] !== undefined);
  if (targets.length !== 1) throw new ConfigError(['name exactly one target: --route, --upstream or --provider']);
  const kind = targets[0]!;
  const spec: FaultSpec = {};
  if (opts.abort !== undefined || opts.reset) {
    const status = opts.abort === undefined ? undefined : Number(opts.abort);
    if (status !== undefined && !(Number.isInteger(status) && status >= 400 && status <= 599)) {
      throw new ConfigError(['--abort: an HTTP status from 400 to 599']);
    }
    spec.abort = {
      ...(status !== undefined ? { status } : {}),
      ...(opts.reset ? { reset: true } : {}),
      percent: percentOf(opts.abortPercent, '--abort-percent'),
    };
  }
  if (opts.delay !== undefined)
    spec.delay = { ms: msOf(opts.delay, '--delay'), percent: percentOf(opts.delayPercent, '--delay-percent') };
  if (opts.webhookDelay !== undefined) spec.webhook_delay_ms = msOf(opts.webhookDelay, '--webhook-delay');
  if (opts.header !== undefined) {
    const [name, ...rest] = opts.header.split('=');
    if (!/^[A-Za-z0-9-]+$/.test(name ?? '')) throw new ConfigError(['--header: NAME or NAME=VALUE']);
    spec.header = rest.length > 0 ? { name: name!, value: rest.join('=') } : { name: name! };
  }
  if (opts.consumer !== undefined && opts.consumer.length > 0) spec.consumers = opts.consumer;
  return { kind, target: opts[kind]!, spec };
}

function untilOf(opts: ArmOptions, now: number): number {
  if ((opts.for === undefined) === (opts.until === undefined)) throw new ConfigError(['give either --for or --until']);
  if (opts.for !== undefined) return now + parseDuration(opts.for);
  const t = Date.parse(opts.until!);
  if (Number.isNaN(t)) throw new ConfigError(['--until: an RFC 3339 date-time']);
  return t;
}

export function describeFault(f: FaultRecord, now = Date.now()): Record<string, unknown> {
  const state = f.disarmedAt !== undefined ? 'disarmed' : f.until <= now ? 'ended' : 'armed';
  return {
    id: f.id,
    state,
    kind: f.kind,
    target: f.target,
    ...f.spec,
    allow_critical: f.allowCritical,
    armed_by: f.armedBy,
    reason: f.reason,
    armed_at: new Date(f.armedAt).toISOString(),
    until: new Date(f.until).toISOString(),
    ...(f.disarmedAt !== undefined
      ? { disarmed_at: new Date(f.disarmedAt).toISOString(), disarmed_by: f.disarmedBy }
      : {}),
  };
}

function summary(f: FaultRecord): string {
  const s = f.spec;
  const parts: string[] = [];
  if (s.abort) parts.push(`${s.abort.reset ? 'reset' : `abort ${s.abort.status ?? 503}`} ${s.abort.percent}%`);
  if (s.delay) parts.push(`delay ${s.delay.ms}ms ${s.delay.percent}%`);
  if (s.webhook_delay_ms) parts.push(`webhook delay ${s.webhook_delay_ms}ms`);
  if (s.header) parts.push(`header ${s.header.name}${s.header.value === undefined ? '' : '=' + s.header.value}`);
  if (s.consumers) parts.push(`consumers ${s.consumers.join(',')}`);
  return parts.join(', ');
}

function withStore(
  configFile: string | undefined,
  fn: (ctx: ConfiguredStore, faults: FaultStore) => Promise<void>,
): Promise<void> {
  return withConfiguredStore(configFile, async (ctx) => {
    const faults = new FaultStore(ctx.store);
    await faults.migrate();
    await fn(ctx, faults);
  });
}

export function registerFaultsCommand(program: Command): void {
  const faults = program
    .command('faults')
    .description('Arm, disarm and list the faults injected by running gateways for a resilience test (docs/DORA.md).');
  const configOption = [
    '-c, --config <file>',
    "the configuration the gateways run (names the store and data directory; default: the demo's, ./.kycgate)",
  ] as const;

  faults
    .command('arm')
    .description('Arm a fault for a bounded time on a route, an upstream group or a verification provider.')
    .option('--route <name>', 'target: a route')
    .option('--upstream <name>', 'target: an upstream group (every route to it that runs fault-injection)')
    .option('--provider <name>', 'target: a verification provider (kyc.providers)')
    .option('--abort <status>', 'answer with this status instead of forwarding (provider: the call fails as an outage)')
    .option('--reset', 'close the connection without an answer (provider: the provider is unreachable)')
    .option('--abort-percent <n>', 'share of requests aborted, in percent (default 100)')
    .option('--delay <duration>', 'hold each request (or provider call) this long, e.g. 2s, 1500ms')
    .option('--delay-percent <n>', 'share of requests delayed, in percent (default 100)')
    .option('--webhook-delay <duration>', "provider: hold each of the provider's webhooks this long")
    .option('--header <name[=value]>', 'only requests carrying this header (with this value)')
    .option('--consumer <name...>', 'only requests of these consumers')
    .option('--for <duration>', 'armed for this long, e.g. 10m')
    .option('--until <time>', 'armed until this time (RFC 3339)')
    .option('--allow-critical', 'also inject it on routes marked critical')
    .option('--reason <text>', 'why (recorded with the fault and in the audit trail)', 'resilience test')
    .option('--by <name>', 'who arms it (default: the OS user)')
    .option('--json', 'print a JSON object instead of text')
    .option(...configOption)
    .action((opts: ArmOptions) =>
      withStore(opts.config, async ({ config }, store) => {
        const now = Date.now();
        const fault = faultFromOptions(opts);
        const until = untilOf(opts, now);
        const allowCritical = opts.allowCritical === true;
        const check = checkArmRequest(config, { ...fault, until, allowCritical }, now);
        if (check.refusals.length > 0) throw new ConfigError(check.refusals.map((r) => `not armed: ${r}`));
        const record = await store.arm({
          ...fault,
          armedBy: operator(opts.by),
          reason: opts.reason ?? 'resilience test',
          armedAt: now,
          until,
          allowCritical,
        });
        if (opts.json)
          process.stdout.write(JSON.stringify({ ...describeFault(record, now), routes: check.routes }) + '\n');
        else {
          process.stdout.write(
            `armed ${record.id} on ${record.kind} ${record.target} until ${new Date(until).toISOString()}: ${summary(record)}\n` +
              (check.routes.length > 0 ? `routes: ${check.routes.join(', ')}\n` : ''),
          );
        }
      }),
    );

  faults
    .command('disarm')
    .description('End armed faults now, on every gateway (within resilience.faults.poll_ms).')
    .argument('[id...]', 'the faults to end')
    .option('--all', 'end every armed fault')
    .option('--by <name>', 'who disarms (default: the OS user)')
    .option(...configOption)
    .action((ids: string[], opts: { all?: boolean; by?: string; config?: string }) =>
      withStore(opts.config, async (_ctx, store) => {
        const now = Date.now();
        if (ids.length > 0 === (opts.all === true)) throw new ConfigError(['name the faults to disarm, or give --all']);
        const targets = opts.all ? (await store.active(now)).map((f) => f.id) : ids;
        const missing: string[] = [];
        for (const id of targets) {
          if (await store.disarm(id, operator(opts.by), now)) process.stdout.write(`disarmed ${id}\n`);
          else missing.push(id);
        }
        if (missing.length > 0) throw new Error(`not armed: ${missing.join(', ')}`);
        if (targets.length === 0) process.stdout.write('no fault armed\n');
      }),
    );

  faults
    .command('list')
    .description('List the faults armed now (or, with --since, every fault armed since then).')
    .option('--since <time>', 'every fault armed since this time (RFC 3339, or a duration back such as 7d)')
    .option('--json', 'print JSON lines')
    .option(...configOption)
    .action((opts: { since?: string; json?: boolean; config?: string }) =>
      withStore(opts.config, async (_ctx, store) => {
        const now = Date.now();
        let list: FaultRecord[];
        if (opts.since === undefined) list = await store.active(now);
        else {
          const t = /^\d+(ms|s|m|h|d)$/.test(opts.since) ? now - parseDuration(opts.since) : Date.parse(opts.since);
          if (Number.isNaN(t)) throw new ConfigError(['--since: an RFC 3339 date-time or a duration such as 7d']);
          list = await store.history(t, 1000);
        }
        if (opts.json) {
          for (const f of list) process.stdout.write(JSON.stringify(describeFault(f, now)) + '\n');
          return;
        }
        if (list.length === 0)
          process.stdout.write(opts.since === undefined ? 'no fault armed\n' : 'no fault armed since then\n');
        for (const f of list) {
          const d = describeFault(f, now);
          process.stdout.write(
            `${f.id}  ${String(d.state).padEnd(8)} ${f.kind} ${f.target}  until ${String(d.until)}  ${summary(f)}  (${f.armedBy}: ${f.reason})\n`,
          );
        }
      }),
    );
}
