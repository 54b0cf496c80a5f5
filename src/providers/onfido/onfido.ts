/**
 * The Onfido (Entrust Identity Verification) adapter, API v3.6 with Onfido Studio: a session is an applicant
 * (`POST /applicants`, no personal data sent) and a workflow run (`POST /workflow_runs`) whose `link.url` is the
 * hosted flow; the result is the run itself (`GET /workflow_runs/{id}`). Requests carry
 * `Authorization: Token token=<API token>`. Regions are chosen by `base_url` (api.eu / api.us / api.ca).
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
import { decisionFromOnfido, onfidoStatusToState } from './decision.js';
import { verifyOnfidoWebhook } from './signature.js';

export const ONFIDO_DEFAULT_BASE_URL = 'https://api.eu.onfido.com/v3.6';

const auth = (key: string) => ({ authorization: `Token token=${key}` });

export class OnfidoProvider extends VendorProvider {
  constructor(options: VendorAdapterOptions) {
    super('Onfido', 'onfido', ONFIDO_DEFAULT_BASE_URL, options);
  }

  async createSession(input: CreateSessionInput): Promise<ProviderSession> {
    const applicant = await this.send(
      { method: 'POST', path: '/applicants', body: {}, operation: 'create_session', label: 'POST /applicants' },
      auth,
    );
    const applicantId = text(applicant.id);
    if (!applicantId) throw new ProviderRejected('Onfido POST /applicants answered without an id', 502);
    const body: Record<string, unknown> = {
      workflow_id: input.workflowId,
      applicant_id: applicantId,
      customer_user_id: input.vendorData,
    };
    if (input.callback !== undefined)
      body.link = { completed_redirect_url: input.callback, expired_redirect_url: input.callback };
    const run = await this.send(
      { method: 'POST', path: '/workflow_runs', body, operation: 'create_session', label: 'POST /workflow_runs' },
      auth,
    );
    const sessionId = text(run.id);
    const url = isObject(run.link) ? text(run.link.url) : undefined;
    if (!sessionId || !url)
      throw new ProviderRejected('Onfido POST /workflow_runs answered without id or link.url', 502);
    const status = text(run.status) ?? 'awaiting_input';
    return {
      sessionId,
      url,
      status,
      state: onfidoStatusToState(status),
      workflowId: input.workflowId,
      vendorData: input.vendorData,
    };
  }

  async fetchDecision(sessionId: string): Promise<VerificationResult> {
    const id = checkedId('Onfido', sessionId);
    const run = await this.send(
      { method: 'GET', path: `/workflow_runs/${id}`, operation: 'fetch_decision', label: 'GET /workflow_runs/{id}' },
      auth,
    );
    return decisionFromOnfido(run, this.nowSeconds(), id);
  }

  verifyWebhook(rawBody: Buffer, headers: IncomingHttpHeaders, nowSeconds?: number): WebhookVerification {
    return verifyOnfidoWebhook(rawBody, headers, {
      token: this.webhookSecret,
      nowSeconds: nowSeconds ?? this.nowSeconds(),
      maxEventAgeSeconds: this.maxEventAgeSeconds,
      maxFutureSkewSeconds: this.maxFutureSkewSeconds,
    });
  }
}
