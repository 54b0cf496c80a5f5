/**
 * The Sumsub adapter (api.sumsub.com). A session is an applicant known by an `externalUserId` kycgate makes up per
 * session (the subject's pseudonym and a random suffix: a re-verification is a new applicant), reached through an
 * external WebSDK link (`POST /resources/sdkIntegrations/levels/{levelName}/websdkLink`); `workflow_id` is the
 * level name. Results are read from the applicant. Every request is signed with the app token's secret key.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import {
  ProviderRejected,
  type CreateSessionInput,
  type ProviderSession,
  type VerificationResult,
  type WebhookVerification,
} from '../provider.js';
import { VendorProvider, checkedId, type VendorAdapterOptions } from '../vendor-adapter.js';
import { text } from '../webhook-hmac.js';
import { decisionFromSumsub } from './decision.js';
import { sumsubRequestSignature, verifySumsubWebhook, type SumsubDigestAlgorithm } from './signature.js';

export const SUMSUB_DEFAULT_BASE_URL = 'https://api.sumsub.com';

export interface SumsubProviderOptions extends VendorAdapterOptions {
  /** The app token's secret key (signs API requests). */
  apiSecret: string | undefined;
  /** Webhook digest algorithms accepted. Default: all three Sumsub documents. */
  digestAlgorithms?: readonly SumsubDigestAlgorithm[] | undefined;
  /** Lifetime of the WebSDK link, seconds. Default 1800. */
  linkTtlSeconds?: number | undefined;
}

export class SumsubProvider extends VendorProvider {
  private readonly apiSecret: string | undefined;
  private readonly digestAlgorithms: readonly SumsubDigestAlgorithm[] | undefined;
  private readonly linkTtlSeconds: number;

  constructor(options: SumsubProviderOptions) {
    super('Sumsub', 'sumsub', SUMSUB_DEFAULT_BASE_URL, options);
    this.apiSecret = options.apiSecret;
    this.digestAlgorithms = options.digestAlgorithms;
    this.linkTtlSeconds = options.linkTtlSeconds ?? 1800;
  }

  private signed(method: string, path: string) {
    return (token: string, body: string | undefined): Record<string, string> => {
      if (this.apiSecret === undefined) throw new ProviderRejected('Sumsub: no api_secret is configured', 401);
      const ts = String(this.nowSeconds());
      return {
        'x-app-token': token,
        'x-app-access-ts': ts,
        'x-app-access-sig': sumsubRequestSignature(this.apiSecret, ts, method, this.basePath + path, body ?? ''),
      };
    };
  }

  async createSession(input: CreateSessionInput): Promise<ProviderSession> {
    const level = encodeURIComponent(input.workflowId);
    const externalUserId = `${input.vendorData.slice(0, 80)}.${randomBytes(9).toString('base64url')}`;
    const path =
      `/resources/sdkIntegrations/levels/${level}/websdkLink` +
      `?ttlInSecs=${this.linkTtlSeconds}&externalUserId=${encodeURIComponent(externalUserId)}`;
    const doc = await this.send(
      {
        method: 'POST',
        path,
        operation: 'create_session',
        label: 'POST /resources/sdkIntegrations/levels/{level}/websdkLink',
      },
      this.signed('POST', path),
    );
    const url = text(doc.url);
    if (!url) throw new ProviderRejected('Sumsub websdkLink answered without url', 502);
    return {
      sessionId: externalUserId,
      url,
      status: 'init',
      state: 'pending',
      workflowId: input.workflowId,
      vendorData: input.vendorData,
    };
  }

  async fetchDecision(sessionId: string): Promise<VerificationResult> {
    const id = checkedId('Sumsub', sessionId);
    const path = `/resources/applicants/-;externalUserId=${encodeURIComponent(id)}/one`;
    const applicant = await this.send(
      {
        method: 'GET',
        path,
        operation: 'fetch_decision',
        label: 'GET /resources/applicants/-;externalUserId={id}/one',
      },
      this.signed('GET', path),
    );
    return decisionFromSumsub(applicant, this.nowSeconds(), id);
  }

  verifyWebhook(rawBody: Buffer, headers: IncomingHttpHeaders, nowSeconds?: number): WebhookVerification {
    return verifySumsubWebhook(rawBody, headers, {
      secret: this.webhookSecret,
      nowSeconds: nowSeconds ?? this.nowSeconds(),
      maxEventAgeSeconds: this.maxEventAgeSeconds,
      maxFutureSkewSeconds: this.maxFutureSkewSeconds,
      accept: this.digestAlgorithms,
    });
  }
}
