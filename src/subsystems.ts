/**
 * A subsystem owns a top-level config section and the services behind it (a store, verification providers, the audit
 * journal ...). It may also add built-in routes (webhooks, JWKS, hosted pages) that are compiled with the user's
 * routes. Subsystems start before policies are created, so policies can look their services up.
 */
import type { GatewayConfig, LoadedConfig } from './config/types.js';
import type { Services } from './pipeline/services.js';
import type { RouteConfig } from './config/types.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ServedCertificate } from './workload-identity/certificates.js';
import type { ProblemType } from './pipeline/problem.js';

/** The certificate a TLS listener serves now and when it last changed. */
export interface ListenerCertificateInfo {
  listener: string;
  notAfter: Date | undefined;
  served?: ServedCertificate | undefined;
  rotatedAt?: Date | undefined;
  rotations?: number;
}

export interface SubsystemStartContext {
  readonly loaded: LoadedConfig;
  readonly services: Services;
  /** Resolves a secret reference; the value must never be logged. */
  resolveSecret(ref: unknown): string;
  /** Base URL clients reach the gateway at (first listener), for callbacks and hosted pages. */
  readonly publicBaseUrl: string;
}

export interface UpstreamTargetInfo {
  upstream: string;
  target: string;
  inRotation: boolean;
}

/**
 * A started subsystem. Subsystems start once per gateway process (their state, such as a database pool or the audit
 * journal, must outlive config reloads); `reload` applies a changed config section.
 */
export interface RunningSubsystem {
  /** Routes to compile alongside the config's own, for the given config (called on start and on every reload). */
  routes?(config: GatewayConfig): RouteConfig[];
  /** Applies a new config; throw a ConfigError to refuse it (the old config keeps serving). */
  reload?(config: GatewayConfig): Promise<void>;
  /** Admin endpoints: path → handler, served on the admin listener. */
  adminHandlers?: Record<string, (req: IncomingMessage, res: ServerResponse) => void>;
  /**
   * Readiness of the subsystem's dependencies, for /readyz (reported under the subsystem's name). `detail` is shown to
   * whoever can reach the admin listener: it names what fails, never an error's text; `error` goes to the log.
   */
  ready?(): Promise<{ ok: boolean; detail?: Record<string, unknown>; error?: unknown }>;
  close?(): Promise<void>;
}

export interface Subsystem {
  readonly name: string;
  /** Top-level config key this subsystem owns, and its schema. */
  readonly section?: { key: string; schema: Record<string, unknown> };
  /** Problem types the subsystem's routes and services answer with beyond the core's, each documented with it. */
  readonly problems?: readonly ProblemType[];
  /**
   * Checks of its section that need no environment and no connection (cross-references, known types), run by
   * `kycgate validate` and before anything starts, with every other check: the problems, each `key.path: reason`.
   */
  check?(config: GatewayConfig): string[];
  start(config: GatewayConfig, ctx: SubsystemStartContext): Promise<RunningSubsystem>;
}
