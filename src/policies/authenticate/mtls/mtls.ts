/**
 * mtls: the client certificate of the TLS connection as a credential. X509-SVIDs are validated with every SPIFFE
 * rule (method `spiffe`), plain certificates against client CAs (method `mtls`); the certificate is then mapped to
 * a consumer by SPIFFE ID, fingerprint, DNS SAN, subject DN or trust domain.
 *
 * The verdict is cached per connection by the verifier, and the identity per verdict here, so a keep-alive
 * connection pays for validation once and a request only for two WeakMap lookups.
 */
import type { TLSSocket } from 'node:tls';
import type { Identity, RequestContext } from '../../../pipeline/context.js';
import type { PolicySetup } from '../../../pipeline/policy.js';
import type { AuthenticatorDefinition, Authenticator, AuthFailure, AuthOutcome } from '../authenticator.js';
import { TrustStore } from '../../../workload-identity/trust-store.js';
import { PeerVerifier } from '../../../workload-identity/peer-verifier.js';
import { listenerVerifierOf } from '../../../workload-identity/listener-client-auth.js';
import type { AcceptedCertificate } from '../../../workload-identity/svid.js';
import { parseSpiffeId } from '../../../workload-identity/spiffe-id.js';
import { mtlsSchema, type MtlsConfig } from './schema.js';

const NO_CONSUMER = Symbol('no consumer');

/** Compiled consumer rules: one Map per selector. */
class ConsumerMap {
  private readonly bySpiffeId = new Map<string, string>();
  private readonly byFingerprint = new Map<string, string>();
  private readonly byDns = new Map<string, string>();
  private readonly bySubject = new Map<string, string>();
  private readonly byTrustDomain = new Map<string, string>();

  constructor(rules: MtlsConfig['consumers']) {
    for (const r of rules) {
      if (r.spiffe_id !== undefined) {
        const id = parseSpiffeId(r.spiffe_id);
        if (!id.ok)
          throw new Error(`mtls consumer ${r.name}: spiffe_id ${JSON.stringify(r.spiffe_id)} is invalid: ${id.reason}`);
        this.bySpiffeId.set(r.spiffe_id, r.name);
      } else if (r.fingerprint !== undefined)
        this.byFingerprint.set(r.fingerprint.replace(/:/g, '').toLowerCase(), r.name);
      else if (r.dns !== undefined) this.byDns.set(r.dns.toLowerCase(), r.name);
      else if (r.subject !== undefined) this.bySubject.set(r.subject, r.name);
      else if (r.trust_domain !== undefined) this.byTrustDomain.set(r.trust_domain, r.name);
    }
  }

  consumerOf(cert: AcceptedCertificate): string | undefined {
    if (cert.spiffeId) {
      const byId = this.bySpiffeId.get(cert.spiffeId.id);
      if (byId !== undefined) return byId;
    }
    const byFp = this.byFingerprint.get(cert.fingerprint);
    if (byFp !== undefined) return byFp;
    for (const dns of cert.dnsNames) {
      const byDns = this.byDns.get(dns);
      if (byDns !== undefined) return byDns;
    }
    const bySubject = this.bySubject.get(cert.subject);
    if (bySubject !== undefined) return bySubject;
    return cert.spiffeId ? this.byTrustDomain.get(cert.spiffeId.trustDomain) : undefined;
  }
}

export class MtlsAuthenticator implements Authenticator {
  readonly method = 'mtls';
  /** No HTTP challenge exists for a TLS credential; the 401 names the scheme for clarity. */
  readonly challenge = 'Mutual-TLS realm="kycgate"';
  private readonly own: PeerVerifier | undefined;
  private readonly consumers: ConsumerMap;
  private readonly identities = new WeakMap<AcceptedCertificate, Identity | typeof NO_CONSUMER>();

  constructor(
    private readonly config: MtlsConfig,
    private readonly trust: TrustStore | undefined,
  ) {
    this.own = trust ? new PeerVerifier(trust) : undefined;
    this.consumers = new ConsumerMap(config.consumers);
  }

  /** The verifier for this connection: the route's own trust, or the listener's. */
  private verifierFor(socket: TLSSocket): PeerVerifier | undefined {
    return this.own ?? listenerVerifierOf(socket);
  }

  authenticate(ctx: RequestContext): AuthOutcome {
    const socket = ctx.tlsSocket;
    if (socket === undefined) return undefined;
    const verifier = this.verifierFor(socket);
    if (verifier === undefined) return undefined;
    const verdict = verifier.verify(socket);
    if (verdict === undefined) return undefined;
    if (!verdict.ok) return { failed: true, reason: verdict.reason, detail: verdict.detail };
    let identity = this.identities.get(verdict);
    if (identity === undefined) {
      const consumer = this.consumers.consumerOf(verdict);
      if (consumer === undefined && !this.config.allow_unmapped) identity = NO_CONSUMER;
      else {
        identity = Object.freeze({
          method: verdict.kind,
          scopes: [],
          ...(consumer !== undefined ? { consumer } : {}),
          ...(verdict.spiffeId ? { spiffeId: verdict.spiffeId.id } : {}),
          certFingerprint: verdict.fingerprint,
          expiresAt: verdict.validUntil,
        });
      }
      this.identities.set(verdict, identity);
    }
    if (identity === NO_CONSUMER) return UNMAPPED;
    return identity;
  }

  close(): void {
    this.trust?.close();
  }
}

const UNMAPPED: AuthFailure = {
  failed: true,
  reason: 'unmapped_certificate',
  detail: 'The client certificate is not mapped to a consumer.',
};

export function createMtlsAuthenticator(config: MtlsConfig, setup: PolicySetup): MtlsAuthenticator {
  const ownTrust = (config.trust_domains?.length ?? 0) > 0 || (config.client_ca?.length ?? 0) > 0;
  const trust = ownTrust
    ? new TrustStore(
        { trustDomains: config.trust_domains ?? [], caFiles: config.client_ca ?? [] },
        setup.baseDir ?? process.cwd(),
        setup.services.logger,
      )
    : undefined;
  return new MtlsAuthenticator(config, trust);
}

export const mtlsAuthenticator: AuthenticatorDefinition<MtlsConfig> = {
  method: 'mtls',
  description:
    'Client certificate of the TLS connection: X509-SVIDs (SPIFFE) or certificates of configured client CAs, mapped to consumers.',
  schema: mtlsSchema,
  create: createMtlsAuthenticator,
};
