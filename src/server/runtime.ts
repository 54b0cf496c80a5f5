/**
 * A Runtime is one validated config compiled for serving: the route tree, upstream pools, policy instances and
 * subsystem services. Requests capture the runtime they started on, so a reload swaps in a new Runtime while
 * in-flight requests finish on the old one, which is closed once they are done.
 */
import { AddressList } from '../shared/address-list.js';
import type { Logger } from 'pino';
import { PolicyChain, type ChainEntry } from '../pipeline/chain.js';
import type { PolicyDefinition } from '../pipeline/policy.js';
import type { RequestScope, UpstreamDirectory } from '../pipeline/route.js';
import type { Services } from '../pipeline/services.js';
import { StripRules } from '../proxy/headers.js';
import type { PathRules } from './path.js';
import { UpstreamGroup } from '../proxy/upstream.js';
import { Router, type CompiledRoute } from '../routing/router.js';
import type { RunningSubsystem, UpstreamTargetInfo } from '../subsystems.js';
import { ConfigError } from '../config/load.js';
import type { GatewayConfig, LoadedConfig, PolicyConfigEntry, RouteConfig } from '../config/types.js';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { spiffeUpstreamConnector } from '../workload-identity/upstream-spiffe.js';

export interface CompileEnv {
  logger: Logger;
  dataDir: string;
  policies: readonly PolicyDefinition[];
  /** Services shared by every runtime of this process (subsystems registered theirs at start). */
  services: Services;
  /** Started subsystems, whose routes are compiled with the config's own. */
  subsystems: readonly RunningSubsystem[];
  /** URL of the embedded echo service, for `builtin:echo` targets. */
  builtinEchoUrl: () => Promise<string>;
}

/** Log lines of upstream health changes (proxy/upstream.ts). */
const HEALTH_MESSAGES = {
  ejected: 'upstream target taken out of rotation after failed exchanges',
  restored: 'upstream target back in rotation, on probation',
  unhealthy: 'upstream target failed its health probes: out of rotation',
  healthy: 'upstream target passed its health probes: back in rotation',
} as const;

const DEFAULT_TIMEOUTS = { connect_ms: 5000, headers_ms: 30000, body_idle_ms: 30000, websocket_idle_ms: 300000 };

export class Runtime implements RequestScope {
  inflight = 0;
  private retired = false;
  private onIdle: (() => void) | undefined;

  constructor(
    readonly loaded: LoadedConfig,
    readonly router: Router,
    readonly rules: StripRules,
    readonly trustedProxies: AddressList | undefined,
    readonly routes: readonly CompiledRoute[],
    readonly groups: readonly UpstreamGroup[],
    readonly services: Services,
    /** How request paths are checked beyond the fixed rules (server.path_semicolons). */
    readonly pathRules: PathRules,
  ) {}

  get config(): GatewayConfig {
    return this.loaded.config;
  }

  get accessLog(): boolean {
    return this.loaded.config.log.access;
  }

  isTrustedProxy(address: string): boolean {
    return this.trustedProxies?.has(address) === true;
  }

  /** Every target of this config's upstream groups and whether it is in rotation (a group compiled twice counts as out when either copy has it out). */
  upstreamTargets(): UpstreamTargetInfo[] {
    const byKey = new Map<string, UpstreamTargetInfo>();
    for (const g of this.groups) {
      for (const { target, inRotation } of g.rotation()) {
        const key = g.name + '\n' + target.url;
        const seen = byKey.get(key);
        if (seen === undefined) byKey.set(key, { upstream: g.name, target: target.url, inRotation });
        else seen.inRotation &&= inRotation;
      }
    }
    return [...byKey.values()];
  }

  release(): void {
    if (--this.inflight === 0 && this.retired) this.onIdle?.();
  }

  /** Closes pools and policies once the last in-flight request on this runtime has finished. */
  retire(): Promise<void> {
    this.retired = true;
    const idle = this.inflight === 0 ? Promise.resolve() : new Promise<void>((resolve) => (this.onIdle = resolve));
    return idle.then(() => this.close());
  }

  async close(): Promise<void> {
    await Promise.all([...this.routes.map((r) => r.chain.close()), ...this.groups.map((g) => g.close())]);
  }
}

/** Trusted proxy addresses and ranges; `where` names the config key in errors. */
export function parseTrustedProxies(
  list: readonly string[],
  where = 'server.trusted_proxies',
): AddressList | undefined {
  if (list.length === 0) return undefined;
  try {
    return new AddressList(list, where);
  } catch (err) {
    throw new ConfigError([(err as Error).message]);
  }
}

function policyName(entry: PolicyConfigEntry): string {
  return Object.keys(entry)[0]!;
}

