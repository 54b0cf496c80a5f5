/**
 * The `resilience` subsystem: the fault registry (faults of the configuration and those armed in the store with
 * `kycgate faults arm`) that the `fault-injection` policy and the KYC subsystem consult. Registered as the service
 * `faults`; when `resilience.faults.enabled` is off the registry stays empty and reads nothing.
 */
import type { Subsystem } from '../subsystems.js';
import { ConfigError } from '../config/load.js';
import type { Store } from '../store/store.js';
import { FaultRegistry } from './faults/registry.js';
import { FaultStore } from './faults/store.js';
import type { ArmedFault } from './faults/spec.js';
import { type ConfiguredFault, type ResilienceConfig, resilienceSchema } from './schema.js';
import { registerResilienceMetrics } from './metrics.js';
import { RESILIENCE_PROBLEMS } from './problems.js';

/** The faults of a configuration, checked: a target that exists, an `until` ahead and within the allowed duration. */
export function configuredFaults(config: ResilienceConfig, now: number): ArmedFault[] {
  const problems: string[] = [];
  const out: ArmedFault[] = [];
  config.faults.armed.forEach((f: ConfiguredFault, i) => {
    const where = `resilience.faults.armed[${i}]`;
    const until = Date.parse(f.until);
    if (Number.isNaN(until)) problems.push(`${where}.until: not a date-time (RFC 3339)`);
    else if (until - now > config.faults.max_duration_s * 1000) {
      problems.push(
        `${where}.until: more than resilience.faults.max_duration_s (${config.faults.max_duration_s} s) ahead`,
      );
    }
    const kind = f.route !== undefined ? 'route' : f.upstream !== undefined ? 'upstream' : 'provider';
    const target = f.route ?? f.upstream ?? f.provider ?? '';
    if (f.abort === undefined && f.delay === undefined && f.webhook_delay_ms === undefined) {
      problems.push(`${where}: give abort, delay or webhook_delay_ms`);
    }
    const spec = {
      ...(f.abort ? { abort: f.abort } : {}),
      ...(f.delay ? { delay: f.delay } : {}),
      ...(f.header ? { header: f.header } : {}),
      ...(f.consumers ? { consumers: f.consumers } : {}),
      ...(f.webhook_delay_ms ? { webhook_delay_ms: f.webhook_delay_ms } : {}),
    };
    out.push({
      id: `config:${f.name ?? `${kind}-${target}-${i}`}`,
      kind,
      target,
      spec,
      armedBy: 'config',
      reason: f.reason,
      armedAt: now,
      until,
      allowCritical: f.allow_critical,
      source: 'config',
    });
  });
  if (problems.length > 0) throw new ConfigError(problems);
  return out;
}

export const resilienceSubsystem: Subsystem = {
  name: 'resilience',
  section: { key: 'resilience', schema: resilienceSchema },
  problems: RESILIENCE_PROBLEMS,
  async start(config, ctx) {
    const section = config.resilience as ResilienceConfig;
    const enabled = section.faults.enabled;
    const store = enabled ? new FaultStore(ctx.services.get<Store>('store')) : undefined;
    await store?.migrate();
    const registry = ctx.services.register(
      'faults',
      new FaultRegistry(store, ctx.services.events, ctx.services.logger),
    );
    const stopMetrics = registerResilienceMetrics(ctx.services, registry);
    if (enabled) {
      registry.configure(configuredFaults(section, Date.now()));
      await registry.start(section.faults.poll_ms);
    }
    return {
      async reload(next) {
        const n = next.resilience as ResilienceConfig;
        if (n.faults.enabled !== enabled)
          ctx.services.logger.warn('resilience.faults.enabled changed: takes effect on restart');
        if (enabled) registry.configure(configuredFaults(n, Date.now()));
      },
      async close() {
        stopMetrics();
        registry.close();
      },
    };
  },
};
