/**
 * Classifying an incident from the store: every instance's figures summed, earlier incidents of the same cause
 * linked, the operator's input and override applied. Used by the detector (on every evaluation while the incident
 * is open, and when it closes), by `kycgate incidents` and by the admin API.
 */
import type { GatewayConfig } from '../../config/types.js';
import type { RouteInfo } from './conditions.js';
import { classify, type Classification } from './classify.js';
import { mergeMeasures } from './measures.js';
import type { IncidentsConfig } from './schema.js';
import type { Incident, IncidentStore } from './store.js';

const DAY = 86_400_000;

export function routeInfos(config: GatewayConfig): RouteInfo[] {
  return config.routes.map((r) => ({
    name: r.name,
    upstream: r.upstream,
    critical: r.critical === true,
    function: r.function,
  }));
}

export async function computeClassification(
  store: IncidentStore,
  incident: Incident,
  config: IncidentsConfig,
  routes: readonly RouteInfo[],
  now: number,
): Promise<Classification> {
  const figures = mergeMeasures(await store.measures(incident.id));
  const since = incident.detectedAt - config.classification.recurring_days * DAY;
  const earlier = await store.sameCause(incident.cause, since, incident.detectedAt);
  return classify(incident, figures, routes, config.classification, earlier, now);
}

/**
 * Classifies and records. The classification time is when it was first classified, or when it first became major
 * (the initial notification is due 4 h after that).
 */
export async function classifyAndRecord(
  store: IncidentStore,
  id: string,
  config: IncidentsConfig,
  routes: readonly RouteInfo[],
  now: number,
): Promise<{ incident: Incident; classification: Classification } | undefined> {
  const incident = await store.get(id);
  if (incident === undefined) return undefined;
  const c = await computeClassification(store, incident, config, routes, now);
  const wasMajor = incident.classification?.major === true;
  const at = incident.classifiedAt === undefined || (c.major && !wasMajor) ? now : incident.classifiedAt;
  await store.setClassification(id, c, at);
  return {
    incident: { ...incident, classification: c as unknown as Record<string, unknown>, classifiedAt: at },
    classification: c,
  };
}
