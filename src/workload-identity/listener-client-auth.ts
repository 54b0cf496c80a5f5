/**
 * Client certificates on a TLS listener (`tls.client_auth`, `tls.client_ca`, `tls.trust_domains`).
 *
 * OpenSSL requests the certificate and, for plain CA-based `required` listeners, refuses the handshake itself.
 * Whatever OpenSSL says, every connection (resumed ones included) is then checked in gateway code as soon as the
 * handshake completes and before a request is read: with `required`, a connection whose certificate is missing or
 * fails the SPIFFE/X.509 rules is closed. With `optional`, the connection stays open and route policies decide.
 */
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { ListenerConfig } from '../config/types.js';
import { TrustStore } from './trust-store.js';
import { PeerVerifier } from './peer-verifier.js';
import type { WorkloadX509Source, WorkloadX509State } from './workload-api/x509-source.js';

export type ListenerTls = NonNullable<ListenerConfig['tls']>;

/** Resumable sessions on a client-authenticated listener last at most this long, whatever `session_timeout_s` says. */
export const CLIENT_AUTH_MAX_SESSION_S = 60;

/**
 * For each TLS connection, how to reach its listener's current verifier. A getter rather than the verifier
 * itself: a config reload replaces the listener's client authentication, and connections opened before it must
 * be judged by the new trust, not by a retired one.
 */
const listenerVerifiers = new WeakMap<TLSSocket, () => PeerVerifier | undefined>();

/** Records which listener a connection arrived on (called for every handshake on a TLS listener). */
export function registerListenerConnection(socket: TLSSocket, currentVerifier: () => PeerVerifier | undefined): void {
  listenerVerifiers.set(socket, currentVerifier);
}

/** The verifier of the listener a connection came in on, when that listener asks for client certificates. */
export function listenerVerifierOf(socket: TLSSocket): PeerVerifier | undefined {
  return listenerVerifiers.get(socket)?.();
}

export class ListenerClientAuth {
  readonly trust: TrustStore;
  readonly verifier: PeerVerifier;
  /** Connections closed after the handshake because their certificate was refused. */
  refused = 0;

  private readonly onWorkloadUpdate: ((state: WorkloadX509State) => void) | undefined;

  private constructor(
    private readonly tls: ListenerTls,
    baseDir: string,
    private readonly logger: Logger,
    private readonly svids: WorkloadX509Source | undefined,
  ) {
    this.trust = new TrustStore(
      {
        trustDomains: (tls.trust_domains ?? []).map((t) => ({ name: t.name, bundle: t.bundle })),
        caFiles: tls.client_ca ?? [],
      },
      baseDir,
      logger,
    );
    this.verifier = new PeerVerifier(this.trust);
    const pushed = tls.workload_api?.client_trust === true ? svids : undefined;
    if (pushed) {
      this.onWorkloadUpdate = (state) => this.trust.setPushedBundles(state.bundles);
      if (pushed.current) this.trust.setPushedBundles(pushed.current.bundles);
      pushed.on('update', this.onWorkloadUpdate);
    }
    if (this.required && !pushed && !this.trust.hasTrustDomains && !this.trust.hasPlainRoots) {
      this.trust.close();
      throw new Error(
        'tls.client_auth is required but neither client_ca, trust_domains nor workload_api.client_trust is configured',
      );
    }
  }

  /** Undefined when the listener does not ask for client certificates. */
  static create(
    tls: ListenerTls,
    baseDir: string,
    logger: Logger,
    svids?: WorkloadX509Source,
  ): ListenerClientAuth | undefined {
    if (tls.client_auth === 'none') return undefined;
    return new ListenerClientAuth(tls, baseDir, logger, svids);
  }

  get required(): boolean {
    return this.tls.client_auth === 'required';
  }

  /**
   * Options merged into the listener's TLS options (on creation and on every context swap). OpenSSL enforces the
   * chain itself only for a required, purely CA-based listener; SPIFFE validation needs the gateway's own rules.
   */
  tlsOptions(): { requestCert: true; rejectUnauthorized: boolean; ca: string[] | undefined } {
    const ca = this.trust.allAuthoritiesPem();
    return {
      requestCert: true,
      rejectUnauthorized:
        this.required && !this.trust.hasTrustDomains && this.onWorkloadUpdate === undefined && ca.length > 0,
      ca: ca.length > 0 ? ca : undefined,
    };
  }

  /**
   * Checks a connection right after its handshake; closes it when a required certificate is missing or refused
   * and returns the refusal reason.
   */
  admit(socket: TLSSocket): string | undefined {
    if (!this.required) return undefined;
    let verdict: ReturnType<PeerVerifier['verify']>;
    try {
      verdict = this.verifier.verify(socket);
    } catch (err) {
      this.logger.error({ err }, 'client certificate check failed');
      verdict = undefined;
    }
    if (verdict?.ok) return undefined;
    this.refused++;
    const reason = verdict ? verdict.reason : 'no_certificate';
    this.logger.info({ client: socket.remoteAddress, reason }, 'TLS client certificate refused');
    socket.destroy();
    return reason;
  }

  close(): void {
    if (this.onWorkloadUpdate) this.svids?.off('update', this.onWorkloadUpdate);
    this.trust.close();
  }
}
