/**
 * The faults armed now, on this instance: those of the configuration and those armed in the shared store (read
 * every `poll_ms`). The fault-injection policy, the KYC subsystem and the webhook policy look faults up here on every
 * request or call: a single boolean when nothing is armed, which is always, outside a resilience test.
 *
 * Arming and disarming are events (`fault.armed`, `fault.disarmed`: audit trail, metrics), seen by every instance.
 */
import type { Logger } from 'pino';
import type { EventBus } from '../../pipeline/events.js';
import { rolls, type ArmedFault, type FaultTargetKind } from './spec.js';
import type { FaultStore } from './store.js';

const NONE: readonly ArmedFault[] = Object.freeze([]);

export class FaultRegistry {
  private configured: readonly ArmedFault[] = NONE;
  private stored: readonly ArmedFault[] = NONE;
  private byTarget = new Map<string, ArmedFault[]>();
  private known = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private polling = false;
  /** True while no fault is armed: the only thing the request path reads then. */
  empty = true;

  constructor(
    private readonly store: FaultStore | undefined,
    private readonly events: EventBus,
    private readonly logger: Logger,
    private readonly clock: () => number = Date.now,
  ) {}

  /** Faults from the configuration (replaced on every reload). */
  configure(faults: readonly ArmedFault[]): void {
    this.configured = faults;
    this.rebuild();
  }

  /** Reads the store now and then every `pollMs`. */
  async start(pollMs: number): Promise<void> {
    await this.poll();
    this.timer = setInterval(() => void this.poll(), pollMs);
    this.timer.unref();
  }

  close(): void {
    clearInterval(this.timer);
  }

  /** Reads the faults armed in the store; a store that does not answer leaves the last known ones in place. */
  async poll(): Promise<void> {
    if (this.store === undefined || this.polling) return;
    this.polling = true;
    try {
      this.stored = await this.store.active(this.clock());
      this.rebuild();
    } catch (err) {
      this.logger.warn({ err }, 'armed faults could not be read from the store; the last known ones stay');
    } finally {
      this.polling = false;
    }
  }

  private rebuild(): void {
    const now = this.clock();
    const byTarget = new Map<string, ArmedFault[]>();
    const current = new Set<string>();
    for (const f of [...this.configured, ...this.stored]) {
      if (f.until <= now) continue;
      current.add(f.id);
      const key = f.kind + '\u0000' + f.target;
      const list = byTarget.get(key);
      if (list === undefined) byTarget.set(key, [f]);
      else list.push(f);
      if (!this.known.has(f.id)) {
        this.logger.warn(
          {
            fault: f.id,
            kind: f.kind,
            target: f.target,
            until: new Date(f.until).toISOString(),
            armed_by: f.armedBy,
            reason: f.reason,
          },
          'fault armed',
        );
        this.events.emit({
          type: 'fault.armed',
          outcome: f.kind,
          data: {
            fault: f.id,
            kind: f.kind,
            target: f.target,
            spec: f.spec,
            until: new Date(f.until).toISOString(),
            armed_by: f.armedBy,
            reason: f.reason,
            source: f.source,
          },
        });
      }
    }
    for (const id of this.known) {
      if (current.has(id)) continue;
      this.logger.info({ fault: id }, 'fault no longer armed');
      this.events.emit({ type: 'fault.disarmed', outcome: 'ended', data: { fault: id } });
    }
    this.known = current;
    this.byTarget = byTarget;
    this.empty = byTarget.size === 0;
    // A fault ends at its `until` even when nothing else changes: look again then.
    if (!this.empty && this.store === undefined) {
      const next = Math.min(...[...byTarget.values()].flat().map((f) => f.until));
      setTimeout(() => this.rebuild(), Math.max(1, next - now)).unref();
    }
  }

  /** The faults armed now on one target (the shared empty list when none). */
  on(kind: FaultTargetKind, target: string): readonly ArmedFault[] {
    if (this.empty) return NONE;
    const list = this.byTarget.get(kind + '\u0000' + target);
    if (list === undefined) return NONE;
    const now = this.clock();
    return list.every((f) => f.until > now) ? list : list.filter((f) => f.until > now);
  }

  /**
   * What a resilience test does to one call to a provider's API now: a delay, then possibly a failure (a 5xx, or
   * unreachable for `reset`). Undefined when nothing is armed on it. Each effect applied is a `fault.injected` event.
   */
  providerCall(
    provider: string,
    operation: string,
  ): { delayMs?: number; fail?: 'server_error' | 'unreachable' } | undefined {
    if (this.empty) return undefined;
    const faults = this.on('provider', provider);
    if (faults.length === 0) return undefined;
    let delayMs: number | undefined;
    let fail: 'server_error' | 'unreachable' | undefined;
    for (const f of faults) {
      const { abort, delay } = f.spec;
      if (delay !== undefined && rolls(delay.percent) && delay.ms > (delayMs ?? 0)) {
        delayMs = delay.ms;
        this.injected(f, 'delay', { operation, delay_ms: delay.ms });
      }
      if (abort !== undefined && fail === undefined && rolls(abort.percent)) {
        fail = abort.reset ? 'unreachable' : 'server_error';
        this.injected(f, abort.reset ? 'reset' : 'abort', { operation });
      }
    }
    if (delayMs === undefined && fail === undefined) return undefined;
    return { ...(delayMs !== undefined ? { delayMs } : {}), ...(fail !== undefined ? { fail } : {}) };
  }

  private injected(f: ArmedFault, effect: string, data: Record<string, unknown>): void {
    this.events.emit({
      type: 'fault.injected',
      outcome: effect,
      data: { fault: f.id, kind: f.kind, target: f.target, ...data },
    });
  }

  /** The webhook delay armed on a provider now, if any (the longest when several are). */
  webhookDelay(provider: string): { fault: ArmedFault; ms: number } | undefined {
    let found: { fault: ArmedFault; ms: number } | undefined;
    for (const f of this.on('provider', provider)) {
      const ms = f.spec.webhook_delay_ms;
      if (ms !== undefined && (found === undefined || ms > found.ms)) found = { fault: f, ms };
    }
    return found;
  }

  /** Every fault armed now. */
  all(): ArmedFault[] {
    return [...this.byTarget.values()].flat();
  }
}
