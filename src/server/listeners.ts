/**
 * Listeners: the HTTP and HTTPS servers a gateway serves requests on. Each one is a Node server built on the
 * gateway's request class (incoming.ts), with TLS options and certificate watching (tls.ts), listener client
 * authentication (mTLS, SPIFFE), and Node's own refusals (parse errors, unmet expectations) turned into the
 * gateway's answers through the handlers the caller gives.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { EventBus } from '../pipeline/events.js';
import type { GatewayConfig, ListenerConfig } from '../config/types.js';
import { GATEWAY_REQUEST_OPTIONS, takeRequest } from './incoming.js';
import { responseForUpgrade } from './upgrade.js';
import { CertificateWatcher, tlsServerOptions } from './tls.js';
import { ListenerClientAuth } from '../workload-identity/listener-client-auth.js';
import { startListenerSvidSource } from '../workload-identity/workload-api/x509-source.js';
import {
  attachHttp2,
  type GatewayHttp2Request,
  type GatewayHttp2Response,
  Http2Side,
  type Http2CloseReason,
} from './http2.js';
import { http2AbuseRecorder, http2ServerOptions } from './http2.js';

export interface ListenerHandle {
  readonly config: ListenerConfig;
  readonly server: http.Server | https.Server;
  readonly tls: boolean;
  certificates: CertificateWatcher | undefined;
  /** The listener's HTTP/2 connections (ALPN h2 on TLS, or h2c), when it speaks HTTP/2. */
  http2: Http2Side | undefined;
  /** Bound port (useful with port 0). */
  port: number;
}

/** What a listener hands its requests to. */
export interface ListenerHandlers {
  /** Every request; `upgradeHead` for one that asks for a protocol upgrade (the bytes after its head). */
  request(listener: ListenerHandle, req: IncomingMessage, res: ServerResponse, upgradeHead?: Buffer): void;
  /** An `Expect` other than `100-continue` (Node answers `100-continue` itself). */
  expectationFailed(listener: ListenerHandle, req: IncomingMessage, res: ServerResponse): void;
  /** Node could not parse a request on this socket (framing, header size, timeouts). */
  clientError(listener: ListenerHandle, err: NodeJS.ErrnoException & { rawPacket?: Buffer }, socket: Socket): void;
}

/** Node server options for every listener, from `server.*`. */
export function serverOptions(s: GatewayConfig['server']): http.ServerOptions {
  return {
    maxHeaderSize: s.max_header_bytes,
    headersTimeout: s.headers_timeout_ms,
    requestTimeout: s.request_timeout_ms,
    keepAliveTimeout: s.keep_alive_timeout_ms,
    // Node checks the two timeouts above on this interval (30 s by default, far too lax for slow clients).
    connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(s.headers_timeout_ms / 2))),
    joinDuplicateHeaders: false,
    insecureHTTPParser: false,
    noDelay: true,
    // No header object per request that the forwarding path never reads, and Host checked in the request path
    // instead of by Node, so its refusal is problem+json like every other (see incoming.ts).
    ...GATEWAY_REQUEST_OPTIONS,
  };
}

/** Whether listener `lc` speaks HTTP/2: by ALPN on TLS (unless `http2: off`), with prior knowledge on `h2c`. */
export function speaksHttp2(lc: ListenerConfig): boolean {
  return lc.tls !== undefined ? lc.http2 !== 'off' : lc.http2 === 'h2c';
}

/** Idle connections close now; HTTP/2 ones get GOAWAY and close once their streams finished. */
export function closeIdleConnections(l: ListenerHandle): void {
  l.server.closeIdleConnections();
  l.http2?.closeIdle();
}

/** Every connection closes now, HTTP/1.1 and HTTP/2. */
export function closeAllConnections(l: ListenerHandle): void {
  l.server.closeAllConnections();
  l.http2?.closeAll();
}

export function listenerUrl(listener: ListenerHandle): string {
  const host = listener.config.address.includes(':') ? `[${listener.config.address}]` : listener.config.address;
  return `${listener.tls ? 'https' : 'http'}://${host}:${listener.port}`;
}

