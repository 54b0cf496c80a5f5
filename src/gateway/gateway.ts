/**
 * The Gateway: the composition root. It is given the lists of what plugs in (policies, subsystems), starts the
 * subsystems, compiles the configuration into a Runtime, opens the listeners and the admin listener, and owns the
 * lifecycle: reload without dropping traffic, and a drain on stop.
 *
 *   listener (server/listeners.ts) → intake (server/intake.ts) → proxy requests (server/proxy.ts)
 *                                                               → decision endpoint (decision/endpoint.ts)
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { isDeepStrictEqual } from 'node:util';
import type { Logger } from 'pino';
import type { PolicyDefinition } from '../pipeline/policy.js';
import { Services } from '../pipeline/services.js';
import type { Subsystem, ListenerCertificateInfo, RunningSubsystem } from '../subsystems.js';
import { http2ClosedCounter, registerGatewayMetrics } from './metrics.js';
import { ConfigValidator, loadConfigFile, ConfigError } from '../config/load.js';
import type { ListenerConfig, LoadedConfig } from '../config/types.js';
import { resolveSecret } from '../config/secrets.js';
import { ConfigWatcher } from '../config/watch.js';
import { VaultSecrets } from '../secrets/vault-secrets.js';
import { compileRuntime, type CompileEnv, type Runtime } from '../server/runtime.js';
import {
  closeAllConnections,
  closeIdleConnections,
  listenerUrl,
  openListener,
  serverOptions,
  type ListenerHandle,
  type ListenerHandlers,
} from '../server/listeners.js';
import { RequestIntake } from '../server/intake.js';
import { ProxyRequests } from '../server/proxy.js';
import { DecisionEndpoint } from '../decision/endpoint.js';
import { DECISION_PROBLEMS } from '../decision/problems.js';
import { CORE_PROBLEM_TYPES, type ProblemType } from '../pipeline/problem.js';
import { Admin, type NamedSubsystem, type Readiness } from './admin.js';
import { AdminApi } from '../admin/api.js';
import { ADMIN_API_PROBLEMS } from '../admin/problems.js';
import { VERSION } from '../admin/version.js';
import type { ClusterChannel } from '../pipeline/cluster.js';
import { registerWorkerMetrics } from './worker-metrics.js';

export interface GatewayOptions {
  loaded: LoadedConfig;
  logger: Logger;
  dataDir: string;
  /** The policies configs may name (`src/bundled.ts` has the bundled list; tests pass their own). */
  policies: readonly PolicyDefinition[];
  /** The subsystems to start, in order: later ones may use services of earlier ones. */
  subsystems: readonly Subsystem[];
  /** URL of the embedded echo service; started on demand. */
  builtinEchoUrl?: () => Promise<string>;
  /** Watch the config file and reload on change (default true when the config came from a file). */
  watchConfig?: boolean;
  /** Set when this process is one of several workers (`server.workers`): registered as the service `cluster`. */
  cluster?: ClusterChannel;
}

/** Every problem type a gateway made of these policies and subsystems may answer with. */
export function problemTypesOf(policies: readonly PolicyDefinition[], subsystems: readonly Subsystem[]): ProblemType[] {
  const out = [...CORE_PROBLEM_TYPES, ...DECISION_PROBLEMS, ...ADMIN_API_PROBLEMS];
  for (const p of policies) out.push(...(p.problems ?? []));
  for (const m of subsystems) out.push(...(m.problems ?? []));
  return out;
}

export class Gateway {
  readonly logger: Logger;
  readonly listeners: ListenerHandle[] = [];
  private readonly adminListener: Admin;
  /** The admin REST API, served by the admin listener under /admin/api (src/admin/). */
  readonly adminApi: AdminApi;
  private runtime!: Runtime;
  private readonly validator: ConfigValidator;
  private readonly env: CompileEnv;
  /** Shared by every runtime: subsystems' services and the event bus. */
  readonly services: Services;
  private readonly subsystems: NamedSubsystem[] = [];
  /** The started subsystems' instances, whose routes every runtime compiles with the config's own. */
  private readonly subsystemInstances: RunningSubsystem[] = [];
  /** Base URL clients reach the gateway at (first listener): for provider callbacks and hosted pages. */
  publicBaseUrl = '';
  private configWatcher: ConfigWatcher | undefined;
  private draining = false;
  /** False until the first runtime is compiled: listeners answer 503 until then. */
  private ready = false;
  /** Client sockets of relayed WebSocket connections, closed when a drain runs out of time (the relay then closes its upstream side). */
  private readonly tunnels = new Set<Duplex>();
  private reloading: Promise<boolean> | undefined;
  private readonly intake: RequestIntake;
  private readonly proxy: ProxyRequests;
  /** Answers decision listeners (front-proxy forward-auth) through the same intake as proxied requests. */
  private readonly decisions: DecisionEndpoint;
  private readonly handlers: ListenerHandlers;
  /** Values of `{vault: ...}` secret references, read before each config is compiled and refreshed in the background. */
  readonly vault: VaultSecrets;

