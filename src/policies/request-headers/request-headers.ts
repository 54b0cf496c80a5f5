/**
 * request-headers: sets and removes headers on the request sent upstream and on the response sent back.
 * Names are compiled to lower case once; applying them is a loop over a few pairs.
 */
import type { PolicyDefinition, PolicyInstance } from '../../pipeline/policy.js';
import { requestHeadersSchema, type RequestHeadersConfig } from './schema.js';

export const requestHeadersPolicy: PolicyDefinition<RequestHeadersConfig> = {
  name: 'request-headers',
  description: 'Sets and removes request headers sent upstream and response headers sent to the client.',
  phase: 'transform',
  schema: requestHeadersSchema,
  create(config): PolicyInstance {
    const set = Object.entries(config.set).map(([k, v]) => [k.toLowerCase(), v] as const);
    const remove = config.remove.map((h) => h.toLowerCase());
    const responseSet = Object.entries(config.response_set).map(([k, v]) => [k.toLowerCase(), v] as const);
    const responseRemove = config.response_remove.map((h) => h.toLowerCase());
    // The same headers for every request: nothing to decide again.
    const instance: { -readonly [K in keyof PolicyInstance]: PolicyInstance[K] } = { decisionReuse: 'reusable' };
    // Only what is configured runs: a policy with response headers alone adds nothing to the request path.
    if (set.length > 0 || remove.length > 0) {
      instance.onRequest = (ctx) => {
        for (let i = 0; i < remove.length; i++) ctx.removeUpstreamHeader(remove[i]!);
        if (set.length > 0) ctx.addUpstreamHeaders(set);
      };
    }
    if (responseSet.length > 0 || responseRemove.length > 0) {
      instance.onResponse = (_ctx, head) => {
        for (let i = 0; i < responseRemove.length; i++) head.headers.delete(responseRemove[i]!);
        for (let i = 0; i < responseSet.length; i++) head.headers.set(responseSet[i]![0], responseSet[i]![1]);
      };
    }
    return instance;
  },
};
