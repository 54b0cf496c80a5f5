/**
 * X509-SVIDs from the SPIFFE Workload API (spiffe/spiffe standards/SPIFFE_Workload_API.md): one long-lived
 * FetchX509SVID stream over the endpoint in SPIFFE_ENDPOINT_SOCKET (unix:///path or tcp://IP:port, no TLS), with
 * the `workload.spiffe.io: true` metadata the agent requires.
 *
 * Every message is the whole current state: what is missing was withdrawn. The stream is reopened when it drops
 * (at once the first time, then with backoff growing by one step per failure up to a ceiling, as go-spiffe
 * does). PermissionDenied withdraws every SVID (this workload is no longer entitled to them) and keeps retrying;
 * InvalidArgument and Unimplemented are configuration errors and stop the source.
 */
import { EventEmitter } from 'node:events';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { decodeX509SvidResponse, splitDerCertificates, type X509SvidResponse } from './protobuf.js';
import { parseSpiffeId } from '../spiffe-id.js';

export const FETCH_X509_SVID = '/SpiffeWorkloadAPI/FetchX509SVID';
export const WORKLOAD_METADATA_KEY = 'workload.spiffe.io';

/** One usable X509-SVID: PEM chain and key, checked to belong together. */
export interface WorkloadSvid {
  spiffeId: string;
  /** Leaf first. */
  certPem: string;
  keyPem: string;
  leaf: X509Certificate;
  notAfter: Date;
  hint: string;
}

export interface WorkloadX509State {
  /** The first is the default identity. Empty after PermissionDenied. */
  svids: WorkloadSvid[];
  /** Trust domain name to its CA certificates (the SVIDs' own bundle and federated ones). */
  bundles: Map<string, X509Certificate[]>;
}

export interface X509SourceOptions {
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
    if (!p.startsWith('/')) throw new Error(`Workload API address ${address}: a unix socket path must be absolute (unix:///path)`);
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

function bundleOf(der: Buffer): X509Certificate[] {
  return splitDerCertificates(der).map((d) => new X509Certificate(d));
}

/** Trust domain name of a federated_bundles key (a name, or a `spiffe://td` ID). */
function trustDomainKey(key: string): string {
  return key.startsWith('spiffe://') ? key.slice('spiffe://'.length) : key;
}

export class WorkloadX509Source extends EventEmitter {
  private readonly client: grpc.Client;
  private call: grpc.ClientReadableStream<X509SvidResponse> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private failures = 0;
  private closed = false;
  private readonly backoffStepMs: number;
  private readonly maxBackoffMs: number;
  /** Latest state, or undefined before the first message. */
  current: WorkloadX509State | undefined;
  /** Stream (re)connections made, for tests and metrics. */
  connects = 0;
  /** Set when the source stopped for good (InvalidArgument, Unimplemented). */
  fatal: Error | undefined;

  constructor(
    private readonly logger: Logger,
    options: X509SourceOptions = {},
  ) {
    super();
    const address = options.address ?? process.env.SPIFFE_ENDPOINT_SOCKET;
    if (!address) throw new Error('no Workload API address: set SPIFFE_ENDPOINT_SOCKET or configure the socket');
    this.backoffStepMs = options.backoffStepMs ?? 1000;
    this.maxBackoffMs = options.maxBackoffMs ?? 30_000;
    this.client = new grpc.Client(grpcTargetOf(address), grpc.credentials.createInsecure());
    this.open();
  }

