/**
 * kyc-webhook: answers `POST /webhooks/:provider` (a built-in route of the kyc subsystem). Nothing in the body is
 * trusted before the provider's signature check on the raw bytes passes. A valid event is stored durably before
 * the 200 goes out, so an acknowledged event survives a crash; it is applied right after (idempotently, never
 * letting an older status overwrite a newer one). Refusals answer 401 and raise a `webhook.refused` event.
 */
import { Problem, problem } from '../../pipeline/problem.js';
import type { RequestContext } from '../../pipeline/context.js';
import type { PolicyDefinition, PolicyResult, Reply } from '../../pipeline/policy.js';
import type { KycService } from '../../kyc/service.js';
import type { FaultRegistry } from '../../resilience/faults/registry.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { kycWebhookSchema, type KycWebhookConfig } from './schema.js';
import { KYC_WEBHOOK_PROBLEMS, WEBHOOK_SIGNATURE_INVALID } from './problems.js';

const REFUSAL_DETAIL = {
  missing_signature: 'The webhook carries no signature.',
  invalid_signature: 'The webhook signature does not match.',
  stale: 'The webhook timestamp is outside the accepted window.',
  malformed: 'The webhook body is not a valid event.',
} as const;

const ACCEPTED: Reply = {
  status: 200,
  headers: { 'content-type': 'application/json', 'cache-control': 'no-store' },
  body: '{"status":"accepted"}',
};
const DUPLICATE: Reply = {
  status: 200,
  headers: { 'content-type': 'application/json', 'cache-control': 'no-store' },
  body: '{"status":"duplicate"}',
};

export const kycWebhookPolicy: PolicyDefinition<KycWebhookConfig> = {
  name: 'kyc-webhook',
  description:
    "Receives verification-provider webhooks on the kyc subsystem's webhook route (not for use on other routes).",
  phase: 'gate',
  problems: KYC_WEBHOOK_PROBLEMS,
  schema: kycWebhookSchema,
  create(_config, setup) {
    const kyc = setup.services.get<KycService>('kyc');
    const events = setup.services.events;
    const logger = setup.services.logger;
    const faults = setup.services.find<FaultRegistry>('faults');
    return {
      decisionReuse: 'per-request',
      async onRequest(ctx: RequestContext): Promise<PolicyResult> {
        const name = ctx.params.provider ?? '';
        const provider = kyc.setup.providers.get(name);
        if (!provider) return problem('not-found', { detail: 'No verification provider of that name.' });
        const body = await ctx.readBody();
        if (body instanceof Problem) return body;
        const verified = provider.verifyWebhook(body, ctx.headers);
        if (!verified.ok) {
          ctx.decision = { outcome: 'refused', policy: 'kyc-webhook', reason: verified.reason };
          events.emit({
            type: 'webhook.refused',
            requestId: ctx.id,
            route: ctx.route.name,
            outcome: verified.reason,
            data: { provider: name, client_ip: ctx.clientIp },
          });
          return problem(WEBHOOK_SIGNATURE_INVALID, { detail: REFUSAL_DETAIL[verified.reason] });
        }
        const event = verified.event;
        if (faults !== undefined && !faults.empty) {
          // A resilience test: the provider's webhook arrives late (kycgate faults arm --provider --webhook-delay).
          const delay = faults.webhookDelay(name);
          if (delay !== undefined) {
            events.emit({
              type: 'fault.injected',
              requestId: ctx.id,
              route: ctx.route.name,
              outcome: 'webhook_delay',
              data: { fault: delay.fault.id, kind: 'provider', target: name, delay_ms: delay.ms },
            });
            await sleep(delay.ms);
          }
        }
        let result: 'accepted' | 'duplicate';
        try {
          result = await kyc.acceptWebhook(name, event);
        } catch (err) {
          // Not stored: a 5xx makes the provider deliver it again.
          logger.error({ req_id: ctx.id, err, provider: name }, 'webhook event could not be stored');
          return problem('service-unavailable', {
            detail: 'The event could not be stored; deliver it again.',
            headers: { 'retry-after': 5 },
          });
        }
        ctx.decision = { outcome: result, policy: 'kyc-webhook', reason: event.status };
        events.emit({
          type: 'webhook.accepted',
          requestId: ctx.id,
          route: ctx.route.name,
          outcome: result,
          data: {
            provider: name,
            event_id: event.eventId,
            session_id: event.sessionId,
            status: event.status,
            signature: event.signature,
          },
        });
        return result === 'duplicate' ? DUPLICATE : ACCEPTED;
      },
    };
  },
};
