/**
 * One long-lived Workload API stream (spiffe/spiffe standards/SPIFFE_Workload_API.md) over the endpoint in
 * SPIFFE_ENDPOINT_SOCKET (unix:///path or tcp://IP:port, no TLS), with the `workload.spiffe.io: true` metadata
 * the agent requires. The stream is reopened when it drops (at once the first time, then with a backoff growing
 * by one step per consecutive failure up to a ceiling, as go-spiffe does); InvalidArgument and Unimplemented are
 * configuration errors and stop it; PermissionDenied withdraws what was received (subclasses decide what that
 * means) and keeps retrying.
 */
import { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';

export const WORKLOAD_METADATA_KEY = 'workload.spiffe.io';

export interface StreamOptions {
  /** Endpoint address; default SPIFFE_ENDPOINT_SOCKET. */
  address?: string;
  /** Backoff added per consecutive failure (default 1 s) and its ceiling (default 30 s). */
  backoffStepMs?: number;
  maxBackoffMs?: number;
}

/** Turns a SPIFFE endpoint address into a gRPC target; throws on anything the standard does not allow. */
export function grpcTargetOf(address: string): string {
  if (address.startsWith('unix://')) {
    const p = address.slice('unix://'.length);
    if (!p.startsWith('/'))
      throw new Error(`Workload API address ${address}: a unix socket path must be absolute (unix:///path)`);
    return `unix://${p}`;
  }
  if (address.startsWith('tcp://')) {
    const hostPort = address.slice('tcp://'.length);
    const m = /^(\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]):(\d{1,5})$/.exec(hostPort);
    if (!m) throw new Error(`Workload API address ${address}: tcp:// needs an IP address and a port`);
    return m[1]!.startsWith('[') ? `ipv6:${hostPort}` : `ipv4:${hostPort}`;
  }
  throw new Error(`Workload API address ${address}: expected unix:///path or tcp://IP:port`);
}

export abstract class WorkloadApiStream<Message> extends EventEmitter {
  private readonly client: grpc.Client;
  private call: grpc.ClientReadableStream<Message> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private failures = 0;
  private closed = false;
  private readonly backoffStepMs: number;
  private readonly maxBackoffMs: number;
  /** Stream (re)connections made, for tests and metrics. */
  connects = 0;
  /** Set when the stream stopped for good (InvalidArgument, Unimplemented). */
  fatal: Error | undefined;

  constructor(
    protected readonly logger: Logger,
    options: StreamOptions,
    private readonly method: string,
    private readonly decode: (buf: Buffer) => Message,
  ) {
    super();
    const address = options.address ?? process.env.SPIFFE_ENDPOINT_SOCKET;
    if (!address) throw new Error('no Workload API address: set SPIFFE_ENDPOINT_SOCKET or configure the socket');
    this.backoffStepMs = options.backoffStepMs ?? 1000;
    this.maxBackoffMs = options.maxBackoffMs ?? 30_000;
    this.client = new grpc.Client(grpcTargetOf(address), grpc.credentials.createInsecure());
    this.open();
  }

  /** Applies a message (the whole current state) and emits `update`. */
  protected abstract apply(msg: Message): void;
  /** PermissionDenied: drop what was received and emit `update`. */
  protected abstract withdraw(): void;

  /** Resolves once `usable()` returns a state; rejects after `timeoutMs` or on a fatal error. */
  protected firstUpdate<State>(timeoutMs: number, usable: () => State | undefined, what: string): Promise<State> {
    const now = usable();
    if (now !== undefined) return Promise.resolve(now);
    if (this.fatal) return Promise.reject(this.fatal);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`no ${what} from the Workload API within ${timeoutMs} ms`));
      }, timeoutMs);
      const onUpdate = () => {
        const state = usable();
        if (state === undefined) return;
        cleanup();
        resolve(state);
      };
      const onFatal = (err: Error) => {
        cleanup();
        reject(err);
      };
      const cleanup = () => {
        clearTimeout(timer);
        this.off('update', onUpdate);
        this.off('fatal', onFatal);
      };
      this.on('update', onUpdate);
      this.on('fatal', onFatal);
    });
  }

  private open(): void {
    if (this.closed) return;
    this.connects++;
    const metadata = new grpc.Metadata();
    metadata.set(WORKLOAD_METADATA_KEY, 'true');
    const call = this.client.makeServerStreamRequest<Buffer, Message>(
      this.method,
      () => Buffer.alloc(0),
      this.decode,
      Buffer.alloc(0),
      metadata,
      {},
    );
    this.call = call;
    call.on('data', (msg: Message) => {
      this.failures = 0;
      this.apply(msg);
    });
    call.on('error', (err: grpc.ServiceError) => {
      if (this.call !== call) return;
      this.call = undefined;
      this.onStreamError(err);
    });
    call.on('end', () => {
      if (this.call !== call) return;
      // The agent closed the stream without an error: reopen at once.
      this.call = undefined;
      this.schedule(0);
    });
  }

  private onStreamError(err: grpc.ServiceError): void {
    if (this.closed) return;
    if (err.code === grpc.status.INVALID_ARGUMENT || err.code === grpc.status.UNIMPLEMENTED) {
      this.fatal = new Error(`Workload API refused ${this.method} (${grpc.status[err.code]}): ${err.details}`);
      this.logger.error(
        { method: this.method, code: grpc.status[err.code], details: err.details },
        'Workload API stream stopped; not retrying',
      );
      this.emit('fatal', this.fatal);
      return;
    }
    if (err.code === grpc.status.PERMISSION_DENIED) this.withdraw();
    const delay = this.failures === 0 ? 0 : Math.min(this.failures * this.backoffStepMs, this.maxBackoffMs);
    this.failures++;
    this.logger.warn(
      { method: this.method, code: grpc.status[err.code] ?? err.code, retry_ms: delay },
      'Workload API stream failed; reconnecting',
    );
    this.schedule(delay);
  }

  private schedule(delayMs: number): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.open(), delayMs);
    this.timer.unref();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.call?.cancel();
    this.call = undefined;
    this.client.close();
    this.removeAllListeners();
  }
}
