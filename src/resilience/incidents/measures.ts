/**
 * The figures an instance measures while an incident is open, kept per instance in the store and summed when the
 * incident is classified: requests and failures per affected route, downtime per route, distinct clients affected
 * (consumer names and pseudonymous subjects of failed requests, bounded), and what was lost or refused meanwhile.
 */

/** Most distinct clients kept per incident and instance; beyond, they are counted, not named. */
export const MAX_CLIENTS = 5000;

export interface RouteMeasures {
  requests: number;
  failed: number;
  downtime_ms: number;
}

export interface Measures {
  first_seen: number;
  last_seen: number;
  routes: Record<string, RouteMeasures>;
  consumers: string[];
  subjects: string[];
  /** Distinct clients seen beyond MAX_CLIENTS (an upper bound when instances are summed). */
  clients_overflow: number;
  audit_write_errors: number;
  audit_dropped: number;
  webhook_store_failures: number;
  auth_failures: number;
  webhook_refusals: number;
  provider_calls: number;
  provider_failed: number;
}

export function emptyMeasures(at: number): Measures {
  return {
    first_seen: at,
    last_seen: at,
    routes: {},
    consumers: [],
    subjects: [],
    clients_overflow: 0,
    audit_write_errors: 0,
    audit_dropped: 0,
    webhook_store_failures: 0,
    auth_failures: 0,
    webhook_refusals: 0,
    provider_calls: 0,
    provider_failed: 0,
  };
}

export interface MergedMeasures {
  first_seen: number;
  last_seen: number;
  instances: string[];
  routes: Record<string, RouteMeasures>;
  consumers: number;
  subjects: number;
  audit_write_errors: number;
  audit_dropped: number;
  webhook_store_failures: number;
  auth_failures: number;
  webhook_refusals: number;
  provider_calls: number;
  provider_failed: number;
}

/**
 * Sums the instances' figures: counts add up; distinct clients are a union of the names (plus what overflowed);
 * a route's downtime is the longest any instance saw (instances see the same outage at the same time).
 */
export function mergeMeasures(list: ReadonlyArray<{ instance: string; figures: Measures }>): MergedMeasures {
  const consumers = new Set<string>();
  const subjects = new Set<string>();
  let overflow = 0;
  const out: MergedMeasures = {
    first_seen: Number.POSITIVE_INFINITY,
    last_seen: 0,
    instances: [],
    routes: {},
    consumers: 0,
    subjects: 0,
    audit_write_errors: 0,
    audit_dropped: 0,
    webhook_store_failures: 0,
    auth_failures: 0,
    webhook_refusals: 0,
    provider_calls: 0,
    provider_failed: 0,
  };
  for (const { instance, figures: m } of list) {
    out.instances.push(instance);
    out.first_seen = Math.min(out.first_seen, m.first_seen);
    out.last_seen = Math.max(out.last_seen, m.last_seen);
    for (const [name, r] of Object.entries(m.routes)) {
      const o = (out.routes[name] ??= { requests: 0, failed: 0, downtime_ms: 0 });
      o.requests += r.requests;
      o.failed += r.failed;
      o.downtime_ms = Math.max(o.downtime_ms, r.downtime_ms);
    }
    for (const c of m.consumers) consumers.add(c);
    for (const s of m.subjects) subjects.add(s);
    overflow += m.clients_overflow;
    out.audit_write_errors += m.audit_write_errors;
    out.audit_dropped += m.audit_dropped;
    out.webhook_store_failures += m.webhook_store_failures;
    out.auth_failures += m.auth_failures;
    out.webhook_refusals += m.webhook_refusals;
    out.provider_calls += m.provider_calls;
    out.provider_failed += m.provider_failed;
  }
  if (list.length === 0) out.first_seen = 0;
  out.consumers = consumers.size;
  out.subjects = subjects.size + overflow;
  return out;
}
