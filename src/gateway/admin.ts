/**
 * The admin listener: health (`/healthz`), readiness (`/readyz`), and the endpoints subsystems add (metrics, unmatched
 * webhooks ...). It never shares a listener with traffic; listeners that set `health` also answer the two health
 * paths through `answerHealth`.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
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
}

export interface Readiness {
  status: 'ready' | 'not ready';
  checks: Record<string, unknown>;
}

export class Admin {
  server: http.Server | undefined;
  port = 0;
  /** Readiness checks failing at the last probe (their cause is logged once when they start failing). */
  private readonly failing = new Set<string>();

  constructor(private readonly sources: AdminSources) {}

  async listen(address: string, port: number): Promise<void> {
    const server = http.createServer({ requireHostHeader: false }, (req, res) => this.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port, host: address }, () => resolve());
    });
    this.server = server;
    this.port = (server.address() as { port: number }).port;
    this.sources.logger.info({ listener: 'admin', url: `http://${address}:${this.port}` }, 'listening');
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
