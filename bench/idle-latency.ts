/**
 * Holds the CPUs out of deep idle states while latency is measured, the way tuned's `latency-performance` profile
 * does: a PM QoS request of 0 µs written to /dev/cpu_dma_latency, kept while the file stays open. Idle CPUs then
 * poll instead of halting. On a virtual machine a halted virtual CPU is woken through the hypervisor, and on the
 * benchmark machine that cost a proxy's answers at 1,000 req/s about 0.15 ms at p50 and put 1 to 5 ms stalls in
 * its tail, for nginx as for kycgate: it measured the machine's wake-ups, not the proxy. Every target is measured
 * under the same hold, and the report says whether it was held.
 *
 * Needs write access to /dev/cpu_dma_latency (root, as a rule); without it, latency runs go on without the hold.
 */
import { closeSync, openSync, writeSync } from 'node:fs';

export const PM_QOS_DEVICE = '/dev/cpu_dma_latency';

export interface IdleLatencyHold {
  /** Whether the request is in force. */
  readonly held: boolean;
  /** Why not, when it is not. */
  readonly reason?: string;
  release(): void;
}

export function holdIdleLatency(device = PM_QOS_DEVICE): IdleLatencyHold {
  let fd: number | undefined;
  try {
    fd = openSync(device, 'w');
    const value = Buffer.alloc(4);
    value.writeInt32LE(0);
    writeSync(fd, value);
  } catch (error) {
    if (fd !== undefined) closeSync(fd);
    return {
      held: false,
      reason: `${device}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
      release: () => undefined,
    };
  }
  let open = true;
  return {
    held: true,
    release: () => {
      if (!open) return;
      open = false;
      closeSync(fd);
    },
  };
}

/** Whether the hold can be taken here: undefined when it can, else why not (taken and released at once). */
export function idleLatencyUnavailable(device = PM_QOS_DEVICE): string | undefined {
  const probe = holdIdleLatency(device);
  probe.release();
  return probe.reason;
}

/** Runs `fn` under the hold (when `enabled` and permitted) and releases it afterwards, whatever happens. */
export async function withIdleLatencyHold<T>(enabled: boolean, fn: () => Promise<T>): Promise<T> {
  const hold = enabled ? holdIdleLatency() : undefined;
  try {
    return await fn();
  } finally {
    hold?.release();
  }
}