  constructor(private readonly options: GatewayOptions) {
    this.logger = options.logger;
    this.validator = new ConfigValidator(options.subsystems, options.policies);
    this.services = new Services(options.logger, options.dataDir);
    if (options.cluster) this.services.register('cluster', options.cluster);
    this.vault = new VaultSecrets(options.logger, this.services.events);
    // A rotated secret takes effect by compiling the configuration again (policies and subsystems resolve it anew).
    this.vault.onRotated = () => void this.reload('secret rotated', { inMemory: true });
    this.env = {
      logger: options.logger,
      dataDir: options.dataDir,
      policies: options.policies,
      services: this.services,
      subsystems: this.subsystemInstances,
      builtinEchoUrl:
        options.builtinEchoUrl ??
        (() => Promise.reject(new ConfigError(['builtin:echo is only available to `kycgate start`']))),
    };
    this.intake = new RequestIntake({
      logger: this.logger,
      accessLog: options.logger.child({}, { redact: [] }),
      events: this.services.events,
      current: () => (this.ready ? this.runtime : undefined),
      draining: () => this.draining,
    });
    this.adminListener = new Admin({
      logger: this.logger,
      configFile: () => this.runtime.loaded.file,
      draining: () => this.draining,
      listeners: () => this.listeners,
      subsystems: () => this.subsystems,
      vault: () => (this.runtime.config.vault ? this.vault.readiness() : undefined),
      api: (req, res) => this.adminApi.handle(req, res),
      dashboard: (req, res, path) => this.adminApi.serveDashboard(req, res, path),
    });
    this.adminApi = new AdminApi({
      logger: this.logger,
      services: this.services,
      version: VERSION,
      config: () => this.runtime.config,
      configFile: () => this.runtime.loaded.file,
      baseDir: () => this.runtime.loaded.baseDir,
      certificates: () => {
        const admin = this.adminListener.certificate;
        return admin ? [...this.listenerCertificates(), admin] : this.listenerCertificates();
      },
      upstreams: () => this.runtime.upstreamTargets(),
      draining: () => this.draining,
      ready: () => this.adminListener.readiness().then((r) => r.status === 'ready'),
      resolveSecret: (ref) => resolveSecret(ref, this.runtime.loaded.baseDir, process.env, this.vault),
    });
    this.proxy = new ProxyRequests({
      logger: this.logger,
      intake: this.intake,
      health: (path, res) => this.adminListener.answerHealth(path, res),
      tunnelOpened: (client) => {
        this.tunnels.add(client);
        client.once('close', () => this.tunnels.delete(client));
      },
    });
    this.decisions = new DecisionEndpoint({ logger: this.logger, intake: this.intake });
    this.handlers = {
      request: (listener, req, res, upgradeHead) => this.dispatch(listener, req, res, upgradeHead),
      expectationFailed: (listener, req, res) => this.intake.expectationFailed(listener, req, res),
      clientError: (listener, err, socket) => this.intake.clientError(listener, err, socket),
    };
  }

