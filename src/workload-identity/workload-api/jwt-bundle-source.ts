/**
 * JWT bundles from the SPIFFE Workload API's FetchJWTBundles stream: for each trust domain (own and federated),
 * the JWK Set whose `jwt-svid` keys sign its JWT-SVIDs. Every message is the whole current state; PermissionDenied
 * withdraws every bundle (no JWT-SVID verifies until the agent allows this workload again).
 */
import type { Logger } from 'pino';
import type { JWK } from 'jose';
import { WorkloadApiStream, type StreamOptions } from './stream.js';
import { decodeJwtBundlesResponse } from './protobuf.js';
import { parseTrustBundle } from '../trust-bundle.js';

export const FETCH_JWT_BUNDLES = '/SpiffeWorkloadAPI/FetchJWTBundles';

export class WorkloadJwtBundleSource extends WorkloadApiStream<Map<string, Buffer>> {
  /** Trust domain to its JWT signing keys by kid; undefined before the first message. */
  current: Map<string, Map<string, JWK>> | undefined;

  constructor(logger: Logger, options: StreamOptions = {}) {
    super(logger, options, FETCH_JWT_BUNDLES, decodeJwtBundlesResponse);
  }

  /** Resolves with the first message (even an empty one: it is the agent's answer). */
  ready(timeoutMs = 10_000): Promise<Map<string, Map<string, JWK>>> {
    return this.firstUpdate(timeoutMs, () => this.current, 'JWT bundles');
  }

  protected apply(msg: Map<string, Buffer>): void {
    const next = new Map<string, Map<string, JWK>>();
    for (const [key, doc] of msg) {
      const td = key.startsWith('spiffe://') ? key.slice('spiffe://'.length) : key;
      try {
        next.set(td, new Map(parseTrustBundle(doc.toString('utf8'), `JWT bundle of ${td}`).jwtAuthorities));
      } catch (err) {
        this.logger.warn(
          { trust_domain: td, reason: (err as Error).message },
          'JWT bundle from the Workload API ignored',
        );
      }
    }
    this.current = next;
    this.emit('update', next);
  }

  protected withdraw(): void {
    if (!this.current || this.current.size === 0) return;
    this.logger.warn('Workload API denied this workload: its JWT bundles are withdrawn');
    this.current = new Map();
    this.emit('update', this.current);
  }
}
