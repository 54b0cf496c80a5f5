/**
 * audit: hooks a route's response head into its audit record. Without it a record carries the response headers
 * the gateway's own policies set; with it, the final head including upstream headers. With `sync: true` (and
 * audit.durability: sync) the record is fsynced before the head is sent, so an answered request is never missing
 * from the journal after a crash. List it last on the route so it sees the head other policies produced.
 */
import type { PolicyDefinition } from '../../pipeline/policy.js';
import { ConfigError } from '../../config/load.js';
import type { AuditService } from '../../audit/subsystem.js';
import { auditPolicySchema, type AuditPolicyConfig } from './schema.js';

export const auditPolicy: PolicyDefinition<AuditPolicyConfig> = {
  name: 'audit',
  description: 'Records the response head in the audit record; optionally fsyncs the record before the answer is sent.',
  phase: 'transform',
  schema: auditPolicySchema,
  create(config, setup) {
    const service = setup.services.find<AuditService>('audit');
    const recorder = service?.recorder;
    if (recorder === undefined)
      throw new ConfigError([`routes.${setup.routeName}: the audit policy needs audit.enabled: true`]);
    if (config.sync && service!.durability !== 'sync')
      throw new ConfigError([`routes.${setup.routeName}: audit {sync: true} needs audit.durability: sync`]);
    const durable = config.sync;
    // Every request of an audited route is asked, so every one is on the record (never answered from a proxy cache).
    return { decisionReuse: 'per-request', onResponse: (ctx, head) => recorder.onResponseHead(ctx, head, durable) };
  },
};
