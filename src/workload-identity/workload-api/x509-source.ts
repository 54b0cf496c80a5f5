/**
 * X509-SVIDs and X.509 bundles from the SPIFFE Workload API's FetchX509SVID stream. Every message is the whole
 * current state: what is missing was withdrawn. PermissionDenied withdraws every SVID (this workload is no
 * longer entitled to them); the stream itself (reconnects, backoff, fatal errors) is managed by stream.ts.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import type { Logger } from 'pino';
import { WorkloadApiStream, type StreamOptions } from './stream.js';
export { grpcTargetOf, WORKLOAD_METADATA_KEY } from './stream.js';
import { decodeX509SvidResponse, splitDerCertificates, type X509SvidResponse } from './protobuf.js';
import { parseSpiffeId } from '../spiffe-id.js';

export const FETCH_X509_SVID = '/SpiffeWorkloadAPI/FetchX509SVID';

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

export type X509SourceOptions = StreamOptions;

function bundleOf(der: Buffer): X509Certificate[] {
  return splitDerCertificates(der).map((d) => new X509Certificate(d));
}

/** Trust domain name of a federated_bundles key (a name, or a `spiffe://td` ID). */
function trustDomainKey(key: string): string {
  return key.startsWith('spiffe://') ? key.slice('spiffe://'.length) : key;
}

export class WorkloadX509Source extends WorkloadApiStream<X509SvidResponse> {
  /** Latest state, or undefined before the first message. */
  current: WorkloadX509State | undefined;

  constructor(logger: Logger, options: X509SourceOptions = {}) {
    super(logger, options, FETCH_X509_SVID, decodeX509SvidResponse);
  }

  /** Resolves with the first state that holds at least one SVID; rejects after `timeoutMs` or on a fatal error. */
  ready(timeoutMs = 10_000): Promise<WorkloadX509State> {
    return this.firstUpdate(
      timeoutMs,
      () => (this.current && this.current.svids.length > 0 ? this.current : undefined),
      'X509-SVID',
    );
  }

  protected withdraw(): void {
    if (!this.current || this.current.svids.length === 0) return;
    this.logger.warn('Workload API denied this workload: its SVIDs are withdrawn');
    this.current = { svids: [], bundles: new Map() };
    this.emit('update', this.current);
  }

  protected apply(msg: X509SvidResponse): void {
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
        if (s.bundleDer.length > 0 && !bundles.has(id.value.trustDomain))
          bundles.set(id.value.trustDomain, bundleOf(s.bundleDer));
      } catch (err) {
        this.logger.warn(
          { spiffe_id: s.spiffeId, reason: (err as Error).message },
          'X509-SVID from the Workload API ignored',
        );
      }
    }
    for (const [k, v] of msg.federatedBundles) {
      try {
        bundles.set(trustDomainKey(k), bundleOf(v));
      } catch (err) {
        this.logger.warn(
          { trust_domain: k, reason: (err as Error).message },
          'federated bundle from the Workload API ignored',
        );
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
}

/** Starts the source of a listener's certificate and waits for its first SVID (start-up fails without one). */
export async function startListenerSvidSource(
  config: { socket?: string; spiffe_id?: string; ready_timeout_ms: number },
  logger: Logger,
): Promise<WorkloadX509Source> {
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
