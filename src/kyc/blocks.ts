/**
 * Blocked subjects: an operator can block a pseudonymous subject (fraud, a court order), and every kyc-gate then
 * refuses its requests with 403 `subject-blocked`, whatever its verification state. Blocks are few, so every instance
 * keeps all of them in memory: the gate's check is one Set lookup, skipped while nobody is blocked. A change reaches
 * the instance that made it at once, the others within milliseconds over Redis (`<key_prefix>kyc:blocks`) or within
 * a second through a poll of the table; while the store cannot be reached the last set read keeps applying.
 */
import type { Logger } from 'pino';
import type { Migration, Store } from '../store/store.js';
import type { Invalidations } from '../shared/invalidation.js';

const CHANNEL = 'kyc:blocks';

export const BLOCK_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'blocked subjects',
    sql: `CREATE TABLE kyc_subject_blocks (
  subject TEXT PRIMARY KEY,
  reason TEXT,
  blocked_by TEXT NOT NULL,
  blocked_at BIGINT NOT NULL
)`,
  },
];

export interface SubjectBlock {
  subject: string;
  reason: string | null;
  blockedBy: string;
  blockedAt: number;
}

interface BlockRow {
  subject: string;
  reason: string | null;
  blocked_by: string;
  blocked_at: number | string;
}

const fromRow = (r: BlockRow): SubjectBlock => ({
  subject: r.subject,
  reason: r.reason,
  blockedBy: r.blocked_by,
  blockedAt: Number(r.blocked_at),
});

export class SubjectBlocks {
  private blocked: ReadonlySet<string> = new Set();
  private fingerprint = '';
  private timer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;
  private failing = false;

  constructor(
    private readonly store: Store,
    private readonly logger: Logger,
    private readonly redis: Invalidations | undefined,
    private readonly pollMs = 1000,
  ) {}

  async start(): Promise<void> {
    await this.store.migrate('kyc-blocks', BLOCK_MIGRATIONS);
    await this.refresh(true);
    if (this.redis) this.unsubscribe = this.redis.subscribe(CHANNEL, () => void this.refresh(true).catch(() => {}));
    this.timer = setInterval(() => void this.poll(), this.pollMs);
    this.timer.unref();
  }

  /** Whether `subject` is blocked (the request path: a size test, then one Set lookup). */
  has(subject: string): boolean {
    return this.blocked.size !== 0 && this.blocked.has(subject);
  }

  get size(): number {
    return this.blocked.size;
  }

  async find(subject: string): Promise<SubjectBlock | undefined> {
    const rows = await this.store.query<BlockRow>(
      'SELECT subject, reason, blocked_by, blocked_at FROM kyc_subject_blocks WHERE subject = $1',
      [subject],
    );
    return rows[0] ? fromRow(rows[0]) : undefined;
  }

  /** Blocked subjects ordered by subject, after `after` (pagination). */
  async list(limit: number, after?: string): Promise<SubjectBlock[]> {
    const rows = await this.store.query<BlockRow>(
      'SELECT subject, reason, blocked_by, blocked_at FROM kyc_subject_blocks WHERE subject > $1 ORDER BY subject LIMIT $2',
      [after ?? '', limit],
    );
    return rows.map(fromRow);
  }

  /** Blocks `subject` (a second block keeps the first one's time and author); returns the block in force. */
  async block(subject: string, by: string, reason: string | undefined): Promise<SubjectBlock> {
    await this.store.query(
      'INSERT INTO kyc_subject_blocks (subject, reason, blocked_by, blocked_at) VALUES ($1, $2, $3, $4) ' +
        'ON CONFLICT (subject) DO NOTHING',
      [subject, reason ?? null, by, Date.now()],
    );
    await this.changed();
    return (await this.find(subject))!;
  }

  /** Lifts a block; false when the subject was not blocked. */
  async unblock(subject: string): Promise<boolean> {
    const rows = await this.store.query('DELETE FROM kyc_subject_blocks WHERE subject = $1 RETURNING subject', [
      subject,
    ]);
    await this.changed();
    return rows.length > 0;
  }

  private async changed(): Promise<void> {
    await this.refresh(true);
    if (this.redis) await this.redis.publish(CHANNEL, 'changed');
  }

  private async refresh(force = false): Promise<void> {
    const rows = await this.store.query<{ n: number | string; newest: number | string | null; first: string | null }>(
      'SELECT COUNT(*) AS n, MAX(blocked_at) AS newest, MIN(subject) AS first FROM kyc_subject_blocks',
    );
    const r = rows[0];
    const fingerprint = `${r?.n ?? 0}:${r?.newest ?? 0}:${r?.first ?? ''}`;
    if (!force && fingerprint === this.fingerprint) return;
    const all = await this.store.query<{ subject: string }>('SELECT subject FROM kyc_subject_blocks');
    this.blocked = new Set(all.map((b) => b.subject));
    this.fingerprint = fingerprint;
  }

  private async poll(): Promise<void> {
    try {
      await this.refresh();
      this.failing = false;
    } catch (err) {
      if (!this.failing)
        this.logger.warn({ err: (err as Error).message }, 'blocked subjects not refreshed; the last set read applies');
      this.failing = true;
    }
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.unsubscribe?.();
  }
}
