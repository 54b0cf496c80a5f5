/** Handlers: incidents (list, show, classify, report), through the incidents subsystem's store. */
import { parseDuration } from '../../auth/api-keys/format.js';
import { ConfigError } from '../../config/load.js';
import type { ReportKind } from '../../resilience/incidents/deadlines.js';
import {
  classifyIncident,
  type ClassifyInput,
  type IncidentContext,
  incidentReport,
  incidentSummary,
  NotFound,
  showIncident,
} from '../../resilience/incidents/operations.js';
import { routeInfos } from '../../resilience/incidents/service.js';
import type { IncidentsService } from '../../resilience/incidents/subsystem.js';
import { thirdPartyFigures } from '../../resilience/incidents/third-parties.js';
import type { Store } from '../../store/store.js';
import { ADMIN_INVALID_REQUEST } from '../problems.js';
import { type Call, type Handler, notConfigured, notFound, refuse } from '../call.js';

function context(call: Call): IncidentContext {
  const service = call.api.services.find<IncidentsService>('incidents');
  if (service === undefined) return notConfigured('Incident detection is off (incidents.enabled).');
  return {
    store: service.store,
    config: service.config(),
    routes: routeInfos(call.api.sources.config()),
    now: Date.now(),
  };
}

async function guarded<T>(id: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof NotFound) return notFound(`Incident ${id}`);
    if (err instanceof ConfigError) return refuse(ADMIN_INVALID_REQUEST, err.problems.join('; '));
    throw err;
  }
}

export const INCIDENT_HANDLERS: Record<string, Handler> = {
  async listIncidents(call) {
    const ctx = context(call);
    const since = ctx.now - parseDuration(String(call.query.since ?? '30d'));
    return { body: { items: (await ctx.store.list(since, ctx.now + 1)).map(incidentSummary) } };
  },

  async getIncident(call) {
    const ctx = context(call);
    const id = call.params.id!;
    return { body: await guarded(id, () => showIncident(ctx, id)) };
  },

  async classifyIncident(call) {
    const ctx = context(call);
    const id = call.params.id!;
    const input = call.body as ClassifyInput;
    const detail = await guarded(id, () => classifyIncident(ctx, id, input, call.principal.actor));
    call.audit({
      incident: id,
      major: detail.classification.major,
      override: input.major ?? undefined,
      justification: input.justification,
    });
    return { body: detail };
  },

  async incidentReport(call) {
    const ctx = context(call);
    const id = call.params.id!;
    const b = call.body as Record<string, unknown> & { kind: ReportKind; submitted?: boolean };
    const incident = await ctx.store.get(id);
    if (incident === undefined) return notFound(`Incident ${id}`);
    const report = await guarded(id, async () =>
      incidentReport(ctx, id, {
        kind: b.kind,
        fields: {
          description: b.description as string | undefined,
          root_cause: b.root_cause as string | undefined,
          actions: b.actions as string | undefined,
          bcp_activated: b.bcp_activated as boolean | undefined,
          resolved_at: b.resolved_at as string | undefined,
          lessons: b.lessons as string | undefined,
          communication: b.communication as string | undefined,
        },
        submitted: b.submitted === true,
        by: call.principal.actor,
        thirdParties: await thirdPartyFigures(
          call.api.services.get<Store>('store'),
          ctx.config,
          incident.detectedAt,
          incident.closedAt ?? ctx.now,
        ),
      }),
    );
    call.audit({ incident: id, report: b.kind, submitted: b.submitted === true });
    return { body: report };
  },
};
