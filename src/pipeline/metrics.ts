/**
 * The metrics registry every feature registers its own metrics in (Prometheus, served at /metrics on the admin
 * listener). A policy's or subsystem's metrics are defined in its folder and made through `get`: the first call makes
 * and registers the metric, later ones (a policy re-created by a config reload, a second route) get the same one.
 */
import { Counter, Registry } from 'prom-client';

export class Metrics {
  /** The process's registry (never prom-client's global one). */
  readonly registry = new Registry();

  /** The metric named `name`, made by `make` (which must register it in `registry`) the first time it is asked for. */
  get<M>(name: string, make: (registry: Registry) => M): M {
    const found = this.registry.getSingleMetric(name);
    if (found !== undefined) return found as unknown as M;
    const made = make(this.registry);
    if (this.registry.getSingleMetric(name) === undefined)
      throw new Error(`metric ${name} was made without being registered`);
    return made;
  }

  /** The counter `name` with `labelNames`, made and registered the first time it is asked for. */
  counter<L extends string>(name: string, help: string, labelNames: readonly L[] = []): Counter<L> {
    return this.get(name, (registry) => new Counter({ name, help, labelNames, registers: [registry] }));
  }
}
