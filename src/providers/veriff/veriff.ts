/**
 * The Veriff adapter (stationapi.veriff.com): `POST /v1/sessions` creates a session and returns the hosted flow URL;
 * `GET /v1/sessions/{id}/decision` fetches the decision, authenticated by `X-AUTH-CLIENT` (the API key) and
 * `X-HMAC-SIGNATURE` (hex HMAC-SHA256 of the session id with the shared secret key). The integration, which the API
 * key selects, plays the part of a workflow: `workflow_id` is only recorded.
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
import { hmacHexOf, isObject, text } from '../webhook-hmac.js';
import { decisionFromVeriff, veriffStatusToState } from './decision.js';
import { verifyVeriffWebhook } from './signature.js';

export const VERIFF_DEFAULT_BASE_URL = 'https://stationapi.veriff.com';

export class VeriffProvider extends VendorProvider {
  constructor(options: VendorAdapterOptions) {
    super('Veriff', 'veriff', VERIFF_DEFAULT_BASE_URL, options);
  }

  async createSession(input: CreateSessionInput): Promise<ProviderSession> {
    const verification: Record<string, unknown> = { vendorData: input.vendorData };
    if (input.callback !== undefined) verification.callback = input.callback;
    const doc = await this.send(
      {
        method: 'POST',
        path: '/v1/sessions',
        body: { verification },
        operation: 'create_session',
        label: 'POST /v1/sessions',
      },
      (key) => ({ 'x-auth-client': key }),
    );
    const v = isObject(doc.verification) ? doc.verification : {};
    const sessionId = text(v.id);
    const url = text(v.url);
    if (!sessionId || !url)
      throw new ProviderRejected('Veriff POST /v1/sessions answered without verification.id or url', 502);
    const status = text(v.status) ?? 'created';
    return {
      sessionId,
      url,
      status,
      state: veriffStatusToState(status),
      workflowId: input.workflowId,
      vendorData: input.vendorData,
    };
  }

  async fetchDecision(sessionId: string): Promise<VerificationResult> {
    const id = checkedId('Veriff', sessionId);
    const doc = await this.send(
      {
        method: 'GET',
        path: `/v1/sessions/${id}/decision`,
        operation: 'fetch_decision',
        label: 'GET /v1/sessions/{id}/decision',
      },
      (key) => ({ 'x-auth-client': key, 'x-hmac-signature': hmacHexOf('sha256', this.webhookSecret, id) }),
    );
    // `verification` is null until Veriff has decided.
    return decisionFromVeriff(doc.verification, this.nowSeconds(), id);
  }

  verifyWebhook(rawBody: Buffer, headers: IncomingHttpHeaders, nowSeconds?: number): WebhookVerification {
    return verifyVeriffWebhook(rawBody, headers, {
      secret: this.webhookSecret,
      nowSeconds: nowSeconds ?? this.nowSeconds(),
      maxEventAgeSeconds: this.maxEventAgeSeconds,
      maxFutureSkewSeconds: this.maxFutureSkewSeconds,
    });
  }
}

export type { VendorAdapterOptions };
