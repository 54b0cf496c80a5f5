/**
 * workload-jwt: the gateway authenticates itself to the upstream with its own JWT-SVID, fetched from the SPIFFE
 * Workload API (FetchJWTSVID) for the configured audience and reused until half of its lifetime has passed. The
 * hot path is synchronous while the token is fresh; only a refresh waits for the agent.
 */
import type { PolicyDefinition, PolicyInstance } from '../../pipeline/policy.js';
import { problem } from '../../errors/problem.js';
import { WorkloadJwtSvidClient } from '../../identity/workload-api/jwt-svid.js';
import { workloadJwtSchema, type WorkloadJwtConfig } from './schema.js';

export const workloadJwtPolicy: PolicyDefinition<WorkloadJwtConfig> = {
  name: 'workload-jwt',
  description: 'Sends the gateway\'s own JWT-SVID (from the SPIFFE Workload API) to the upstream.',
  phase: 'transform',
  schema: workloadJwtSchema,
  create(config, setup): PolicyInstance {
    const client = new WorkloadJwtSvidClient(config.audience, config.spiffe_id, setup.services.logger, {
      ...(config.socket ? { address: config.socket } : {}),
      timeoutMs: config.timeout_ms,
    });
    const header = config.header;
    const bearer = header === 'authorization';
    const unavailable = problem('bad-gateway', { detail: 'The gateway could not obtain its workload identity for this upstream.' });
    return {
      onRequest(ctx) {
        const fresh = client.fresh();
        if (fresh !== undefined) {
          ctx.setUpstreamHeader(header, bearer ? `Bearer ${fresh}` : fresh);
          return undefined;
        }
        return client.token().then(
          (token) => {
            ctx.setUpstreamHeader(header, bearer ? `Bearer ${token}` : token);
            return undefined;
          },
          (err: Error) => {
            setup.services.logger.warn({ route: setup.routeName, reason: err.message }, 'no JWT-SVID for the upstream');
            return unavailable;
          },
        );
      },
      close: () => client.close(),
    };
  },
};
