/**
 * Upstream groups: named sets of targets behind one keep-alive pool each (undici), chosen per request by
 * round robin or least outstanding requests.
 */
import { Pool, type buildConnector } from 'undici';
import type { SecureContextOptions } from 'node:tls';

export type Balance = 'round_robin' | 'least_outstanding';

export interface UpstreamTargetOptions {
  url: string;
  weight: number;
}

export interface UpstreamPoolOptions {
  connections: number;
  keepAliveTimeoutMs: number;
  connectTimeoutMs: number;
  /** TLS to the upstream; `servername` defaults to the target host. */
  tls?: SecureContextOptions & { servername?: string; rejectUnauthorized?: boolean };
  /** A connector that replaces the TLS options (e.g. SPIFFE-pinned upstreams), closed with the group. */
  connector?: { connect: buildConnector.connector; close(): void };
}

export class UpstreamTarget {
  readonly url: string;
  readonly host: string;
  /** Base path of the target URL, prefixed to forwarded paths ('' for '/'). */
  readonly basePath: string;
  readonly pool: Pool;
  outstanding = 0;

  constructor(url: string, options: UpstreamPoolOptions) {
    const parsed = new URL(url);
    this.url = url;
    this.host = parsed.host;
    this.basePath = parsed.pathname === '/' ? '' : parsed.pathname.replace(/\/$/, '');
    this.pool = new Pool(parsed.origin, {
      connections: options.connections,
      pipelining: 1,
      keepAliveTimeout: options.keepAliveTimeoutMs,
      keepAliveMaxTimeout: Math.max(options.keepAliveTimeoutMs, 600_000),
      connect: options.connector
        ? options.connector.connect
        : {
            timeout: options.connectTimeoutMs,
            ...(options.tls ?? {}),
          },
      // Per-request values are always passed; these are the upper bounds.
      headersTimeout: 300_000,
      bodyTimeout: 300_000,
      strictContentLength: true,
    });
  }
}

export class UpstreamGroup {
  readonly name: string;
  readonly targets: readonly UpstreamTarget[];
  readonly balance: Balance;
  /** Round-robin order, with each target repeated by its weight. */
  private readonly ring: readonly UpstreamTarget[];
  private next = 0;
  private readonly connector: UpstreamPoolOptions['connector'];

  constructor(name: string, targets: UpstreamTargetOptions[], balance: Balance, options: UpstreamPoolOptions) {
    this.connector = options.connector;
    this.name = name;
    this.balance = balance;
    this.targets = targets.map((t) => new UpstreamTarget(t.url, options));
    const ring: UpstreamTarget[] = [];
    targets.forEach((t, i) => {
      for (let w = 0; w < t.weight; w++) ring.push(this.targets[i]!);
    });
    this.ring = ring;
  }

  pick(): UpstreamTarget {
    const ring = this.ring;
    if (ring.length === 1) return ring[0]!;
    const start = this.next;
    this.next = (start + 1) % ring.length;
    if (this.balance === 'round_robin') return ring[start]!;
    // Least outstanding: scan from the round-robin position so ties spread evenly.
    let best = ring[start]!;
    for (let i = 1; i < ring.length; i++) {
      const candidate = ring[(start + i) % ring.length]!;
      if (candidate.outstanding < best.outstanding) best = candidate;
    }
    return best;
  }

  /** Closes pools once their in-flight requests have finished. */
  async close(): Promise<void> {
    await Promise.all(this.targets.map((t) => t.pool.close().catch(() => undefined)));
    this.connector?.close();
  }
}
