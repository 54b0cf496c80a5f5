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
import { checkArmRequest } from './faults/arming.js';
import type { GatewayConfig } from '../config/types.js';
import { type ConfiguredFault, type ResilienceConfig, resilienceSchema } from './schema.js';
import { registerResilienceMetrics } from './metrics.js';
import { RESILIENCE_PROBLEMS } from './problems.js';

/**
 * The faults of a configuration, checked as `kycgate faults arm` checks them: a target that exists and that some
 * route injects on, a critical route only with `allow_critical`, an `until` ahead and within the allowed duration.
 * A fault whose `until` has passed is skipped (a test that ended), not an error.
 */
export function configuredFaults(config: GatewayConfig, now: number): ArmedFault[] {
  const section = config.resilience as ResilienceConfig;
  const problems: string[] = [];
  const out: ArmedFault[] = [];
  section.faults.armed.forEach((f: ConfiguredFault, i) => {
    const where = `resilience.faults.armed[${i}]`;
    const until = Date.parse(f.until);
    if (Number.isNaN(until)) {
      problems.push(`${where}.until: not a date-time (RFC 3339)`);
      return;
    }
    if (until <= now) return;
    const kind = f.route !== undefined ? 'route' : f.upstream !== undefined ? 'upstream' : 'provider';
    const target = f.route ?? f.upstream ?? f.provider ?? '';
    const spec = {
      ...(f.abort ? { abort: f.abort } : {}),
      ...(f.delay ? { delay: f.delay } : {}),
      ...(f.header ? { header: f.header } : {}),
      ...(f.consumers ? { consumers: f.consumers } : {}),
      ...(f.webhook_delay_ms ? { webhook_delay_ms: f.webhook_delay_ms } : {}),
    };
    const check = checkArmRequest(config, { kind, target, spec, until, allowCritical: f.allow_critical }, now);
    for (const r of check.refusals) problems.push(`${where}: ${r}`);
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
    // Faults armed in a configuration with injection off are refused (configuredFaults says why), not ignored.
    if (enabled || section.faults.armed.length > 0) registry.configure(configuredFaults(config, Date.now()));
    if (enabled) await registry.start(section.faults.poll_ms);
    return {
      async reload(next) {
        const n = next.resilience as ResilienceConfig;
        if (n.faults.enabled !== enabled)
          ctx.services.logger.warn('resilience.faults.enabled changed: takes effect on restart');
        if (enabled || n.faults.armed.length > 0) registry.configure(configuredFaults(next, Date.now()));
      },
      async close() {
        stopMetrics();
        registry.close();
      },
    };
  },
};
