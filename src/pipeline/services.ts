/**
 * Shared services (logger, store, verification providers, audit ...) that subsystems create from their top-level config
 * section and policies look up by name. It keeps policies decoupled from each other and from the core: a policy
 * asks for "kyc" and gets whatever the kyc subsystem registered, or a clear start-up error.
 */
import type { Logger } from 'pino';
import { EventBus } from './events.js';
import { Metrics } from './metrics.js';

export class Services {
  readonly logger: Logger;
  readonly dataDir: string;
  /** Events from policies and subsystems; the audit trail and metrics listen here. */
  readonly events = new EventBus();
  /** Metrics every feature registers its own in (served at /metrics). */
  readonly metrics = new Metrics();
  private readonly entries = new Map<string, unknown>();

  constructor(logger: Logger, dataDir: string) {
    this.logger = logger;
    this.dataDir = dataDir;
  }

  register<T>(name: string, service: T): T {
    if (this.entries.has(name)) throw new Error(`service "${name}" is registered twice`);
    this.entries.set(name, service);
    return service;
  }

  /** Replaces a service that a runtime re-creates on every config reload (e.g. the upstream registry). */
  set<T>(name: string, service: T): T {
    this.entries.set(name, service);
    return service;
  }

  /** Returns the named service or throws a configuration error naming what is missing. */
  get<T>(name: string): T {
    const service = this.entries.get(name);
    if (service === undefined) throw new Error(`service "${name}" is not configured`);
    return service as T;
  }

  find<T>(name: string): T | undefined {
    return this.entries.get(name) as T | undefined;
  }
}
