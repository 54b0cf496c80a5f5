/**
 * The policy interface. A policy is one folder under src/policies/<name>/ that exports a PolicyDefinition:
 * its config schema, the phase it runs in, and a factory that turns validated config into an instance.
 * The core never knows what a policy does; it only runs phases in order.
 */
import type { Problem, ProblemType } from './problem.js';
import type { RequestContext } from './context.js';
import type { ClusterHub } from './cluster.js';
import type { Services } from './services.js';

/**
 * Request phases, in the order they run. Rate limits (protect) run before the KYC gate so that a flood of
 * unverified requests is throttled before it can start verification sessions with a paid provider.
 */
export const REQUEST_PHASES = ['admit', 'authenticate', 'authorize', 'protect', 'gate', 'transform'] as const;
export type RequestPhase = (typeof REQUEST_PHASES)[number];

/** A complete answer made by the gateway instead of forwarding (static responses, webhooks, JWKS ...). */
export interface Reply {
  readonly status: number;
  readonly headers?: Record<string, string | number | string[]>;
  readonly body?: string | Buffer;
}

// biome-ignore lint/suspicious/noConfusingVoidType: a hook that continues may simply return nothing
export type PolicyResult = undefined | void | Problem | Reply;

/** Response head as it will be sent to the client; onResponse hooks may edit `headers` in place. */
export interface ResponseHead {
  status: number;
  /** Lower-case header name to value. */
  headers: Map<string, string | string[]>;
  /** True when the answer comes from the upstream, false when the gateway made it. */
  fromUpstream: boolean;
  /**
   * Set by an onResponse hook that must not let this answer out (the `audit` policy when a durable record of it
   * could not be written): the core sends this problem instead, and an upstream body is discarded. Honoured for
   * upstream answers and the gateway's own replies, the answers that can be a success.
   */
  withhold?: Problem;
}

/**
 * A rewrite of upstream response bodies (masking, mapping). The core buffers a response only when a route has such
 * a policy AND the response's media type is one it asks for; every other response streams through unchanged.
 */
export interface ResponseBodyTransform {
  /** Largest body buffered for transformation. */
  readonly maxBytes: number;
  /** Whether responses of this media type (lower-case `type/subtype`, no parameters; '' when absent) are wanted. */
  wants(mediaType: string): boolean;
  /**
   * What to do with a wanted response that cannot be transformed (larger than maxBytes, content-encoded, or the
   * transform threw): `pass` sends it unchanged, `block` answers 502 response-unprocessable instead.
   */
  readonly onFailure: 'pass' | 'block';
  /** Returns the new body. May edit `head.headers` (content-length is set by the core afterwards). */
  transform(ctx: RequestContext, body: Buffer, head: ResponseHead): Buffer;
}

/**
 * Whether a front proxy may reuse a policy's decision for later requests (decision mode, `cache.allow_max_age_s` and
 * `deny_max_age_s`): `reusable` when the decision depends only on what the proxy's cache key and Vary hold (the
 * request line, host, credentials, and headers named with ctx.varyOn), for no longer than the bounds the policy gives
 * with ctx.limitCacheTtl / limitCacheUntil; `per-request` when every request must be asked (counters, quotas,
 * request bodies, client addresses).
 */
export type DecisionReuse = 'reusable' | 'per-request';

export interface PolicyInstance {
  /**
   * How a front proxy may reuse this policy's decision. A policy that declares nothing makes every decision on its
   * route per-request: reuse is something a policy opts into, never a default.
   */
  readonly decisionReuse?: DecisionReuse;
  /** Runs in the definition's phase. Return nothing to continue, a Problem or Reply to answer now. */
  onRequest?(ctx: RequestContext): PolicyResult | Promise<PolicyResult>;
  /** Edits the response head before it is written to the client. Synchronous: it is on the hot path. */
  onResponse?(ctx: RequestContext, head: ResponseHead): void;
  /** Rewrites upstream response bodies of the media types it wants (see ResponseBodyTransform). */
  readonly transformResponseBody?: ResponseBodyTransform;
  /** Runs once the exchange has ended (answered, failed or aborted). Must not throw or block. */
  onComplete?(ctx: RequestContext): void;
  /**
   * Header names (lower case; a trailing `*` means a prefix) that this policy injects upstream. The core strips
   * them from every incoming request before any policy runs, so a client can never forge them.
   */
  readonly injectsHeaders?: readonly string[];
  /** Releases timers, connections and the like when the config that made this instance is retired. */
  close?(): void | Promise<void>;
}

export interface PolicySetup {
  /** Name of the route the instance belongs to, or `*` for a global default. */
  readonly routeName: string;
  /** Upstream names known to the config (for policies that reroute). */
  readonly upstreamNames: ReadonlySet<string>;
  readonly services: Services;
  /** Directory relative file paths in the policy's config resolve against (the config file's directory). */
  readonly baseDir?: string;
}

// biome-ignore lint/suspicious/noExplicitAny: lists hold definitions of different configs; each checks its own
export interface PolicyDefinition<Config = any> {
  /** The key used in config: `policies: [{ <name>: {...} }]`. */
  readonly name: string;
  readonly description: string;
  readonly phase: RequestPhase;
  /** JSON Schema of the policy's config; `description`s document each key. Defaults are filled in. */
  readonly schema: Record<string, unknown>;
  /** Problem types the policy answers with beyond the core's (pipeline/problem.ts), each documented with it. */
  readonly problems?: readonly ProblemType[];
  /**
   * Runs once per gateway process, before any configuration is compiled: registers the metrics and event
   * listeners the policy owns (its instances come and go with reloads; these stay).
   */
  init?(services: Services): void;
  /**
   * Runs once in the supervisor when the gateway runs several workers (`server.workers`): the policy's state that
   * must be exact across workers (e.g. local rate-limit counters) lives here, reached through the hub.
   */
  primary?(hub: ClusterHub): void;
  create(config: Config, setup: PolicySetup): PolicyInstance | Promise<PolicyInstance>;
}

export function isReply(value: unknown): value is Reply {
  return (
    typeof value === 'object' && value !== null && typeof (value as Reply).status === 'number' && !('type' in value)
  );
}
