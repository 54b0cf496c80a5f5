/**
 * Verdicts on a TLS connection's client certificate, cached per socket: the chain is read and validated once per
 * connection, not per request. A cached verdict is dropped when the trust anchors change (generation) or the
 * certificate's validity ends, so a keep-alive connection cannot outlive the trust it was admitted under.
 */
import type { TLSSocket } from 'node:tls';
import { createHash } from 'node:crypto';
import { peerChainDer, validatePeerCertificate, type CertificateVerdict } from './svid.js';
import type { TrustStore } from './trust-store.js';

interface CachedVerdict {
  generation: number;
  /** Epoch ms after which the verdict must be recomputed. */
  recheckAt: number;
  verdict: CertificateVerdict | undefined;
}

/** Refusals are re-evaluated at most this often on one connection (a bundle change also clears them). */
const REFUSAL_TTL_MS = 60_000;
/** Leaves whose intermediates are remembered for resumed sessions, and chains whose verdicts are remembered. */
const REMEMBERED_CHAINS = 1024;

export class PeerVerifier {
  private readonly cache = new WeakMap<TLSSocket, CachedVerdict>();
  /**
   * Intermediates a client sent, by leaf fingerprint. A resumed TLS session keeps the peer's leaf but not the
   * intermediates it presented, so without this an SVID issued through an intermediate CA could never resume.
   * They are only candidates: the chain is validated in full against the current bundles every time.
   */
  private readonly intermediates = new Map<string, Buffer[]>();
  /**
   * Verdicts by hash of the presented chain: a workload opens many connections with the same SVID, and parsing
   * and verifying it costs milliseconds while hashing it costs microseconds. Same expiry rules as per socket.
   */
  private readonly byChain = new Map<string, CachedVerdict>();

  constructor(readonly trust: TrustStore) {}

  /** The verdict for the socket's client certificate; undefined when the client sent none. */
  verify(socket: TLSSocket, now = Date.now()): CertificateVerdict | undefined {
    const cached = this.cache.get(socket);
    if (cached !== undefined && cached.generation === this.trust.generation && now <= cached.recheckAt)
      return cached.verdict;
    const peer = socket.getPeerCertificate(true);
    let chain = peer && (peer as { raw?: Buffer }).raw ? peerChainDer(peer) : [];
    let leafHash: string | undefined;
    if (chain.length > 0) {
      leafHash = createHash('sha256').update(chain[0]!).digest('hex');
      const remembered = this.intermediates.get(leafHash);
      if (remembered !== undefined && socket.isSessionReused()) chain = [...chain, ...remembered];
    }
    let entry: CachedVerdict | undefined;
    let chainHash: string | undefined;
    if (chain.length > 0) {
      const hash = createHash('sha256');
      for (const der of chain) hash.update(der);
      chainHash = hash.digest('hex');
      entry = this.byChain.get(chainHash);
      if (entry !== undefined && (entry.generation !== this.trust.generation || now > entry.recheckAt))
        entry = undefined;
    }
    if (entry === undefined) {
      const verdict = chain.length === 0 ? undefined : validatePeerCertificate(chain, this.trust, now);
      const recheckAt =
        verdict === undefined ? Number.MAX_SAFE_INTEGER : verdict.ok ? verdict.validUntil : now + REFUSAL_TTL_MS;
      entry = { generation: this.trust.generation, recheckAt, verdict };
      if (chainHash !== undefined) remember(this.byChain, chainHash, entry);
    }
    const verdict = entry.verdict;
    this.cache.set(socket, entry);
    if (verdict?.ok && leafHash !== undefined && chain.length > 1 && !socket.isSessionReused())
      remember(this.intermediates, leafHash, chain.slice(1));
    return verdict;
  }
}

/** Bounded map insert: most recent last, the oldest dropped beyond REMEMBERED_CHAINS. */
function remember<V>(map: Map<string, V>, key: string, value: V): void {
  map.delete(key);
  map.set(key, value);
  if (map.size > REMEMBERED_CHAINS) map.delete(map.keys().next().value!);
}
