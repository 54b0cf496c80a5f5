/**
 * A worker's `ClusterChannel`: requests and messages to and from the supervisor over Node's IPC channel.
 */
import type { ClusterChannel } from '../pipeline/cluster.js';
import { isMessage, WORKER_ENV, type ToPrimary, type ToWorker } from './messages.js';

/** How long a request waits for the supervisor before it is failed. */
const REQUEST_TIMEOUT_MS = 2000;

interface Pending {
  resolve(value: unknown): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

/** The channel of this process when it is a gateway worker (started by the supervisor), else undefined. */
export function workerChannel(): WorkerChannel | undefined {
  const slot = process.env[WORKER_ENV.slot];
  if (slot === undefined || process.send === undefined) return undefined;
  const shared = JSON.parse(process.env[WORKER_ENV.shared] ?? '{}') as Record<string, unknown>;
  return new WorkerChannel(Number(slot), Number(process.env[WORKER_ENV.workers] ?? '1'), shared);
}

export class WorkerChannel implements ClusterChannel {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly handlers = new Map<string, Set<(body: unknown) => void>>();

  constructor(
    readonly slot: number,
    readonly workers: number,
    readonly shared: Record<string, unknown>,
  ) {
    process.on('message', (m: unknown) => {
      if (isMessage(m)) this.receive(m as ToWorker);
    });
  }

  private post(message: ToPrimary): void {
    if (process.connected) process.send!(message);
  }

  private receive(m: ToWorker): void {
    if (m.kg === 'res') {
      const p = this.pending.get(m.id);
      if (p === undefined) return;
      this.pending.delete(m.id);
      clearTimeout(p.timer);
      if (m.e !== undefined) p.reject(new Error(m.e));
      else p.resolve(m.b);
    } else if (m.kg === 'msg') {
      const set = this.handlers.get(m.t);
      if (set) for (const h of set) h(m.b);
    }
  }

  request<T>(topic: string, body: unknown): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`the supervisor did not answer ${topic} in time`));
      }, REQUEST_TIMEOUT_MS);
      timer.unref();
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.post({ kg: 'req', id, t: topic, b: body });
    });
  }

  send(topic: string, body: unknown): void {
    this.post({ kg: 'send', t: topic, b: body });
  }

  broadcast(topic: string, body: unknown): void {
    this.post({ kg: 'bcast', t: topic, b: body });
  }

  on(topic: string, handler: (body: unknown) => void): () => void {
    let set = this.handlers.get(topic);
    if (set === undefined) {
      set = new Set();
      this.handlers.set(topic, set);
    }
    set.add(handler);
    return () => set.delete(handler);
  }

  share(key: string, value: unknown): void {
    this.shared[key] = value;
    this.post({ kg: 'share', k: key, v: value });
  }

  /** Tells the supervisor this worker serves, with its listeners' addresses. */
  ready(urls: Record<string, string>, admin: string | undefined): void {
    this.post({ kg: 'ready', urls, ...(admin ? { admin } : {}) });
  }
}
