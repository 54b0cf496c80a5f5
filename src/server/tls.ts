/**
 * TLS for listeners: TLS 1.2 minimum, the full option set on every context swap (Node resets what is left out),
 * and certificate/key files watched so a renewed certificate is served to new connections without a restart.
 * Both files are read and checked to match before the swap; a half-written pair keeps the old context.
 */
import { readFileSync, type FSWatcher } from 'node:fs';
import { watchFileDirectories } from '../shared/file-watch.js';
import { stat } from 'node:fs/promises';
import { X509Certificate, createPrivateKey, randomBytes, type KeyObject } from 'node:crypto';
import path from 'node:path';
import type { Server as HttpsServer } from 'node:https';
import type { TlsOptions } from 'node:tls';
import type { Logger } from 'pino';
import type { ListenerConfig } from '../config/types.js';
import {
  CLIENT_AUTH_MAX_SESSION_S,
  ListenerClientAuth,
  registerListenerConnection,
} from '../workload-identity/listener-client-auth.js';
import type { ServedCertificate } from '../workload-identity/certificates.js';
import type { WorkloadX509Source } from '../workload-identity/workload-api/x509-source.js';

export function describeCertificate(certPem: string, source: ServedCertificate['source']): ServedCertificate {
  const x509 = new X509Certificate(certPem);
  const uri = x509.subjectAltName?.split(', ').find((n) => n.startsWith('URI:spiffe://'));
  return {
    ...(uri ? { spiffeId: uri.slice(4) } : {}),
    serial: x509.serialNumber.toUpperCase(),
    fingerprint: x509.fingerprint256,
    notAfter: new Date(x509.validTo),
    source,
  };
}

