/**
 * The `incidents` subsystem: detection of ICT-related incidents from the signals the gateway measures, shared by
 * the instances through the store (docs/DORA.md). Registers the service `incidents` (the store and the detector)
 * for the admin API; off unless `incidents.enabled`.
 */
import os from 'node:os';
import { Gauge } from 'prom-client';
import type { Subsystem } from '../../subsystems.js';
import type { Store } from '../../store/store.js';
import { IncidentDetector } from './detector.js';
import { incidentsSchema, type IncidentsConfig } from './schema.js';
import { routeInfos } from './service.js';
import { IncidentStore } from './store.js';
import { ThirdPartyStore } from './third-parties.js';

export interface IncidentsService {
  store: IncidentStore;
  detector: IncidentDetector;
  config(): IncidentsConfig;
}

export const incidentsSubsystem: Subsystem = {
  name: 'incidents',
  section: { key: 'incidents', schema: incidentsSchema },
  async start(config, ctx) {
    let section = config.incidents as IncidentsConfig;
    if (!section.enabled) return {};
    const store = new IncidentStore(ctx.services.get<Store>('store'));
    await store.migrate();
    const thirdParties = new ThirdPartyStore(ctx.services.get<Store>('store'));
    await thirdParties.migrate();
    const detector = new IncidentDetector(
      {
        store,
        thirdParties,
        registry: ctx.services.metrics.registry,
        events: ctx.services.events,
        logger: ctx.services.logger.child({ component: 'incidents' }),
        instance: section.instance ?? `${os.hostname()}:${process.pid}`,
        redisUp: () => ctx.services.find<{ connected: boolean }>('redis')?.connected,
      },
      section,
      routeInfos(config),
    );
    ctx.services.register<IncidentsService>('incidents', { store, detector, config: () => section });
    ctx.services.metrics.get(
      'kycgate_incidents_open',
      (r) =>
        new Gauge({
          name: 'kycgate_incidents_open',
          help: 'Incident causes this instance sees now (each is one open incident shared by the instances).',
          registers: [r],
          collect() {
            this.set(detector.holding.length);
          },
        }),
    );
    const unsubscribe = ctx.services.events.subscribe(detector);
    detector.start();
    return {
      async reload(next) {
        section = next.incidents as IncidentsConfig;
        if (!section.enabled) ctx.services.logger.warn('incidents.enabled changed: takes effect on restart');
        detector.configure(section, routeInfos(next));
      },
      async close() {
        unsubscribe();
        await detector.close();
      },
    };
  },
};