  get current(): Runtime {
    return this.runtime;
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /** The admin listener, once bound. */
  get admin(): { server: NonNullable<Admin['server']>; port: number } | undefined {
    const a = this.adminListener;
    return a.server === undefined ? undefined : { server: a.server, port: a.port };
  }

  /** Where the started gateway can be reached, for the start-up summary. */
  addresses(): { listeners: Record<string, string>; admin?: string; adminApi?: string; adminKeyFile?: string } {
    const listeners = Object.fromEntries(this.listeners.map((l) => [l.config.name, listenerUrl(l)]));
    const admin = this.adminListener.server ? this.adminListener.url(this.runtime.config.admin.address) : undefined;
    const api = this.runtime.config.admin.api.enabled && admin ? `${admin}/admin/api/v1` : undefined;
    return {
      listeners,
      ...(admin ? { admin } : {}),
      ...(api ? { adminApi: api } : {}),
      ...(this.adminApi.keyFile ? { adminKeyFile: this.adminApi.keyFile.path } : {}),
    };
  }

  /** Every problem type this gateway may answer with: the core's, decision listeners', and each policy's and subsystem's. */
  problemTypes(): ProblemType[] {
    return problemTypesOf(this.options.policies, this.options.subsystems);
  }

  /** Readiness, as `/readyz` answers it. */
  readiness(): Promise<Readiness> {
    return this.adminListener.readiness();
  }

  /** Binds every listener, starts subsystems, compiles the config and binds the admin listener. */
  async start(): Promise<void> {
    try {
      await this.startParts();
    } catch (err) {
      // Nothing half-started may outlive a failed start: a caller that retries must find the ports free.
      for (const l of this.listeners) {
        l.certificates?.close();
        closeAllConnections(l);
        l.server.close();
      }
      await this.adminListener.close();
      await this.adminApi.close().catch(() => undefined);
      this.configWatcher?.close();
      for (const m of this.subsystems) await m.instance.close?.().catch(() => undefined);
      await this.vault.close();
      throw err;
    }
  }

  private async startParts(): Promise<void> {
    const { loaded } = this.options;
    // What policies own for the life of the process (metrics, event listeners), before any config is compiled.
    for (const p of this.options.policies) p.init?.(this.services);
    registerGatewayMetrics(
      this.services,
      () => this.listenerCertificates(),
      () => (this.ready ? this.runtime.upstreamTargets() : []),
    );
    if (this.options.cluster) registerWorkerMetrics(this.services, this.options.cluster, () => this.intake.opened);
    await this.vault.prepare(loaded.config, loaded.baseDir);
    // Listeners first (so port 0 resolves to a real base URL for subsystems), serving only once the runtime exists.
    const options = serverOptions(loaded.config.server);
    for (const lc of loaded.config.listeners) {
      if (lc.decision) this.decisions.compile(lc.name, lc.decision);
      const listener = await openListener(lc, loaded.baseDir, options, this.handlers, {
        logger: this.logger,
        events: this.services.events,
        server: loaded.config.server,
        http2Closed: (listener, reason) => http2ClosedCounter(this.services).inc({ listener, reason }),
      });
      this.listeners.push(listener);
      this.logger.info({ listener: lc.name, url: listenerUrl(listener) }, 'listening');
    }
    // Decision listeners serve no routes of their own: callbacks and hosted pages need a serving listener.
    this.publicBaseUrl = listenerUrl(this.listeners.find((l) => l.config.decision === undefined) ?? this.listeners[0]!);
    for (const m of this.options.subsystems) {
      const instance = await m.start(loaded.config, {
        loaded,
        services: this.services,
        resolveSecret: (ref) => resolveSecret(ref, loaded.baseDir, process.env, this.vault),
        publicBaseUrl: this.publicBaseUrl,
      });
      this.subsystems.push({ name: m.name, instance });
      this.subsystemInstances.push(instance);
    }
    this.runtime = await compileRuntime(loaded, this.env);
    this.vault.retain(loaded.config);
    this.ready = true;
    const admin = loaded.config.admin;
    await this.adminApi.start(() =>
      this.adminListener.server ? this.adminListener.url(admin.address) + '/admin/api/v1' : undefined,
    );
    // With several workers the admin listener runs once, in worker 0; a replacement worker 0 binds the port its
    // predecessor had, so `admin.port: 0` keeps one address for the life of the supervisor.
    const cluster = this.options.cluster;
    if (admin.enabled && (cluster === undefined || cluster.slot === 0)) {
      const port = admin.port === 0 && cluster ? Number(cluster.shared['admin.port'] ?? 0) : admin.port;
      await this.adminListener.listen(admin.address, port, admin.tls, loaded.baseDir);
      cluster?.share('admin.port', this.adminListener.port);
      this.adminApi.announce(this.adminListener.url(admin.address));
    }
    if (loaded.file && this.options.watchConfig !== false) {
      this.configWatcher = new ConfigWatcher(loaded.file, () => void this.reload('file change'), this.logger);
    }
  }

  /** The certificate each TLS listener serves now and when it last changed. */
  private listenerCertificates(): ListenerCertificateInfo[] {
    return this.listeners
      .filter((l) => l.tls)
      .map((l) => ({
        listener: l.config.name,
        notAfter: l.certificates?.notAfter,
        served: l.certificates?.served,
        rotatedAt: l.certificates?.rotatedAt,
        rotations: l.certificates?.rotations ?? 0,
      }));
  }

  urlOf(listener: ListenerHandle): string {
    return listenerUrl(listener);
  }

  /** Every request of every listener: the same intake, then the proxy path or the decision endpoint. */
  private dispatch(
    listener: ListenerHandle,
    req: IncomingMessage,
    res: ServerResponse,
    upgradeHead: Buffer | undefined,
  ): void {
    const opened = this.intake.open(listener, req, res, upgradeHead);
    if (opened === undefined) return;
    const decision = listener.config.decision;
    if (decision === undefined) return this.proxy.handle(listener, req, res, opened, upgradeHead);
    const url = req.url;
    if (listener.config.health && opened.rt.config.server.health_paths && (url === '/healthz' || url === '/readyz'))
      return this.adminListener.answerHealth(url, res);
    this.decisions.handle(listener, decision, req, res, opened);
  }

  // ---------------------------------------------------------------------------------------------------------
  // Reload and shutdown

  /**
   * Loads the config file again; on success new requests use it and in-flight ones finish on the old runtime.
   * An invalid file is refused with a log line and the current config keeps serving. With `inMemory`, a config
   * that did not come from a file is compiled again as it is (a rotated secret must reach it too).
   */
  reload(reason: string, options: { inMemory?: boolean } = {}): Promise<boolean> {
    // Coalesce: a reload requested while one runs waits for it and then runs once more.
    const run = async (): Promise<boolean> => {
      const file = this.runtime.loaded.file;
      if ((!file && !options.inMemory) || this.draining) return false;
      let next: Runtime;
      // Subsystems that took the new config: put back on the current one if the rest of it is refused.
      const reloaded: RunningSubsystem[] = [];
      try {
        const loaded = file ? loadConfigFile(file, this.validator) : this.runtime.loaded;
        await this.vault.prepare(loaded.config, loaded.baseDir);
        for (const lc of loaded.config.listeners) if (lc.decision) this.decisions.compile(lc.name, lc.decision);
        for (const { instance } of this.subsystems) {
          if (instance.reload === undefined) continue;
          reloaded.push(instance);
          await instance.reload(loaded.config);
        }
        next = await compileRuntime(loaded, this.env);
      } catch (err) {
        const problems = err instanceof ConfigError ? err.problems : [(err as Error).message];
        for (const m of reloaded) {
          await m.reload!(this.runtime.config).catch((e: unknown) =>
            this.logger.error({ err: e }, 'a subsystem could not return to the current configuration'),
          );
        }
        this.logger.error({ reason, problems }, 'configuration refused; the previous configuration keeps serving');
        this.services.events.emit({ type: 'config.refused', outcome: 'invalid', data: { reason, problems } });
        return false;
      }
      if (this.draining) {
        // stop() began while this config compiled: it is never put in service.
        await next.close();
        return false;
      }
      const old = this.runtime;
      this.runtime = next;
      this.vault.retain(next.config);
      this.applyListenerChanges(next, old);
      this.logger.info({ reason, routes: next.routes.length }, 'configuration reloaded');
      this.services.events.emit({ type: 'config.reloaded', outcome: 'applied', data: { reason, file } });
      void old.retire();
      return true;
    };
    const previous = this.reloading ?? Promise.resolve(true);
    const current = previous.then(run, run);
    this.reloading = current;
    void current.finally(() => {
      if (this.reloading === current) this.reloading = undefined;
    });
    return current;
  }

  private applyListenerChanges(next: Runtime, old: Runtime): void {
    for (const l of this.listeners) {
      const lc = next.config.listeners.find((c) => c.name === l.config.name);
      if (!lc || lc.port !== l.config.port || lc.address !== l.config.address || (lc.tls === undefined) !== !l.tls) {
        this.logger.warn(
          { listener: l.config.name },
          'listener address, port or protocol changed: takes effect on restart',
        );
        continue;
      }
      if (lc.tls && l.certificates) {
        // Unchanged TLS settings: re-read the files, trust bundles included (SIGHUP is the fallback for missed file
        // events), without rebuilding client authentication or ending resumable sessions when nothing changed.
        if (isDeepStrictEqual(lc.tls, l.config.tls) && next.loaded.baseDir === old.loaded.baseDir)
          l.certificates.refresh();
        else l.certificates.update(lc.tls, next.loaded.baseDir);
      }
      (l as { config: ListenerConfig }).config = { ...lc, port: l.config.port };
    }
  }

  /**
   * Graceful stop: stop accepting, let in-flight requests finish (up to the drain deadline), close keep-alive
   * connections as their current response ends, then close everything.
   */
  async stop(deadlineMs = this.runtime.config.server.drain_timeout_ms): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    this.configWatcher?.close();
    // A reload that started before the drain finishes first (it installs no runtime once draining is set).
    await this.reloading?.catch(() => undefined);
    this.logger.info({ inflight: this.intake.inFlight, deadline_ms: deadlineMs }, 'draining');
    const closed = this.listeners.map((l) => new Promise<void>((resolve) => l.server.close(() => resolve())));
    for (const l of this.listeners) closeIdleConnections(l);
    await this.intake.whenIdle(deadlineMs);
    for (const l of this.listeners) closeAllConnections(l);
    // Relayed WebSocket connections still open at the deadline are cut (the server waits for their sockets).
    for (const t of this.tunnels) t.destroy();
    for (const l of this.listeners) l.certificates?.close();
    await Promise.all(closed);
    await this.adminListener.close();
    await this.adminApi.close();
    await this.runtime.close();
    for (const m of this.subsystems) await m.instance.close?.().catch(() => undefined);
    await this.vault.close();
    this.logger.info('stopped');
  }
}
