/**
 * The Persona adapter (withpersona.com/api/v1, JSON:API, kebab-case keys): `POST /inquiries` from an inquiry
 * template (`workflow_id`, itmpl_...) with the subject's pseudonym as `reference-id`; the user is sent to the hosted
 * flow `<hosted_url>/verify?inquiry-id=<id>`; the result is `GET /inquiries/{id}` with its verifications included.
 * Requests carry `Authorization: Bearer <API key>` and a pinned `Persona-Version`.
 */
import type { IncomingHttpHeaders } from 'node:http';
import {
  ProviderRejected,
  type CreateSessionInput,
  type ProviderSession,
  type VerificationResult,
  type WebhookVerification,
} from '../provider.js';
import { VendorProvider, checkedId, type VendorAdapterOptions } from '../vendor-adapter.js';
import { isObject, text } from '../webhook-hmac.js';
import { decisionFromPersona, personaStatusToState } from './decision.js';
import { verifyPersonaWebhook } from './signature.js';

export const PERSONA_DEFAULT_BASE_URL = 'https://withpersona.com/api/v1';
export const PERSONA_DEFAULT_HOSTED_URL = 'https://withpersona.com';
export const PERSONA_API_VERSION = '2023-01-05';

const auth = (key: string) => ({
  authorization: `Bearer ${key}`,
  'persona-version': PERSONA_API_VERSION,
  'key-inflection': 'kebab',
});

export interface PersonaProviderOptions extends VendorAdapterOptions {
  /** Origin of the hosted flow. Default https://withpersona.com. */
  hostedUrl?: string | undefined;
}

export class PersonaProvider extends VendorProvider {
  private readonly hostedUrl: string;

  constructor(options: PersonaProviderOptions) {
    super('Persona', 'persona', PERSONA_DEFAULT_BASE_URL, options);
    this.hostedUrl = (options.hostedUrl ?? PERSONA_DEFAULT_HOSTED_URL).replace(/\/+$/, '');
  }

  async createSession(input: CreateSessionInput): Promise<ProviderSession> {
    const attributes: Record<string, unknown> = {
      'inquiry-template-id': input.workflowId,
      'reference-id': input.vendorData,
    };
    if (input.callback !== undefined) attributes['redirect-uri'] = input.callback;
    const doc = await this.send(
      {
        method: 'POST',
        path: '/inquiries',
        body: { data: { attributes } },
        operation: 'create_session',
        label: 'POST /inquiries',
      },
      auth,
    );
    const data = isObject(doc.data) ? doc.data : {};
    const sessionId = text(data.id);
    if (!sessionId || !/^inq_[A-Za-z0-9]{1,64}$/.test(sessionId))
      throw new ProviderRejected('Persona POST /inquiries answered without an inquiry id', 502);
    const status = (isObject(data.attributes) && text(data.attributes.status)) || 'created';
    return {
      sessionId,
      url: `${this.hostedUrl}/verify?inquiry-id=${sessionId}`,
      status,
      state: personaStatusToState(status),
      workflowId: input.workflowId,
      vendorData: input.vendorData,
    };
  }

  async fetchDecision(sessionId: string): Promise<VerificationResult> {
    const id = checkedId('Persona', sessionId, /^inq_[A-Za-z0-9]{1,64}$/);
    const doc = await this.send(
      {
        method: 'GET',
        path: `/inquiries/${id}?include=verifications`,
        operation: 'fetch_decision',
        label: 'GET /inquiries/{id}',
      },
      auth,
    );
    return decisionFromPersona(doc, this.nowSeconds(), id);
  }

  verifyWebhook(rawBody: Buffer, headers: IncomingHttpHeaders, nowSeconds?: number): WebhookVerification {
    return verifyPersonaWebhook(rawBody, headers, {
      secret: this.webhookSecret,
      nowSeconds: nowSeconds ?? this.nowSeconds(),
      toleranceSeconds: this.toleranceSeconds,
      maxFutureSkewSeconds: this.maxFutureSkewSeconds,
    });
  }
}
