/**
 * The `kyc` subsystem: starts the KYC service from the `kyc` section (after `store` and `redis`), applies its
 * migrations, and adds two built-in routes: `POST /webhooks/:provider` (answered by the kyc-webhook policy) and
 * `GET /.well-known/jwks.json` (the assertion's public keys, answered by kyc-jwks). Without a `kyc` section it
 * does nothing.
 */
import type { Subsystem } from '../subsystems.js';
import type { GatewayConfig, RouteConfig } from '../config/types.js';
import { ConfigError } from '../config/load.js';
import type { Store } from '../store/store.js';
import type { StoreOutage } from '../store/outage.js';
import { invalidations } from '../shared/invalidation.js';
import { kycSchema, type KycConfig } from './schema.js';
import { buildSetup, checkKyc, retireSetup, type SetupEnv } from './setup.js';
import { KycService } from './service.js';
import { VerificationStore } from './verification-store.js';
import { ProviderTypes } from './providers.js';
import type { ProviderType } from '../providers/provider.js';
import { registerKycMetrics } from './metrics.js';
import { SubjectBlocks } from './blocks.js';

/** Webhook bodies are small JSON documents; anything larger is refused before it is read. */
const WEBHOOK_MAX_BODY_BYTES = 1_048_576;

function kycRoutes(config: GatewayConfig): RouteConfig[] {
  const kyc = config.kyc as KycConfig | undefined;
  if (!kyc) return [];
  // Default policies (authentication, rate limits meant for API clients) do not apply: providers authenticate
  // with signatures, and the JWKS is public.
  const defaults = config.defaults.policies.map((p) => Object.keys(p)[0]!);
  return [
    {
      name: 'kyc-webhooks',
      match: { path: kyc.webhook_path, methods: ['POST'] },
      preserve_host: false,
      max_body_bytes: WEBHOOK_MAX_BODY_BYTES,
      policies: [{ 'kyc-webhook': {} }],
      disable_default_policies: defaults,
    },
    {
      name: 'kyc-jwks',
      match: { path: kyc.jwks_path, methods: ['GET', 'HEAD'] },
      preserve_host: false,
      policies: [{ 'kyc-jwks': {} }],
      disable_default_policies: defaults,
    },
  ];
}

/** The KYC subsystem, knowing the provider types in `providers` (src/bundled.ts has the bundled ones). */
export function kycSubsystem(providers: readonly ProviderType[]): Subsystem {
  const providerTypes = new ProviderTypes(providers);
  return {
    name: 'kyc',
    section: { key: 'kyc', schema: kycSchema },
    check(config) {
      const dialect = (config.store as { driver?: string } | undefined)?.driver === 'postgres' ? 'postgres' : 'sqlite';
      return checkKyc(config.kyc as KycConfig, dialect, providerTypes);
    },
    async start(config, ctx) {
      // Registered with or without a kyc section: the series are served (empty) either way.
      const stopMetrics = registerKycMetrics(ctx.services);
      const section = config.kyc as KycConfig | undefined;
      if (!section) {
        return {
          close: async () => stopMetrics(),
          async reload(next) {
            if (next.kyc)
              throw new ConfigError(['kyc: the section was added while running; restart the gateway to start it']);
          },
        };
      }
      const store = ctx.services.get<Store>('store');
      const records = new VerificationStore(store);
      await records.migrate();
      const env: SetupEnv = {
        resolveSecret: ctx.resolveSecret,
        dataDir: ctx.services.dataDir,
        publicBaseUrl: ctx.publicBaseUrl,
        logger: ctx.services.logger,
        services: ctx.services,
        dialect: store.dialect,
        providerTypes,
      };
      const setup = await buildSetup(section, env, undefined);
      const service = new KycService(setup, records, {
        logger: ctx.services.logger,
        events: ctx.services.events,
        redis: invalidations(ctx.services),
        stale: ctx.services.find<StoreOutage>('store-outage'),
      });
      ctx.services.register('kyc', service);
      // Subjects an operator blocked (the admin API), refused by every kyc-gate.
      const blocks = new SubjectBlocks(store, ctx.services.logger, invalidations(ctx.services));
      await blocks.start();
      ctx.services.register('kyc-blocks', blocks);
      // Events stored before a crash or during an outage are applied now, not at the first interval.
      void service.reconcile();
      return {
        routes: kycRoutes,
        adminHandlers: {
          // Webhook events kept because their session is unknown (ids only, no payload), for reconciliation.
          '/kyc/unmatched-webhooks': (_req, res) => {
            void records.unmatchedEvents(500).then(
              (events) => {
                res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
                res.end(JSON.stringify({ events }));
              },
              () => {
                res.writeHead(503, { 'content-type': 'application/json' });
                res.end('{"error":"store unavailable"}');
              },
            );
          },
        },
        async reload(next) {
          const nextSection = next.kyc as KycConfig | undefined;
          if (!nextSection)
            throw new ConfigError(['kyc: the section cannot be removed while running; restart the gateway']);
          const built = await buildSetup(nextSection, env, service.setup);
          const old = service.replaceSetup(built);
          await retireSetup(old, built);
        },
        async ready() {
          // An open provider breaker does not make the gateway unready: verified subjects keep passing.
          const providers: Record<string, string> = {};
          for (const [name, p] of service.setup.providers) providers[name] = p.health.state;
          return { ok: true, detail: { providers, cached_subjects: service.cache.size } };
        },
        async close() {
          stopMetrics();
          blocks.close();
          await service.close();
          await retireSetup(service.setup, undefined);
        },
      };
    },
  };
}
