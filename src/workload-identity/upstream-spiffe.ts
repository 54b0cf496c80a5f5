/**
 * TLS to upstreams that identify themselves with X509-SVIDs: every connection, resumed ones included, is checked
 * in gateway code before undici sends a request on it. Node's checkServerIdentity ignores URI SANs and is skipped
 * on resumed sessions, so neither it nor OpenSSL's verification is relied on: the upstream's SVID is validated
 * with every SPIFFE rule against the bundle of its own trust domain (re-read when the bundle file changes), then
 * its SPIFFE ID is compared with the pin (an exact ID or a trust domain).
 *
 * The gateway presents a client certificate when configured: its own X509-SVID from the Workload API (the
 * current one at each connection, so rotation needs no pool restart).
 */
import tls, { type TLSSocket } from 'node:tls';
import { isIP } from 'node:net';
import type { Logger } from 'pino';
import type { buildConnector } from 'undici';
import { TrustStore, type TrustDomainConfig } from './trust-store.js';
import { peerChainDer, validateX509Svid } from './svid.js';
import { parseSpiffeId } from './spiffe-id.js';
import { WorkloadX509Source } from './workload-api/x509-source.js';

export interface UpstreamSpiffeConfig {
  trust_domains: TrustDomainConfig[];
  /** Exact SPIFFE ID the upstream must present. */
  id?: string;
  /** Trust domain the upstream's SPIFFE ID must belong to. */
  trust_domain?: string;
}

/** Sessions kept per upstream address, so reconnects resume (and are still checked). */
const MAX_SESSIONS = 100;

export class UpstreamSpiffeConnector {
  readonly trust: TrustStore;
  /**
   * Sessions per upstream address with the chain the upstream presented when the session was made: on a resumed
   * session Node exposes no peer certificate at all, so the remembered chain is validated again (against the
   * current bundles and pin) instead. Resumption proves the peer holds the session established with that chain.
   */
  private readonly sessions = new Map<string, { session: Buffer; chain: Buffer[] }>();
  /** Connections checked and refused (for tests and metrics). */
  checked = 0;
  refused = 0;
  resumed = 0;

  constructor(
    private readonly config: UpstreamSpiffeConfig,
    baseDir: string,
    private readonly logger: Logger,
    private readonly timeoutMs: number,
    private readonly servername: string | undefined,
    private readonly clientSvids: { source: WorkloadX509Source; spiffeId?: string } | undefined = undefined,
  ) {
    if (config.id === undefined && config.trust_domain === undefined)
      throw new Error('an upstream SPIFFE pin needs id or trust_domain');
    if (config.id !== undefined) {
      const id = parseSpiffeId(config.id);
      if (!id.ok) throw new Error(`upstream SPIFFE id ${JSON.stringify(config.id)}: ${id.reason}`);
    }
    this.trust = new TrustStore({ trustDomains: config.trust_domains }, baseDir, logger);
  }

  /** Why the upstream's identity (its presented chain, DER leaf first) is refused, or undefined when it matches the pin. */
  check(chain: readonly Buffer[]): string | undefined {
    this.checked++;
    const verdict = validateX509Svid(chain, this.trust, Date.now(), 'server');
    if (!verdict.ok) return `upstream X509-SVID refused: ${verdict.reason}`;
    const id = verdict.spiffeId!;
    if (this.config.id !== undefined && id.id !== this.config.id)
      return `upstream SPIFFE ID ${id.id} is not ${this.config.id}`;
    if (this.config.trust_domain !== undefined && id.trustDomain !== this.config.trust_domain)
      return `upstream SPIFFE ID ${id.id} is outside trust domain ${this.config.trust_domain}`;
    return undefined;
  }

  /** The undici connector. */
  readonly connect: buildConnector.connector = (options, callback) => {
    const port = Number(options.port) || 443;
    const key = `${options.hostname}:${port}`;
    const servername = this.servername ?? options.servername ?? options.hostname;
    const svid = this.clientSvids ? this.clientSvids.source.svid(this.clientSvids.spiffeId) : undefined;
    const offered = this.sessions.get(key);
    /** The chain this connection is known by, set once the handshake is checked. */
    let chain: Buffer[] | undefined;
    let pendingSession: Buffer | undefined;
    let done = false;
    const finish = (err: Error | null, socket: TLSSocket | null) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (err) callback(err, null);
      else callback(null, socket!);
    };
    const socket = tls.connect({
      host: options.hostname,
      port,
      ...(isIP(servername) ? {} : { servername }),
      // Verification happens in check(): OpenSSL cannot apply the SPIFFE rules or bind a trust domain to its roots.
      rejectUnauthorized: false,
      minVersion: 'TLSv1.2',
      ALPNProtocols: ['http/1.1'],
      ...(offered ? { session: offered.session } : {}),
      ...(svid ? { cert: svid.certPem, key: svid.keyPem } : {}),
    });
    socket.setNoDelay(true);
    const timer = setTimeout(() => {
      socket.destroy();
      finish(new Error(`connect timeout after ${this.timeoutMs} ms`), null);
    }, this.timeoutMs);
    const keep = (session: Buffer, verified: Buffer[]) => {
      this.sessions.delete(key);
      this.sessions.set(key, { session, chain: verified });
      if (this.sessions.size > MAX_SESSIONS) this.sessions.delete(this.sessions.keys().next().value!);
    };
    // TLS 1.3 tickets may arrive before or after secureConnect: keep a session only with a verified chain.
    socket.on('session', (session: Buffer) => {
      if (chain) keep(session, chain);
      else pendingSession = session;
    });
    socket.once('secureConnect', () => {
      const reused = socket.isSessionReused();
      if (reused) this.resumed++;
      const presented = reused && offered ? offered.chain : peerChainDer(socket.getPeerCertificate(true));
      const problem = this.check(presented);
      if (problem) {
        this.refused++;
        this.sessions.delete(key);
        this.logger.warn({ upstream: key, reason: problem }, 'upstream identity refused');
        socket.destroy();
        return finish(new Error(problem), null);
      }
      chain = presented;
      if (pendingSession) keep(pendingSession, chain);
      finish(null, socket);
    });
    socket.once('error', (err) => finish(err, null));
  };

  close(): void {
    this.trust.close();
    this.sessions.clear();
    this.clientSvids?.source.close();
  }
}

/** Builds the connector of an upstream group; with client_svid, waits for the gateway's first SVID. */
export async function spiffeUpstreamConnector(
  config: UpstreamSpiffeConfig & { client_svid?: { socket?: string; spiffe_id?: string } },
  baseDir: string,
  logger: Logger,
  connectTimeoutMs: number,
  servername: string | undefined,
): Promise<UpstreamSpiffeConnector> {
  let client: { source: WorkloadX509Source; spiffeId?: string } | undefined;
  if (config.client_svid) {
    const source = new WorkloadX509Source(
      logger,
      config.client_svid.socket ? { address: config.client_svid.socket } : {},
    );
    try {
      await source.ready();
    } catch (err) {
      source.close();
      throw err;
    }
    client = { source, ...(config.client_svid.spiffe_id ? { spiffeId: config.client_svid.spiffe_id } : {}) };
  }
  try {
    const connector = new UpstreamSpiffeConnector(config, baseDir, logger, connectTimeoutMs, servername, client);
    return connector;
  } catch (err) {
    client?.source.close();
    throw err;
  }
}