/** Binds listener `lc` and resolves once it listens. */
export async function openListener(
  lc: ListenerConfig,
  baseDir: string,
  options: http.ServerOptions,
  handlers: ListenerHandlers,
  deps: {
    logger: Logger;
    events: EventBus;
    /** `server.*`: the HTTP/2 limits of listeners that speak it. */
    server: GatewayConfig['server'];
    /** Counts an HTTP/2 connection the gateway closed (metric). */
    http2Closed?: (listener: string, reason: Http2CloseReason) => void;
  },
): Promise<ListenerHandle> {
  if (lc.tls !== undefined && lc.http2 === 'h2c')
    throw new Error(`listener "${lc.name}": h2c is for plain listeners (a TLS listener offers h2 by ALPN)`);
  let server: http.Server | https.Server;
  let certificates: CertificateWatcher | undefined;
  const handle = {} as ListenerHandle;
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    // From here on `req.headers` is Node's full object (incoming.ts).
    takeRequest(req);
    handlers.request(handle, req, res);
  };
  if (lc.tls) {
    const svids = lc.tls.workload_api ? await startListenerSvidSource(lc.tls.workload_api, deps.logger) : undefined;
    let clientAuth: ListenerClientAuth | undefined;
    let tlsOptions: ReturnType<typeof tlsServerOptions>;
    try {
      clientAuth = ListenerClientAuth.create(lc.tls, baseDir, deps.logger, svids);
      tlsOptions = tlsServerOptions(lc.tls, baseDir, clientAuth, svids);
    } catch (err) {
      clientAuth?.close();
      svids?.close();
      throw err;
    }
    const { notAfter, served, ...serverTls } = tlsOptions;
    if (speaksHttp2(lc)) serverTls.ALPNProtocols = ['h2', 'http/1.1'];
    server = https.createServer({ ...options, ...serverTls }, onRequest);
    certificates = new CertificateWatcher(server as https.Server, lc.tls, baseDir, deps.logger, clientAuth, svids);
    certificates.notAfter = notAfter;
    certificates.served = served;
    certificates.onExpiring = (cert, secondsLeft) =>
      deps.events.emit({
        type: 'tls.certificate_expiring',
        outcome: secondsLeft > 0 ? 'rotation_stalled' : 'expired',
        data: {
          listener: lc.name,
          serial: cert.serial,
          spiffe_id: cert.spiffeId,
          not_after: cert.notAfter.toISOString(),
          seconds_left: secondsLeft,
          source: cert.source,
        },
      });
    certificates.startExpiryChecks();
    certificates.onClientRefused = (reason, client) =>
      deps.events.emit({
        type: 'auth.failure',
        outcome: reason,
        data: { listener: lc.name, method: 'mtls', stage: 'handshake', client },
      });
    // A failed handshake is the client's problem, not ours: do not log it as an error.
    server.on('tlsClientError', () => undefined);
  } else {
    server = http.createServer(options, onRequest);
  }
  // Requests asking for a protocol upgrade: the same path as any request, on a response made for the socket
  // (server/upgrade.ts). Decision listeners keep Node's default (an ordinary request).
  if (!lc.decision) {
    server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
      takeRequest(req); // before the response reads anything of it
      handlers.request(handle, req, responseForUpgrade(req, socket), head);
    });
  }
  // Node answers `Expect: 100-continue` itself and emits this for any other expectation (RFC 9110 10.1.1: 417).
  server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
    takeRequest(req);
    handlers.expectationFailed(handle, req, res);
  });
  let h2: Http2Side | undefined;
  if (speaksHttp2(lc)) {
    const record = http2AbuseRecorder(lc.name, deps.events, deps.logger, (reason) =>
      deps.http2Closed?.(lc.name, reason),
    );
    const onH2Request = (req: GatewayHttp2Request, res: GatewayHttp2Response) =>
      handlers.request(handle, req as unknown as IncomingMessage, res as unknown as ServerResponse);
    h2 = new Http2Side(http2ServerOptions(deps.server), deps.server.http2, onH2Request, record);
    attachHttp2(server, h2, lc.tls !== undefined);
  }
  server.on('clientError', (err: NodeJS.ErrnoException & { rawPacket?: Buffer }, socket: Socket) =>
    handlers.clientError(handle, err, socket),
  );
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port: lc.port, host: lc.address }, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    certificates?.close();
    throw err;
  }
  Object.assign(handle, {
    config: lc,
    server,
    tls: lc.tls !== undefined,
    certificates,
    http2: h2,
    port: (server.address() as { port: number }).port,
  });
  return handle;
}
