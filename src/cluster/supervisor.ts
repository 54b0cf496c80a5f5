/**
 * The supervisor (`server.workers` > 1): the primary process of a node:cluster. It runs no gateway itself; it forks
 * one worker per slot (slot 0 first, so that what runs once — the admin listener, the embedded sandbox, a
 * first-start migration or signing key — exists before the others start), restarts a worker that dies with an
 * exponential backoff, forwards SIGHUP to every worker, and on SIGTERM / SIGINT lets every worker drain and exits
 * once they all have. Features keep what must be exact across workers here (`PolicyDefinition.primary`), and
 * the supervisor fans out invalidations and sums every worker's metrics (prom-client's AggregatorRegistry.aggregate).
 */
import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';
import { AggregatorRegistry, Counter, Registry } from 'prom-client';
import type { ClusterHub } from '../pipeline/cluster.js';
import type { PolicyDefinition } from '../pipeline/policy.js';
import { isMessage, WORKER_ENV, type ToPrimary, type ToWorker } from './messages.js';

export interface SupervisorOptions {
  workers: number;
  logger: Logger;
  policies: readonly PolicyDefinition[];
  /** Each worker's drain deadline (`server.drain_timeout_ms`): a worker still running this long after it was asked to stop (plus a margin) is killed. */
  drainTimeoutMs: number;
}

interface Slot {
  readonly slot: number;
  worker: Worker | undefined;
  readyAt: number | undefined;
  failures: number;
  restartTimer: NodeJS.Timeout | undefined;
}

const MAX_BACKOFF_MS = 10_000;
/** A worker that served this long before dying is restarted at once again (its failure count starts over). */
const STABLE_MS = 10_000;

export class Supervisor implements ClusterHub {
  readonly workers: number;
  private readonly slots: Slot[] = [];
  private readonly handlers = new Map<string, (body: unknown, slot: number) => unknown>();
  private readonly shared: Record<string, unknown> = {};
  private stopping: Promise<void> | undefined;
  private starting = true;
  /** Metric collections in progress: parts received from workers, by request id. */
  private readonly collections = new Map<number, { parts: object[][]; wanted: number; done: () => void }>();
  private nextCollection = 1;
  /** The supervisor's own metrics (restarts), appended to the workers' aggregated ones. */
  private readonly registry = new Registry();
  private readonly restarts: Counter;
  readonly urls: Record<string, string> = {};
  admin: string | undefined;

  constructor(private readonly options: SupervisorOptions) {
    this.workers = options.workers;
    this.restarts = new Counter({
      name: 'kycgate_worker_restarts_total',
      help: 'Gateway workers restarted by the supervisor after they died.',
      registers: [this.registry],
    });
    this.handle('metrics', () => this.metrics());
    this.handle('metrics.part', (body) => {
      const { id, metrics } = body as { id: number; metrics: object[] };
      const c = this.collections.get(id);
      if (c === undefined) return;
      c.parts.push(metrics);
      if (c.parts.length >= c.wanted) c.done();
    });
    for (const p of options.policies) p.primary?.(this);
    for (let slot = 0; slot < this.workers; slot++)
      this.slots.push({ slot, worker: undefined, readyAt: undefined, failures: 0, restartTimer: undefined });
  }

  handle(topic: string, handler: (body: unknown, slot: number) => unknown): void {
    this.handlers.set(topic, handler);
  }

  broadcast(topic: string, body: unknown): void {
    const message: ToWorker = { kg: 'msg', t: topic, b: body };
    for (const s of this.slots) if (s.worker?.isConnected()) s.worker.send(message);
  }

  /** Forks every worker, slot 0 first; resolves once all serve. A worker that dies before serving fails the start. */
  async start(): Promise<void> {
    await this.fork(this.slots[0]!);
    await Promise.all(this.slots.slice(1).map((s) => this.fork(s)));
    this.starting = false;
    this.options.logger.info({ workers: this.workers, urls: this.urls, admin: this.admin }, 'workers ready');
  }

