/**
 * Counts failed authentication attempts per client address in fixed windows, so that one address cannot guess
 * keys or tokens at line rate. IPv6 clients are counted per /64 (a client usually holds a whole /64 and could
 * otherwise rotate through it for a fresh budget). In memory (per instance) and bounded: when the table is full,
 * new addresses are not tracked until the next sweep rather than evicting addresses that are already throttled.
 */
import { ipv6Network } from '../../shared/ipv6-prefix.js';

const MAX_TRACKED = 100_000;

interface Window {
  count: number;
  endsAt: number;
}

export class FailureThrottle {
  private readonly windows = new Map<string, Window>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly maxFailures: number,
    private readonly windowMs: number,
  ) {
    this.timer = setInterval(() => this.sweep(), Math.min(windowMs, 60_000));
    this.timer.unref();
  }

  /** Seconds the address must wait, or 0 when it may try. */
  retryAfter(address: string): number {
    if (this.windows.size === 0) return 0;
    const key = ipv6Network(address, 64);
    const w = this.windows.get(key);
    if (w === undefined || w.count < this.maxFailures) return 0;
    const left = w.endsAt - Date.now();
    if (left <= 0) {
      this.windows.delete(key);
      return 0;
    }
    return Math.ceil(left / 1000);
  }

  recordFailure(address: string): void {
    const now = Date.now();
    const key = ipv6Network(address, 64);
    const w = this.windows.get(key);
    if (w !== undefined && w.endsAt > now) {
      w.count++;
      return;
    }
    if (w === undefined && this.windows.size >= MAX_TRACKED) return;
    this.windows.set(key, { count: 1, endsAt: now + this.windowMs });
  }

  private sweep(): void {
    const now = Date.now();
    for (const [address, w] of this.windows) if (w.endsAt <= now) this.windows.delete(address);
  }

  close(): void {
    clearInterval(this.timer);
  }
}
