/**
 * Webhook delivery as Didit does it: a POST of the compact, key-sorted, ASCII-escaped JSON envelope with
 * X-Signature, X-Signature-V2, X-Signature-Simple, X-Timestamp and Didit's User-Agent. Network errors, 5xx and
 * 404 are retried after the configured delays; every retry is the same event (same event_id), re-stamped with
 * the time of that delivery so a late retry is not refused as stale. Pending deliveries are persisted, and are
 * attempted again at once when the sandbox starts.
 */
import { request } from 'undici';
import { signDiditWebhook } from '../didit/signature.js';
import type { PendingDelivery, SandboxPersistence } from './persistence.js';

export const DIDIT_WEBHOOK_USER_AGENT = 'DiditWebhook/2.0 +https://didit.me';

export interface DeliveryOutcome {
  eventId: string;
  attempt: number;
  /** HTTP status, or undefined on a network error. */
  status?: number;
  error?: string;
  final: 'delivered' | 'retrying' | 'failed';
}

export interface WebhookDelivererOptions {
  url: string | undefined;
  secret: string;
  /** Delay before each retry; its length is the number of retries. */
  retryDelaysMs: readonly number[];
  persistence: SandboxPersistence;
  timeoutMs?: number;
  onOutcome?: (outcome: DeliveryOutcome) => void;
  /** Body and headers of one attempt, in another provider's dialect. Default: Didit's envelope and signatures. */
  sign?: (envelope: Record<string, unknown>, nowSeconds: number) => { body: string; headers: Record<string, string> };
}

export class WebhookDeliverer {
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly inFlight = new Set<Promise<void>>();
  private closed = false;
  /** Attempts started and not yet recorded. */
  private active = 0;
  /** Last attempt per session: a session's attempts run one after the other, so its events arrive in order. */
  private readonly lastAttemptOfSession = new Map<string, Promise<void>>();

  constructor(private readonly options: WebhookDelivererOptions) {}

  /** Queues a new event; resolves once it is persisted (the first attempt runs in the background). */
  async enqueue(envelope: Record<string, unknown>): Promise<void> {
    if (this.options.url === undefined || this.closed) return;
    const d: PendingDelivery = { eventId: String(envelope.event_id), envelope, attempts: 0, nextAttemptAt: Date.now() };
    await this.options.persistence.saveDelivery(d, 'pending');
    this.schedule(d, 0);
  }

  /** Attempts again, at once, deliveries a previous run left pending. */
  resume(pending: readonly PendingDelivery[]): void {
    for (const d of pending) this.schedule(d, 0);
  }

  /** Deliveries currently in flight or waiting for a retry. */
  get pending(): number {
    return this.timers.size + this.active;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    await Promise.allSettled([...this.inFlight]);
  }

  private schedule(d: PendingDelivery, delayMs: number): void {
    if (this.closed) return;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      this.active++;
      const session = String(d.envelope.session_id);
      const previous = this.lastAttemptOfSession.get(session) ?? Promise.resolve();
      const run: Promise<void> = previous
        .then(() => this.attempt(d))
        .finally(() => {
          this.inFlight.delete(run);
          if (this.lastAttemptOfSession.get(session) === run) this.lastAttemptOfSession.delete(session);
        });
      this.lastAttemptOfSession.set(session, run);
      this.inFlight.add(run);
    }, delayMs);
    this.timers.add(timer);
  }

  private async attempt(d: PendingDelivery): Promise<void> {
    let outcome: DeliveryOutcome | undefined;
    try {
      // Closing stops new attempts; the delivery stays pending in the store for the next start.
      if (!this.closed) outcome = await this.deliverOnce(d);
    } finally {
      this.active--;
    }
    if (outcome) this.options.onOutcome?.(outcome);
  }

  private async deliverOnce(d: PendingDelivery): Promise<DeliveryOutcome> {
    const url = this.options.url!;
    d.attempts++;
    const now = Math.floor(Date.now() / 1000);
    const signed = this.options.sign
      ? this.options.sign(d.envelope, now)
      : signDiditWebhook(this.options.secret, { ...d.envelope, timestamp: now });
    let status: number | undefined;
    let error: string | undefined;
    try {
      const timeout = this.options.timeoutMs ?? 10_000;
      const res = await request(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': this.options.sign ? 'kycgate-sandbox' : DIDIT_WEBHOOK_USER_AGENT,
          ...signed.headers,
        },
        body: signed.body,
        headersTimeout: timeout,
        bodyTimeout: timeout,
      });
      status = res.statusCode;
      await res.body.dump();
    } catch (err) {
      error = (err as NodeJS.ErrnoException).code ?? (err as Error).name;
    }
    const retryable = status === undefined || status >= 500 || status === 404;
    const delay = this.options.retryDelaysMs[d.attempts - 1];
    let final: DeliveryOutcome['final'];
    if (!retryable) final = status !== undefined && status >= 200 && status < 300 ? 'delivered' : 'failed';
    else final = delay === undefined ? 'failed' : 'retrying';
    d.nextAttemptAt = Date.now() + (delay ?? 0);
    await this.options.persistence.saveDelivery(d, final === 'retrying' ? 'pending' : final).catch(() => undefined);
    if (final === 'retrying' && delay !== undefined) this.schedule(d, delay);
    return {
      eventId: d.eventId,
      attempt: d.attempts,
      ...(status !== undefined ? { status } : {}),
      ...(error ? { error } : {}),
      final,
    };
  }
}
