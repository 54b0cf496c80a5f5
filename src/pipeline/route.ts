/**
 * What a policy sees of the route a request matched and of the upstream group it goes to. The server compiles
 * routes (server/runtime.ts, with their policy chains) and upstream groups (proxy/upstream.ts) that satisfy these
 * interfaces; the contract never imports them.
 */

/** An upstream group, as policies see it: a name they can reroute to (see `UpstreamDirectory`). */
export interface Upstream {
  readonly name: string;
}

/** Finds the upstream groups of the current configuration (service `upstreams`), for policies that reroute. */
export interface UpstreamDirectory {
  /** The group `name` with the given connect timeout, made once per configuration; throws for an unknown name. */
  groupFor(name: string, connectMs: number): Promise<Upstream>;
}

export interface RouteTimeouts {
  /** Upper bound for establishing the upstream connection. */
  connectMs: number;
  /** Upper bound from sending the request to receiving the response head. */
  headersMs: number;
  /** Upper bound between two chunks of the response body. */
  bodyIdleMs: number;
  /** Longest silence, both ways, of a relayed WebSocket connection (0: none). */
  websocketIdleMs: number;
}

/** A route of the configuration, compiled once: what it matched, where it forwards, and its policies. */
export interface Route {
  readonly name: string;
  /** Undefined for routes answered entirely by policies (static responses, webhooks ...). */
  readonly upstream: Upstream | undefined;
  readonly maxBodyBytes: number;
  readonly timeouts: RouteTimeouts;
  /** Send the client's Host upstream instead of the target's. */
  readonly preserveHost: boolean;
  /** Path prefix removed before forwarding ('' for none). */
  readonly stripPrefix: string;
  /** WebSocket handshakes are relayed to the upstream (config `websocket`). */
  readonly websocket: boolean;
  /** The route serves a critical or important function (DORA): no fault is injected on it unless allowed. */
  readonly critical: boolean;
  /** The business function it supports (config `function`), for incident classification. */
  readonly function: string | undefined;
}

/**
 * What the server keeps on a request about the compiled configuration it started on: released when the exchange
 * ends, so a configuration retired by a reload closes once its last request is done. Opaque to policies.
 */
export interface RequestScope {
  release(): void;
  /** Whether this configuration writes access-log lines. */
  readonly accessLog: boolean;
}
