/**
 * Checks a fault before it is armed against a running gateway (`kycgate faults arm`, drills): fault injection is
 * enabled, the target exists in the configuration the gateways run, the fault would reach at least one route (the
 * route carries the `fault-injection` policy), a route marked `critical` is only faulted with the explicit override,
 * and `until` is ahead and within `resilience.faults.max_duration_s`. Refusing here is what keeps a typo from
 * arming a fault that silently does nothing, or one that would hit a critical function.
 */
import type { GatewayConfig, PolicyConfigEntry, RouteConfig } from '../../config/types.js';
import type { ResilienceConfig } from '../schema.js';
import type { FaultSpec, FaultTargetKind } from './spec.js';

export interface ArmRequest {
  kind: FaultTargetKind;
  target: string;
  spec: FaultSpec;
  /** Epoch ms. */
  until: number;
  allowCritical: boolean;
}

export interface ArmCheck {
  /** Why the fault must not be armed (empty: it may). */
  refusals: string[];
  /** Routes it will be injected on (route and upstream faults). */
  routes: string[];
}

function policyName(entry: PolicyConfigEntry): string {
  return typeof entry === 'string' ? entry : Object.keys(entry)[0]!;
}

/** Whether requests on the route go through the fault-injection policy. */
export function routeInjects(config: GatewayConfig, route: RouteConfig): boolean {
  if (route.policies.some((p) => policyName(p) === 'fault-injection')) return true;
  if ((route.disable_default_policies ?? []).includes('fault-injection')) return false;
  return config.defaults.policies.some((p) => policyName(p) === 'fault-injection');
}

export function checkArmRequest(config: GatewayConfig, req: ArmRequest, now: number): ArmCheck {
  const refusals: string[] = [];
  const resilience = config.resilience as ResilienceConfig | undefined;
  if (resilience?.faults.enabled !== true) {
    refusals.push('fault injection is off in this configuration (resilience.faults.enabled: false)');
  }
  if (req.until <= now) refusals.push('`until` is not in the future');
  const maxS = resilience?.faults.max_duration_s ?? 86400;
  if (req.until - now > maxS * 1000) {
    refusals.push(`armed for longer than resilience.faults.max_duration_s (${maxS} s)`);
  }
  const s = req.spec;
  if (s.abort === undefined && s.delay === undefined && s.webhook_delay_ms === undefined) {
    refusals.push('nothing to inject: give an abort, a delay or a webhook delay');
  }
  const routes: string[] = [];
  if (req.kind === 'provider') {
    const providers = (config.kyc as { providers?: Record<string, unknown> } | undefined)?.providers ?? {};
    if (!(req.target in providers)) refusals.push(`no verification provider named "${req.target}" in kyc.providers`);
    if (s.header !== undefined || s.consumers !== undefined) {
      refusals.push('header and consumer matches apply to route and upstream faults only');
    }
    return { refusals, routes };
  }
  if (s.webhook_delay_ms !== undefined) refusals.push('webhook delays apply to provider faults only');
  let targeted: RouteConfig[];
  if (req.kind === 'route') {
    targeted = config.routes.filter((r) => r.name === req.target);
    if (targeted.length === 0) refusals.push(`no route named "${req.target}"`);
  } else {
    if (!(req.target in config.upstreams)) refusals.push(`no upstream group named "${req.target}"`);
    targeted = config.routes.filter((r) => r.upstream === req.target);
  }
  for (const r of targeted) {
    if (!routeInjects(config, r)) continue;
    if (r.critical === true && !req.allowCritical) {
      if (req.kind === 'route')
        refusals.push(`route "${r.name}" is marked critical: arm with the critical override to fault it`);
      continue;
    }
    routes.push(r.name);
  }
  if (targeted.length > 0 && routes.length === 0 && refusals.length === 0) {
    refusals.push(
      req.kind === 'route'
        ? `route "${req.target}" does not run the fault-injection policy (add it to the route or to defaults.policies)`
        : `no route to upstream "${req.target}" runs the fault-injection policy without being critical`,
    );
  }
  return { refusals, routes };
}
