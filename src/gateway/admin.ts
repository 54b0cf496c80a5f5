/**
 * The admin listener: health (`/healthz`), readiness (`/readyz`), the endpoints subsystems add (metrics, unmatched
 * webhooks ...), the admin API (`/admin/api/*`, src/admin/) and its dashboard (`/`, `/assets/*`). It never shares a listener with traffic; listeners
 * that set `health` also answer the two health paths through `answerHealth`. With `admin.tls` it speaks HTTPS and
 * may ask for client certificates (mapped to admin roles by the API).
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import { X509Certificate } from 'node:crypto';
import type { AdminTlsConfig } from '../config/admin-api-schema.js';
import type { ListenerCertificateInfo } from '../subsystems.js';
import type { Logger } from 'pino';
import { problem, sendProblem } from '../pipeline/problem.js';
import type { RunningSubsystem } from '../subsystems.js';
import type { ListenerHandle } from '../server/listeners.js';

/** A started subsystem and the name its readiness check is reported under. */
export interface NamedSubsystem {
  readonly name: string;
  readonly instance: RunningSubsystem;
}

/** What readiness reads from the gateway. */
export interface AdminSources {
  readonly logger: Logger;
  /** The config file serving now, or undefined for the built-in demo. */
  configFile(): string | undefined;
  draining(): boolean;
  listeners(): readonly ListenerHandle[];
  subsystems(): readonly NamedSubsystem[];
  /** Vault's readiness, when the configuration uses Vault. */
  vault(): Record<string, unknown> | undefined;
  /** The admin API's handler for `/admin/api/*`. */
  api(req: IncomingMessage, res: ServerResponse): void;
  /** The dashboard's files (`/`, `/assets/*`); false when the path is not one of them or the dashboard is off. */
  dashboard(req: IncomingMessage, res: ServerResponse, path: string): boolean;
}

export interface Readiness {
  status: 'ready' | 'not ready';
  checks: Record<string, unknown>;
}

export class Admin {
  server: http.Server | undefined;
  port = 0;
  /** The certificate served with `admin.tls`. */
  certificate: ListenerCertificateInfo | undefined;
  /** Readiness checks failing at the last probe (their cause is logged once when they start failing). */
  private readonly failing = new Set<string>();

  constructor(private readonly sources: AdminSources) {}

  async listen(address: string, port: number, tls?: AdminTlsConfig, baseDir = process.cwd()): Promise<void> {
    const handler = (req: IncomingMessage, res: ServerResponse) => this.handle(req, res);
    let server: http.Server;
    if (tls) {
      const read = (file: string) => readFileSync(resolvePath(baseDir, file));
      const cert = read(tls.cert);
      const x509 = new X509Certificate(cert);
      this.certificate = {
        listener: 'admin',
        notAfter: new Date(x509.validTo),
        served: {
          source: 'file',
          serial: x509.serialNumber,
          fingerprint: x509.fingerprint256,
          notAfter: new Date(x509.validTo),
        },
        rotations: 0,
      };
      server = https.createServer(
        {
          cert,
          key: read(tls.key),
          minVersion: 'TLSv1.2',
          // Client certificates are asked for and verified, but a call without one may still carry an admin key.
          ...(tls.client_ca ? { ca: read(tls.client_ca), requestCert: true, rejectUnauthorized: false } : {}),
        },
        handler,
      );
    } else server = http.createServer({ requireHostHeader: false }, handler);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port, host: address }, () => resolve());
    });
    this.server = server;
    this.port = (server.address() as { port: number }).port;
    this.sources.logger.info({ listener: 'admin', url: this.url(address) }, 'listening');
  }

  /** Base URL of the admin listener (`address` as bound; 0.0.0.0 and :: as loopback). */
  url(address: string): string {
    const host =
      address === '0.0.0.0' || address === '::' ? '127.0.0.1' : address.includes(':') ? `[${address}]` : address;
    return `${this.server instanceof https.Server ? 'https' : 'http'}://${host}:${this.port}`;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0]!;
    if (path === '/healthz' || path === '/readyz') return this.answerHealth(path, res);
    if (path.startsWith('/admin/api/')) return this.sources.api(req, res);
    if (
      (path === '/' || path === '/index.html' || path.startsWith('/assets/')) &&
      this.sources.dashboard(req, res, path)
    )
      return;
    for (const m of this.sources.subsystems()) {
      const h = m.instance.adminHandlers?.[path];
      if (h) return h(req, res);
    }
    sendProblem(res, problem('not-found'), undefined);
  }

  /** `/healthz`: the process answers. `/readyz`: it can serve (readiness below), else 503. */
  answerHealth(path: string, res: ServerResponse): void {
    if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end('{"status":"ok"}');
      return;
    }
    void this.readiness().then((r) => {
      const body = JSON.stringify(r);
      res.writeHead(r.status === 'ready' ? 200 : 503, {
        'content-type': 'application/json',
        'cache-control': 'no-store',
      });
      res.end(body);
    });
  }

  /** Readiness: config loaded, not draining, certificates valid, every subsystem's dependencies reachable. */
  async readiness(): Promise<Readiness> {
    const s = this.sources;
    const checks: Record<string, unknown> = { config: { ok: true, file: s.configFile() ?? 'built-in demo' } };
    let ok = !s.draining();
    if (!ok) checks.draining = { ok: false };
    for (const l of s.listeners()) {
      const c = l.certificates;
      if (c?.notAfter) {
        checks[`tls:${l.config.name}`] = {
          ok: c.notAfter.getTime() > Date.now(),
          not_after: c.notAfter.toISOString(),
          ...(c.served
            ? {
                source: c.served.source,
                serial: c.served.serial,
                ...(c.served.spiffeId ? { spiffe_id: c.served.spiffeId } : {}),
              }
            : {}),
          last_rotation: c.rotatedAt?.toISOString() ?? null,
          rotations: c.rotations,
        };
      }
    }
    const vault = s.vault();
    if (vault !== undefined) checks.vault = vault;
    const subsystems = s.subsystems();
    const results = await Promise.all(
      subsystems.map((m) =>
        m.instance.ready
          ? m.instance.ready().catch((err: unknown) => ({ ok: false, detail: { state: 'check failed' }, error: err }))
          : undefined,
      ),
    );
    results.forEach((r, i) => {
      if (!r) return;
      const name = subsystems[i]!.name;
      // The answer names what fails; why goes to the log, once each time a check starts failing.
      checks[name] = r.detail === undefined ? { ok: r.ok } : { ok: r.ok, ...r.detail };
      if (r.ok) {
        this.failing.delete(name);
        return;
      }
      ok = false;
      if (!this.failing.has(name)) {
        this.failing.add(name);
        s.logger.warn({ check: name, err: r.error }, 'readiness check failing');
      }
    });
    return { status: ok ? 'ready' : 'not ready', checks };
  }
}
