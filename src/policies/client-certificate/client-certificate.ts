/**
 * client-certificate: authenticates the request by the TLS client certificate (mTLS or SPIFFE X509-SVID) through
 * the `mtls` authenticator, on routes that need nothing else. Routes that accept several credentials use the
 * `authenticate` policy with method `mtls` instead.
 */
import type { PolicyDefinition, PolicyInstance } from '../../pipeline/policy.js';
import { problem } from '../../pipeline/problem.js';
import { isAuthFailure } from '../authenticate/authenticator.js';
import { createMtlsAuthenticator } from '../authenticate/mtls/mtls.js';
import { clientCertificateSchema, type ClientCertificateConfig } from './schema.js';

export const SPIFFE_ID_HEADER = 'x-kycgate-client-spiffe-id';
export const CONSUMER_HEADER = 'x-kycgate-client-consumer';
export const FINGERPRINT_HEADER = 'x-kycgate-client-cert-sha256';

export const clientCertificatePolicy: PolicyDefinition<ClientCertificateConfig> = {
  name: 'client-certificate',
  description: 'Requires (or accepts) a valid TLS client certificate or X509-SVID and maps it to a consumer.',
  phase: 'authenticate',
  schema: clientCertificateSchema,
  create(config, setup): PolicyInstance {
    const authenticator = createMtlsAuthenticator(config, setup);
    const events = setup.services.events;
    const challenge = { 'www-authenticate': authenticator.challenge };
    const missing = problem('unauthenticated', {
      detail: 'A valid client certificate is required.',
      headers: challenge,
    });
    return {
      ...(config.identity_headers ? { injectsHeaders: ['x-kycgate-client-*'] } : {}),
      // Holds while the certificate is valid (bounded by its notAfter below).
      decisionReuse: 'reusable',
      onRequest(ctx) {
        const outcome = authenticator.authenticate(ctx);
        if (outcome === undefined) {
          if (!config.required) return undefined;
          events.emit({
            type: 'auth.failure',
            requestId: ctx.id,
            route: ctx.route.name,
            outcome: 'no_certificate',
            data: { method: 'mtls' },
          });
          ctx.decision = { outcome: 'refused', policy: 'client-certificate', reason: 'no_certificate' };
          return missing;
        }
        if (isAuthFailure(outcome)) {
          events.emit({
            type: 'auth.failure',
            requestId: ctx.id,
            route: ctx.route.name,
            outcome: outcome.reason,
            data: { method: 'mtls' },
          });
          ctx.decision = { outcome: 'refused', policy: 'client-certificate', reason: outcome.reason };
          return problem('unauthenticated', {
            detail: outcome.detail ?? 'The client certificate was refused.',
            headers: challenge,
          });
        }
        ctx.identity = outcome;
        if (outcome.expiresAt !== undefined) ctx.limitCacheUntil(outcome.expiresAt);
        if (config.identity_headers) {
          if (outcome.spiffeId !== undefined) ctx.setUpstreamHeader(SPIFFE_ID_HEADER, outcome.spiffeId);
          if (outcome.consumer !== undefined) ctx.setUpstreamHeader(CONSUMER_HEADER, outcome.consumer);
          if (outcome.certFingerprint !== undefined) ctx.setUpstreamHeader(FINGERPRINT_HEADER, outcome.certFingerprint);
        }
        return undefined;
      },
      close: () => authenticator.close(),
    };
  },
};
