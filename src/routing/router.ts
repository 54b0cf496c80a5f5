/**
 * Route matching by host, method and path, compiled once per config into a find-my-way radix tree. Specificity
 * decides between overlapping routes: a static segment beats a parameter, which beats a wildcard; a route bound
 * to a host beats one that is not.
 */
import http from 'node:http';
import FindMyWay from 'find-my-way';
import type { Route } from '../pipeline/route.js';
import type { PolicyChain } from '../pipeline/chain.js';
import type { RequestContext } from '../pipeline/context.js';
import type { UpstreamGroup } from '../proxy/upstream.js';

/** A route as the server compiles it: the policy contract's Route, with its upstream group's pools and its policies. */
export interface CompiledRoute extends Route {
  readonly upstream: UpstreamGroup | undefined;
  readonly chain: PolicyChain;
}

/** A request context as the server holds it: it knows the compiled route, and so the route's policy chain. */
export type RoutedContext = RequestContext<CompiledRoute>;

export interface RouteMatchSpec {
  hosts?: string[];
  methods?: string[];
  /** find-my-way syntax: `/exact`, `/users/:id`, `/static/*`. */
  path?: string;
  /** Matches the prefix itself and everything below it. */
  prefix?: string;
}

export interface RouteMatch {
  route: CompiledRoute;
  params: Record<string, string | undefined>;
}

const ALL_METHODS = http.METHODS.filter((m) => m !== 'CONNECT');

function hostConstraint(host: string): string | RegExp {
  const lower = host.toLowerCase();
  if (!lower.startsWith('*.')) return lower;
  const rest = lower.slice(2).replace(/[.+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`^[^.]+\\.${rest}$`);
}

export class Router {
  private readonly tree = FindMyWay({
    caseSensitive: true,
    ignoreTrailingSlash: false,
    ignoreDuplicateSlashes: false,
    maxParamLength: 1000,
    allowUnsafeRegex: false,
  });

  add(match: RouteMatchSpec, route: CompiledRoute): void {
    const methods = match.methods && match.methods.length > 0 ? match.methods.map((m) => m.toUpperCase()) : ALL_METHODS;
    const paths: string[] = [];
    if (match.path !== undefined) paths.push(match.path);
    if (match.prefix !== undefined) {
      const prefix = match.prefix.replace(/\/+$/, '');
      paths.push(prefix === '' ? '/' : prefix, prefix + '/*');
    }
    const hosts = match.hosts && match.hosts.length > 0 ? match.hosts : [undefined];
    for (const host of hosts) {
      const options = host === undefined ? {} : { constraints: { host: hostConstraint(host) } };
      for (const path of paths) {
        try {
          this.tree.on(methods as FindMyWay.HTTPMethod[], path, options, () => undefined, route);
        } catch (err) {
          throw new Error(
            `route "${route.name}": path "${path}"${host ? ` on host "${host}"` : ''} cannot be added: ${(err as Error).message}`,
          );
        }
      }
    }
  }

  find(method: string, path: string, hostname: string): RouteMatch | undefined {
    const found = this.tree.find(method as FindMyWay.HTTPMethod, path, { host: hostname });
    if (found === null) return undefined;
    return { route: found.store as CompiledRoute, params: found.params };
  }
}
