/**
 * static-response: answers the request itself, after authentication and every other policy has passed. Useful for
 * maintenance pages, canned answers and health endpoints behind policies. The reply is built once per config.
 */
import type { PolicyDefinition, Reply } from '../../pipeline/policy.js';
import { staticResponseSchema, type StaticResponseConfig } from './schema.js';

export const staticResponsePolicy: PolicyDefinition<StaticResponseConfig> = {
  name: 'static-response',
  description: 'Answers with a fixed status, headers and body instead of forwarding.',
  // Last phase: every admission, authentication and protection policy runs first.
  phase: 'transform',
  schema: staticResponseSchema,
  create(config) {
    const body = Buffer.from(config.body, 'utf8');
    const headers: Record<string, string | number> = {
      ...config.headers,
      'content-type': config.content_type,
      'content-length': body.length,
    };
    const reply: Reply = { status: config.status, headers, body };
    return { decisionReuse: 'reusable', onRequest: () => reply };
  },
};