  private fork(s: Slot): Promise<void> {
    const worker = cluster.fork({
      [WORKER_ENV.slot]: String(s.slot),
      [WORKER_ENV.workers]: String(this.workers),
      [WORKER_ENV.shared]: JSON.stringify(this.shared),
    });
    s.worker = worker;
    s.readyAt = undefined;
    return new Promise<void>((resolve, reject) => {
      worker.on('message', (m: unknown) => {
        if (!isMessage(m)) return;
        const message = m as ToPrimary;
        if (message.kg === 'ready') {
          s.readyAt = Date.now();
          Object.assign(this.urls, message.urls);
          if (message.admin) this.admin = message.admin;
          this.options.logger.info({ slot: s.slot, pid: worker.process.pid }, 'worker serving');
          resolve();
        } else this.receive(s, worker, message);
      });
      worker.on('exit', (code, signal) => {
        if (s.worker === worker) s.worker = undefined;
        if (s.readyAt === undefined && this.starting) {
          reject(new Error(`worker ${s.slot} exited before serving (code ${code ?? signal})`));
          return;
        }
        if (this.stopping) return;
        this.scheduleRestart(s, code, signal);
      });
    });
  }

  private scheduleRestart(s: Slot, code: number | null, signal: string | null): void {
    if (s.readyAt !== undefined && Date.now() - s.readyAt >= STABLE_MS) s.failures = 0;
    const delay = s.failures === 0 ? 0 : Math.min(100 * 2 ** (s.failures - 1), MAX_BACKOFF_MS);
    s.failures++;
    this.restarts.inc();
    this.options.logger.error({ slot: s.slot, code, signal, restart_in_ms: delay }, 'worker died; restarting');
    s.restartTimer = setTimeout(() => {
      s.restartTimer = undefined;
      if (this.stopping) return;
      this.fork(s).catch(() => undefined);
    }, delay);
  }

  private receive(s: Slot, worker: Worker, m: ToPrimary): void {
    switch (m.kg) {
      case 'req': {
        const handler = this.handlers.get(m.t);
        const reply = (message: ToWorker) => {
          if (worker.isConnected()) worker.send(message);
        };
        if (handler === undefined) return reply({ kg: 'res', id: m.id, e: `no handler for ${m.t}` });
        try {
          const out = handler(m.b, s.slot);
          if (out instanceof Promise)
            out.then(
              (b) => reply({ kg: 'res', id: m.id, b }),
              (err: Error) => reply({ kg: 'res', id: m.id, e: err.message }),
            );
          else reply({ kg: 'res', id: m.id, b: out });
        } catch (err) {
          reply({ kg: 'res', id: m.id, e: (err as Error).message });
        }
        return;
      }
      case 'send':
        this.handlers.get(m.t)?.(m.b, s.slot);
        return;
      case 'bcast':
        this.broadcast(m.t, m.b);
        return;
      case 'share':
        this.shared[m.k] = m.v;
        return;
    }
  }

  /**
   * Every worker's metrics summed (gauges arrive with a `worker` label, so they stand side by side), then the
   * supervisor's own. A worker that does not answer within 3 s is left out rather than failing the scrape.
   */
  private async metrics(): Promise<string> {
    const id = this.nextCollection++;
    const wanted = this.slots.filter((s) => s.worker?.isConnected()).length;
    const parts: object[][] = [];
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, 3000);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.collections.set(id, { parts, wanted, done });
      if (wanted === 0) done();
      else this.broadcast('metrics.collect', id);
    });
    this.collections.delete(id);
    const workers = parts.length > 0 ? await AggregatorRegistry.aggregate(parts).metrics() : '';
    return workers + '\n' + (await this.registry.metrics());
  }

  /** SIGHUP every worker: each reloads its configuration and certificates. */
  reload(): void {
    for (const s of this.slots) if (s.worker?.process.pid) s.worker.process.kill('SIGHUP');
  }

  /** Asks every worker to drain (SIGTERM) and resolves once all have exited; a worker past the deadline is killed. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      const exits: Promise<void>[] = [];
      for (const s of this.slots) {
        clearTimeout(s.restartTimer);
        const w = s.worker;
        if (w === undefined || w.process.exitCode !== null) continue;
        exits.push(new Promise<void>((resolve) => w.once('exit', () => resolve())));
        w.process.kill('SIGTERM');
      }
      const kill = setTimeout(() => {
        for (const s of this.slots) s.worker?.process.kill('SIGKILL');
      }, this.options.drainTimeoutMs + 10_000);
      await Promise.all(exits);
      clearTimeout(kill);
    })();
    return this.stopping;
  }
}