export async function compileRuntime(loaded: LoadedConfig, env: CompileEnv): Promise<Runtime> {
  const config = loaded.config;
  const services = env.services;
  const trusted = parseTrustedProxies(config.server.trusted_proxies);
  const groups: UpstreamGroup[] = [];
  const compiled: CompiledRoute[] = [];
  try {
    const subsystemRoutes: RouteConfig[] = [];
    for (const m of env.subsystems) if (m.routes) subsystemRoutes.push(...m.routes(config));

    const definitions = new Map(env.policies.map((p) => [p.name, p]));
    const upstreamNames = new Set(Object.keys(config.upstreams));
    const groupCache = new Map<string, UpstreamGroup>();
    const groupFor = async (name: string, connectMs: number): Promise<UpstreamGroup> => {
      const key = `${name}|${connectMs}`;
      let group = groupCache.get(key);
      if (group) return group;
      const u = config.upstreams[name];
      if (!u) throw new ConfigError([`no upstream named "${name}"`]);
      const targets = [];
      for (const t of u.targets)
        targets.push({ url: t.url === 'builtin:echo' ? await env.builtinEchoUrl() : t.url, weight: t.weight });
      const tls = u.tls
        ? {
            ...(u.tls.ca ? { ca: readFileSync(path.resolve(loaded.baseDir, u.tls.ca), 'utf8') } : {}),
            ...(u.tls.servername ? { servername: u.tls.servername } : {}),
            rejectUnauthorized: u.tls.reject_unauthorized,
            minVersion: 'TLSv1.2' as const,
          }
        : undefined;
      if (u.http2 && u.tls?.spiffe)
        throw new ConfigError([`upstream "${name}": http2 cannot be combined with tls.spiffe`]);
      const connector = u.tls?.spiffe
        ? await spiffeUpstreamConnector(u.tls.spiffe, loaded.baseDir, env.logger, connectMs, u.tls.servername)
        : undefined;
      group = new UpstreamGroup(name, targets, u.balance, {
        connections: u.connections,
        keepAliveTimeoutMs: u.keep_alive_timeout_ms,
        connectTimeoutMs: connectMs,
        connectRetries: u.connect_retries,
        idempotentRetries: u.idempotent_retries,
        http2: u.http2,
        ...(u.active_health
          ? {
              active: {
                path: u.active_health.path,
                intervalMs: u.active_health.interval_ms,
                timeoutMs: u.active_health.timeout_ms,
                unhealthyAfter: u.active_health.unhealthy_after,
                healthyAfter: u.active_health.healthy_after,
              },
            }
          : {}),
        health: { consecutiveFailures: u.passive_health.consecutive_failures, ejectMs: u.passive_health.eject_ms },
        onHealthChange: (target, change, detail) => {
          const data = { upstream: name, target: target.url, reason: detail };
          if (change === 'ejected' || change === 'unhealthy') env.logger.warn(data, HEALTH_MESSAGES[change]);
          else env.logger.info(data, HEALTH_MESSAGES[change]);
          services.events.emit({ type: `upstream.${change}`, outcome: change, data });
        },
        ...(tls ? { tls } : {}),
        ...(connector ? { connector } : {}),
      });
      groupCache.set(key, group);
      groups.push(group);
      return group;
    };
    services.set<UpstreamDirectory>('upstreams', { groupFor });

    const router = new Router();
    const injected = new Set<string>();
    const allRoutes = [...config.routes, ...subsystemRoutes];
    for (const route of allRoutes) {
      const own = new Set(route.policies.map(policyName));
      const disabled = new Set(route.disable_default_policies ?? []);
      const inherited = config.defaults.policies.filter((p) => !own.has(policyName(p)) && !disabled.has(policyName(p)));
      const entries: ChainEntry[] = [];
      for (const entry of [...inherited, ...route.policies]) {
        const name = policyName(entry);
        const definition = definitions.get(name);
        if (!definition) throw new ConfigError([`route "${route.name}": unknown policy "${name}"`]);
        const instance = await definition.create(entry[name], {
          routeName: route.name,
          upstreamNames,
          services,
          baseDir: loaded.baseDir,
        });
        for (const h of instance.injectsHeaders ?? []) injected.add(h);
        entries.push({ name, definition, instance });
      }
      const timeouts = { ...DEFAULT_TIMEOUTS, ...config.defaults.timeouts, ...(route.timeouts ?? {}) };
      const compiledRoute: CompiledRoute = {
        name: route.name,
        upstream: route.upstream === undefined ? undefined : await groupFor(route.upstream, timeouts.connect_ms),
        chain: new PolicyChain(entries, (ctx, policy, err) =>
          env.logger.error({ req_id: ctx.id, route: route.name, policy, err }, 'policy failed'),
        ),
        maxBodyBytes: route.max_body_bytes ?? config.defaults.max_body_bytes,
        timeouts: {
          connectMs: timeouts.connect_ms,
          headersMs: timeouts.headers_ms,
          bodyIdleMs: timeouts.body_idle_ms,
          websocketIdleMs: timeouts.websocket_idle_ms,
        },
        preserveHost: route.preserve_host ?? false,
        websocket: route.websocket ?? false,
        critical: route.critical ?? false,
        function: route.function,
        stripPrefix: route.strip_prefix ?? '',
      };
      compiled.push(compiledRoute);
      router.add(route.match, compiledRoute);
    }
    const pathRules: PathRules = { refuseSemicolons: config.server.path_semicolons === 'refuse' };
    return new Runtime(
      loaded,
      router,
      new StripRules(injected, config.server.underscored_headers),
      trusted,
      compiled,
      groups,
      services,
      pathRules,
    );
  } catch (err) {
    await Promise.all([...compiled.map((r) => r.chain.close()), ...groups.map((g) => g.close())]).catch(
      () => undefined,
    );
    if (err instanceof ConfigError) throw err;
    throw new ConfigError([(err as Error).message]);
  }
}