  /** Resolves with the first state that holds at least one SVID; rejects after `timeoutMs` or on a fatal error. */
  ready(timeoutMs = 10_000): Promise<WorkloadX509State> {
    if (this.current && this.current.svids.length > 0) return Promise.resolve(this.current);
    if (this.fatal) return Promise.reject(this.fatal);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`no X509-SVID from the Workload API within ${timeoutMs} ms`));
      }, timeoutMs);
      const onUpdate = (state: WorkloadX509State) => {
        if (state.svids.length === 0) return;
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
    const call = this.client.makeServerStreamRequest<Buffer, X509SvidResponse>(FETCH_X509_SVID, () => Buffer.alloc(0), decodeX509SvidResponse, Buffer.alloc(0), metadata, {});
    this.call = call;
    call.on('data', (msg: X509SvidResponse) => {
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
      this.fatal = new Error(`Workload API refused the request (${grpc.status[err.code]}): ${err.details}`);
      this.logger.error({ code: grpc.status[err.code], details: err.details }, 'Workload API stream stopped; not retrying');
      this.emit('fatal', this.fatal);
      return;
    }
    if (err.code === grpc.status.PERMISSION_DENIED && this.current && this.current.svids.length > 0) {
      this.logger.warn('Workload API denied this workload: its SVIDs are withdrawn');
      this.current = { svids: [], bundles: new Map() };
      this.emit('update', this.current);
    }
    const delay = this.failures === 0 ? 0 : Math.min(this.failures * this.backoffStepMs, this.maxBackoffMs);
    this.failures++;
    this.logger.warn({ code: grpc.status[err.code] ?? err.code, retry_ms: delay }, 'Workload API stream failed; reconnecting');
    this.schedule(delay);
  }

  private schedule(delayMs: number): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.open(), delayMs);
    this.timer.unref();
  }

  private apply(msg: X509SvidResponse): void {
    const svids: WorkloadSvid[] = [];
    const bundles = new Map<string, X509Certificate[]>();
    for (const s of msg.svids) {
      try {
        const id = parseSpiffeId(s.spiffeId);
        if (!id.ok) throw new Error(`invalid SPIFFE ID: ${id.reason}`);
        const chain = splitDerCertificates(s.certificatesDer).map((d) => new X509Certificate(d));
        if (chain.length === 0) throw new Error('no certificate');
        const key = createPrivateKey({ key: s.keyDer, format: 'der', type: 'pkcs8' });
        if (!chain[0]!.checkPrivateKey(key)) throw new Error('key and certificate do not belong together');
        svids.push({
          spiffeId: s.spiffeId,
          certPem: chain.map((c) => c.toString()).join(''),
          keyPem: key.export({ format: 'pem', type: 'pkcs8' }).toString(),
          leaf: chain[0]!,
          notAfter: new Date(chain[0]!.validTo),
          hint: s.hint,
        });
        if (s.bundleDer.length > 0 && !bundles.has(id.value.trustDomain)) bundles.set(id.value.trustDomain, bundleOf(s.bundleDer));
      } catch (err) {
        this.logger.warn({ spiffe_id: s.spiffeId, reason: (err as Error).message }, 'X509-SVID from the Workload API ignored');
      }
    }
    for (const [k, v] of msg.federatedBundles) {
      try {
        bundles.set(trustDomainKey(k), bundleOf(v));
      } catch (err) {
        this.logger.warn({ trust_domain: k, reason: (err as Error).message }, 'federated bundle from the Workload API ignored');
      }
    }
    this.current = { svids, bundles };
    this.emit('update', this.current);
  }

  /** The SVID with `spiffeId`, or the default (first) one. */
  svid(spiffeId?: string): WorkloadSvid | undefined {
    const svids = this.current?.svids ?? [];
    return spiffeId === undefined ? svids[0] : svids.find((s) => s.spiffeId === spiffeId);
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

/** Starts the source of a listener's certificate and waits for its first SVID (start-up fails without one). */
export async function startListenerSvidSource(config: { socket?: string; spiffe_id?: string; ready_timeout_ms: number }, logger: Logger): Promise<WorkloadX509Source> {
  const source = new WorkloadX509Source(logger, config.socket ? { address: config.socket } : {});
  try {
    const state = await source.ready(config.ready_timeout_ms);
    if (config.spiffe_id !== undefined && !state.svids.some((s) => s.spiffeId === config.spiffe_id)) {
      throw new Error(`the Workload API offers no X509-SVID for ${config.spiffe_id}`);
    }
    return source;
  } catch (err) {
    source.close();
    throw err;
  }
}