/** Reads and checks a certificate/key pair; throws with a message naming the problem, never the key. */
export function loadCertificatePair(
  certFile: string,
  keyFile: string,
): { cert: string; key: string; x509: X509Certificate } {
  const cert = readFileSync(certFile, 'utf8');
  const key = readFileSync(keyFile, 'utf8');
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch {
    throw new Error(`${certFile} is not a PEM certificate`);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch {
    throw new Error(`${keyFile} is not a PEM private key`);
  }
  if (!x509.checkPrivateKey(privateKey)) throw new Error(`${certFile} and ${keyFile} do not belong together`);
  return { cert, key, x509 };
}

/**
 * The listener's certificate: from its files, or the Workload API's current SVID. With the SVID withdrawn
 * (PermissionDenied), there is none: the context then has no certificate, so new handshakes fail instead of
 * presenting an identity the workload no longer holds.
 */
function listenerCertificate(
  tls: NonNullable<ListenerConfig['tls']>,
  baseDir: string,
  svids: WorkloadX509Source | undefined,
): { cert: string; key: string; notAfter: Date } | undefined {
  if (tls.workload_api) {
    if (!svids) throw new Error('the Workload API source of this listener is not running');
    const svid = svids.svid(tls.workload_api.spiffe_id);
    return svid ? { cert: svid.certPem, key: svid.keyPem, notAfter: svid.notAfter } : undefined;
  }
  const pair = loadCertificatePair(path.resolve(baseDir, tls.cert!), path.resolve(baseDir, tls.key!));
  return { cert: pair.cert, key: pair.key, notAfter: new Date(pair.x509.validTo) };
}

export function tlsServerOptions(
  tls: NonNullable<ListenerConfig['tls']>,
  baseDir: string,
  clientAuth?: ListenerClientAuth,
  svids?: WorkloadX509Source,
): TlsOptions & { notAfter: Date; served: ServedCertificate | undefined } {
  const pair = listenerCertificate(tls, baseDir, svids);
  return {
    served: pair ? describeCertificate(pair.cert, tls.workload_api ? 'workload_api' : 'file') : undefined,
    ...(clientAuth ? clientAuth.tlsOptions() : {}),
    ...(pair ? { cert: pair.cert, key: pair.key } : {}),
    minVersion: tls.min_version,
    maxVersion: 'TLSv1.3',
    ...(tls.ciphers ? { ciphers: tls.ciphers } : {}),
    honorCipherOrder: true,
    // A resumed session skips certificate verification in OpenSSL: keep sessions short when clients authenticate.
    sessionTimeout: clientAuth ? Math.min(tls.session_timeout_s, CLIENT_AUTH_MAX_SESSION_S) : tls.session_timeout_s,
    ALPNProtocols: ['http/1.1'],
    notAfter: pair ? pair.notAfter : new Date(0),
  };
}

/**
 * Watches a listener's certificate and key and swaps the server's context when both are readable and match.
 * Session ticket keys are rotated with every swap so sessions from the old context are not resumed. With client
 * certificates, a change of the client CAs or trust bundles swaps the context (and rotates the keys) too, and
 * every completed handshake is checked by the listener's client authentication before a request is read.
 */
export class CertificateWatcher {
  private watchers: FSWatcher[] = [];
  private timer: NodeJS.Timeout | undefined;
  private poller: NodeJS.Timeout | undefined;
  private readonly fileStamps = new Map<string, string>();
  /** Validity end of the certificate being served. */
  notAfter: Date | undefined;
  /** Number of successful swaps (for tests and metrics); a swap may keep the certificate (e.g. new trust bundles). */
  reloads = 0;
  /** The certificate served now. */
  served: ServedCertificate | undefined;
  /** When a different certificate was last put in service (undefined: still the one from start). */
  rotatedAt: Date | undefined;
  /** Number of times a different certificate was put in service. */
  rotations = 0;
  /** Told when the served certificate is within `expiry_warning_s` of its end. */
  onExpiring: ((served: ServedCertificate, secondsLeft: number) => void) | undefined;
  private readonly reloadListeners = new Set<() => void>();
  private expiryTimer: NodeJS.Timeout | undefined;
  /** Told about every connection closed because its client certificate was missing or refused. */
  onClientRefused: ((reason: string, client: string) => void) | undefined;

  constructor(
    private readonly server: HttpsServer,
    private tls: NonNullable<ListenerConfig['tls']>,
    private baseDir: string,
    private readonly logger: Logger,
    /** Client certificate checks of this listener, when `client_auth` is not none. */
    public clientAuth: ListenerClientAuth | undefined = undefined,
    /** Workload API source of the listener's certificate, when `workload_api` is configured. */
    private readonly svids: WorkloadX509Source | undefined = undefined,
    private readonly debounceMs = 150,
    private readonly pollMs = 2000,
  ) {
    this.watch();
    // Each Workload API message is the whole state: swap the context on every one (rotation or withdrawal).
    this.svids?.on('update', () => this.reload());
    this.clientAuth?.trust.onChange(() => this.reload());
    const currentVerifier = () => this.clientAuth?.verifier;
    server.on('secureConnection', (socket) => {
      registerListenerConnection(socket, currentVerifier);
      const refused = this.clientAuth?.admit(socket);
      if (refused !== undefined) this.onClientRefused?.(refused, socket.remoteAddress ?? '');
    });
  }

  /** Applies a changed TLS config (on config reload) and re-watches its files. */
  update(tls: NonNullable<ListenerConfig['tls']>, baseDir: string): void {
    let clientAuth: ListenerClientAuth | undefined;
    try {
      clientAuth = ListenerClientAuth.create(tls, baseDir, this.logger, this.svids);
    } catch (err) {
      this.logger.warn(
        { reason: (err as Error).message },
        'client certificate settings refused; the previous ones stay in use',
      );
      return;
    }
    this.clientAuth?.close();
    this.clientAuth = clientAuth;
    this.clientAuth?.trust.onChange(() => this.reload());
    this.tls = tls;
    this.baseDir = baseDir;
    this.unwatch();
    this.watch();
    this.reload();
  }

  private watch(): void {
    if (this.tls.cert === undefined || this.tls.key === undefined) return;
    const files = [path.resolve(this.baseDir, this.tls.cert), path.resolve(this.baseDir, this.tls.key)];
    this.watchers.push(
      ...watchFileDirectories(
        files,
        () => this.schedule(),
        (dir, err) =>
          this.logger.warn({ dir, err: err.message }, 'cannot watch certificate directory; reload with SIGHUP'),
      ),
    );
    // Backstop for lost directory events (and symlink chains elsewhere): the files' metadata, through symlinks.
    void this.pollFiles(files);
    this.poller = setInterval(() => void this.pollFiles(files), this.pollMs);
    this.poller.unref();
  }

  /** Schedules a reload when a file's inode, size or mtime changed since the last poll. */
  private async pollFiles(files: string[]): Promise<void> {
    let changed = false;
    for (const f of files) {
      let stamp: string;
      try {
        const st = await stat(f);
        stamp = `${st.ino}:${st.size}:${st.mtimeMs}`;
      } catch {
        stamp = 'missing';
      }
      const previous = this.fileStamps.get(f);
      this.fileStamps.set(f, stamp);
      if (previous !== undefined && previous !== stamp) changed = true;
    }
    if (changed) this.schedule();
  }

  private schedule(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.reload('if-certificate-changed'), this.debounceMs);
    this.timer.unref();
  }

  /**
   * Re-reads the certificate (and trust) and swaps the context. Session-ticket keys are rotated when trust or the
   * TLS settings changed (`always`, the default) or, for a plain re-read, only when the served certificate did.
   */
  reload(tickets: 'always' | 'if-certificate-changed' = 'always'): boolean {
    try {
      const { notAfter, served, ...options } = tlsServerOptions(this.tls, this.baseDir, this.clientAuth, this.svids);
      // A new context starts with new ticket keys: the current ones are put back unless they are to rotate.
      const keys = this.server.getTicketKeys();
      this.server.setSecureContext(options);
      // requestCert and rejectUnauthorized belong to the server, not the context: setSecureContext ignores them.
      const server = this.server as HttpsServer & { requestCert: boolean; rejectUnauthorized: boolean };
      server.requestCert = options.requestCert === true;
      server.rejectUnauthorized = options.rejectUnauthorized === true;
      const rotate = tickets === 'always' || served?.fingerprint !== this.served?.fingerprint;
      this.server.setTicketKeys(rotate ? randomBytes(48) : keys);
      this.notAfter = notAfter;
      this.reloads++;
      if (served?.fingerprint !== this.served?.fingerprint) {
        this.rotatedAt = new Date();
        this.rotations++;
      }
      this.served = served;
      this.logger.info(
        {
          cert: this.tls.cert ?? 'workload api',
          not_after: notAfter.toISOString(),
          serial: served?.serial,
          spiffe_id: served?.spiffeId,
        },
        'TLS certificate loaded',
      );
      for (const listener of this.reloadListeners) listener();
      this.checkExpiry();
      return true;
    } catch (err) {
      this.logger.warn(
        { cert: this.tls.cert, reason: (err as Error).message },
        'TLS certificate change refused; the previous certificate stays in use',
      );
      return false;
    }
  }

  /**
   * Re-reads everything the context is built from, as a config reload that left the TLS settings alone asks: the
   * trust bundles and client CAs (a change swaps the context and rotates the ticket keys, through the trust store's
   * change listener), else the certificate and key alone (keys kept unless the certificate changed).
   */
  refresh(): void {
    if (this.clientAuth?.trust.reload() !== true) this.reload('if-certificate-changed');
  }

  /** Calls `listener` after every successful swap; returns the unsubscribe function. */
  onReload(listener: () => void): () => void {
    this.reloadListeners.add(listener);
    return () => this.reloadListeners.delete(listener);
  }

  /** Starts the periodic stalled-rotation check (after `onExpiring` is wired), checking once now. */
  startExpiryChecks(intervalMs = 60_000): void {
    clearInterval(this.expiryTimer);
    this.expiryTimer = setInterval(() => this.checkExpiry(), intervalMs);
    this.expiryTimer.unref();
    this.checkExpiry();
  }

  /** Warns when the served certificate is about to expire: whatever renews it has not done so in time. */
  checkExpiry(): void {
    const served = this.served;
    if (!served || this.expiryTimer === undefined) return;
    const secondsLeft = Math.floor((served.notAfter.getTime() - Date.now()) / 1000);
    if (secondsLeft > (this.tls.expiry_warning_s ?? 600)) return;
    this.logger.warn(
      {
        cert: this.tls.cert ?? 'workload api',
        serial: served.serial,
        spiffe_id: served.spiffeId,
        not_after: served.notAfter.toISOString(),
        seconds_left: secondsLeft,
      },
      secondsLeft > 0
        ? 'TLS certificate expires soon and has not been rotated'
        : 'TLS certificate has expired and has not been rotated',
    );
    this.onExpiring?.(served, secondsLeft);
  }

  private unwatch(): void {
    for (const w of this.watchers) w.close();
    this.watchers = [];
    clearInterval(this.poller);
    this.fileStamps.clear();
  }

  close(): void {
    clearTimeout(this.timer);
    clearInterval(this.expiryTimer);
    this.reloadListeners.clear();
    this.unwatch();
    this.clientAuth?.close();
    this.svids?.close();
  }
}
