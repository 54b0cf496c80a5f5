/**
 * Instances seen through the store: each gateway with the admin API on writes a heartbeat row every 10 s (id,
 * host, pid, version, admin URL), so an operator sees every instance sharing the store from any one of them. Rows
 * not refreshed for a day are removed by whichever instance beats next.
 */
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Migration, Store } from '../store/store.js';

const BEAT_MS = 10_000;
const ALIVE_MS = 30_000;
const FORGET_MS = 86_400_000;

export const INSTANCE_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'instances',
    sql: `CREATE TABLE admin_instances (
  id TEXT PRIMARY KEY,
  hostname TEXT NOT NULL,
  pid INTEGER NOT NULL,
  version TEXT NOT NULL,
  admin_url TEXT,
  started_at BIGINT NOT NULL,
  seen_at BIGINT NOT NULL
)`,
  },
];

interface Row {
  id: string;
  hostname: string;
  pid: number | string;
  version: string;
  admin_url: string | null;
  started_at: number | string;
  seen_at: number | string;
}

export class Instances {
  readonly id = randomUUID();
  private readonly startedAt = Date.now();
  private timer: NodeJS.Timeout | undefined;
  private failing = false;

  constructor(
    private readonly store: Store,
    private readonly logger: Logger,
    private readonly version: string,
    private readonly adminUrl: () => string | undefined,
  ) {}

  async start(): Promise<void> {
    await this.store.migrate('admin-instances', INSTANCE_MIGRATIONS);
    await this.beat();
    this.timer = setInterval(() => void this.beat(), BEAT_MS);
    this.timer.unref();
  }

  private async beat(): Promise<void> {
    const now = Date.now();
    try {
      await this.store.query(
        `INSERT INTO admin_instances (id, hostname, pid, version, admin_url, started_at, seen_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (id) DO UPDATE SET seen_at = $7, admin_url = $5`,
        [this.id, hostname(), process.pid, this.version, this.adminUrl() ?? null, this.startedAt, now],
      );
      await this.store.query('DELETE FROM admin_instances WHERE seen_at < $1', [now - FORGET_MS]);
      this.failing = false;
    } catch (err) {
      if (!this.failing) this.logger.warn({ err: (err as Error).message }, 'instance heartbeat not written');
      this.failing = true;
    }
  }

  async list(now = Date.now()) {
    const rows = await this.store.query<Row>(
      'SELECT id, hostname, pid, version, admin_url, started_at, seen_at FROM admin_instances ORDER BY started_at, id',
    );
    return rows.map((r) => ({
      id: r.id,
      hostname: r.hostname,
      pid: Number(r.pid),
      version: r.version,
      admin_url: r.admin_url,
      started_at: new Date(Number(r.started_at)).toISOString(),
      seen_at: new Date(Number(r.seen_at)).toISOString(),
      alive: now - Number(r.seen_at) < ALIVE_MS,
      current: r.id === this.id,
    }));
  }

  /** Removes this instance's row on a clean stop. */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.store.query('DELETE FROM admin_instances WHERE id = $1', [this.id]).catch(() => undefined);
  }
}
