/**
 * fault-injection: injects the faults armed on the request's route or on the upstream group it goes to (as Envoy's
 * fault filter does), for resilience tests: abort with a status or a connection reset, or a delay, for a share of
 * the requests, optionally only those carrying a header or from named consumers. Faults are armed in the
 * `resilience` section or with `kycgate faults arm`, only for a bounded time, and never on a route marked
 * `critical` unless the fault allows it. Every injection is a `fault.injected` event (audit trail, metrics).
 *
 * It runs last (phase transform), so authentication, limits and the KYC gate decide first, and the fault stands for
 * what happens behind them. With nothing armed it costs one boolean.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { problem, type Problem } from '../../pipeline/problem.js';
import type { RequestContext } from '../../pipeline/context.js';
import type { PolicyDefinition, PolicyInstance, PolicyResult } from '../../pipeline/policy.js';
import type { EventBus } from '../../pipeline/events.js';
import type { FaultRegistry } from '../../resilience/faults/registry.js';
import { abortKind, rolls, type ArmedFault } from '../../resilience/faults/spec.js';
import { FAULT_INJECTED } from '../../resilience/problems.js';
import { faultInjectionSchema } from './schema.js';

function applies(ctx: RequestContext, f: ArmedFault): boolean {
  const s = f.spec;
  if (s.header !== undefined) {
    const value = ctx.header(s.header.name.toLowerCase());
    if (value === undefined || (s.header.value !== undefined && value !== s.header.value)) return false;
  }
  if (s.consumers !== undefined) {
    const consumer = ctx.identity?.consumer;
    if (consumer === undefined || !s.consumers.includes(consumer)) return false;
  }
  return true;
}

class FaultInjection implements PolicyInstance {
  /** Faults are rolled per request: a front proxy may reuse an answer only while none is armed (bounded below). */
  readonly decisionReuse = 'reusable';

  constructor(
    private readonly registry: FaultRegistry,
    private readonly events: EventBus,
  ) {}

  onRequest(ctx: RequestContext): PolicyResult | Promise<PolicyResult> {
    if (this.registry.empty) return undefined;
    const onRoute = this.registry.on('route', ctx.route.name);
    const upstream = ctx.upstream?.name;
    const onUpstream = upstream === undefined ? onRoute.slice(0, 0) : this.registry.on('upstream', upstream);
    if (onRoute.length === 0 && onUpstream.length === 0) return undefined;
    ctx.limitCacheTtl(0);
    let delayMs = 0;
    let delayed: ArmedFault | undefined;
    for (const f of [...onRoute, ...onUpstream]) {
      if (!applies(ctx, f)) continue;
      if (ctx.route.critical && !f.allowCritical) {
        this.events.emit({
          type: 'fault.refused',
          requestId: ctx.id,
          route: ctx.route.name,
          outcome: 'critical_route',
          data: { fault: f.id, kind: f.kind, target: f.target },
        });
        continue;
      }
      const abort = f.spec.abort;
      if (abort !== undefined && rolls(abort.percent)) return this.abort(ctx, f);
      const delay = f.spec.delay;
      if (delay !== undefined && delay.ms > delayMs && rolls(delay.percent)) {
        delayMs = delay.ms;
        delayed = f;
      }
    }
    if (delayed === undefined) return undefined;
    this.injected(ctx, delayed, 'delay', { delay_ms: delayMs });
    return sleep(delayMs).then(() => undefined);
  }

  private abort(ctx: RequestContext, f: ArmedFault): Problem | undefined {
    const abort = f.spec.abort!;
    ctx.decision = { outcome: 'fault', policy: 'fault-injection', rule: f.id };
    if (abort.reset) {
      this.injected(ctx, f, 'reset', {});
      // The client sees its connection end without an answer (recorded as 499 by the gateway).
      ctx.req?.socket.destroy();
      return problem('service-unavailable', { detail: 'Fault injected: connection reset.' });
    }
    const status = abort.status ?? 503;
    this.injected(ctx, f, 'abort', { status });
    const detail = 'Fault injected by a resilience test.';
    return status >= 500 && status !== 501 && status <= 504
      ? problem(abortKind(status), { status, detail, headers: { 'retry-after': 1 } })
      : problem(FAULT_INJECTED, { status, detail });
  }

  private injected(ctx: RequestContext, f: ArmedFault, effect: string, data: Record<string, unknown>): void {
    this.events.emit({
      type: 'fault.injected',
      requestId: ctx.id,
      route: ctx.route.name,
      outcome: effect,
      data: { fault: f.id, kind: f.kind, target: f.target, ...data },
    });
  }
}

export const faultInjectionPolicy: PolicyDefinition<Record<string, never>> = {
  name: 'fault-injection',
  description:
    'Injects the faults armed on the route or its upstream group (abort, reset, delay) for resilience tests; never on routes marked critical unless allowed.',
  phase: 'transform',
  schema: faultInjectionSchema,
  create(_config, setup) {
    return new FaultInjection(setup.services.get<FaultRegistry>('faults'), setup.services.events);
  },
};
