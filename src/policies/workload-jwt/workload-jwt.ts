/**
 * workload-jwt: the gateway authenticates itself to the upstream with its own JWT-SVID, fetched from the SPIFFE
 * Workload API (FetchJWTSVID) for the configured audience and reused until half of its lifetime has passed. The
 * hot path is synchronous while the token is fresh; only a refresh waits for the agent.
 */
import type { PolicyDefinition, PolicyInstance } from '../../pipeline/policy.js';
import { problem } from '../../pipeline/problem.js';
import { WorkloadJwtSvidClient } from '../../workload-identity/workload-api/jwt-svid.js';
import { workloadJwtSchema, type WorkloadJwtConfig } from './schema.js';

export const workloadJwtPolicy: PolicyDefinition<WorkloadJwtConfig> = {
  name: 'workload-jwt',
  description: "Sends the gateway's own JWT-SVID (from the SPIFFE Workload API) to the upstream.",
  phase: 'transform',
  schema: workloadJwtSchema,
  create(config, setup): PolicyInstance {
    // Failures are logged by the client when its state changes (not per request), with the route they concern.
    const client = new WorkloadJwtSvidClient(
      config.audience,
      config.spiffe_id,
      setup.services.logger.child({ route: setup.routeName }),
      {
        ...(config.socket ? { address: config.socket } : {}),
        timeoutMs: config.timeout_ms,
      },
    );
    const header = config.header;
    const bearer = header === 'authorization';
    const unavailable = problem('bad-gateway', {
      detail: 'The gateway could not obtain its workload identity for this upstream.',
    });
    // The header pair sent upstream, built once per token and shared by every request that sends it.
    let pairToken: string | undefined;
    let pair: readonly [string, string] = [header, ''];
    const pairFor = (token: string): readonly [string, string] => {
      if (token !== pairToken) {
        pairToken = token;
        pair = [header, bearer ? `Bearer ${token}` : token];
      }
      return pair;
    };
    return {
      // The token it injects is short-lived and renewed here: a front proxy must not replay an old one.
      decisionReuse: 'per-request',
      onRequest(ctx) {
        const now = Date.now();
        const fresh = client.fresh(now);
        if (fresh !== undefined) {
          ctx.addUpstreamHeader(pairFor(fresh));
          return undefined;
        }
        // The agent failed a moment ago and there is no valid token: refuse without asking it again.
        if (client.backingOff(now)) return unavailable;
        return client.token(now).then(
          (token) => {
            ctx.addUpstreamHeader(pairFor(token));
            return undefined;
          },
          () => unavailable,
        );
      },
      close: () => client.close(),
    };
  },
};
