/**
 * spiffe-jwt: JWT-SVIDs (spiffe/spiffe standards/JWT-SVID.md) sent as `Authorization: Bearer`. JWS compact only;
 * `alg` one of RS/ES/PS 256/384/512 (never `none` or HMAC); `typ`, if present, JWT or JOSE; `sub` a SPIFFE ID;
 * `aud` and `exp` required; the signature checked with the JWT bundle of the trust domain named in `sub`, by `kid`.
 *
 * A bearer token whose `sub` is not a SPIFFE ID is not a JWT-SVID: the authenticator passes (undefined) so that
 * another authenticator (jwt, api-key) can take it.
 *
 * A verified token is remembered on the connection (credential memo) until its `exp`, with the trust store
 * generation it was verified under: the same token again on that connection costs one constant-time comparison,
 * and any change of the trust anchors (a bundle file reload, a Workload API push withdrawing a trust domain or
 * rotating keys) makes the next request verify it again.
 */
import { decodeJwt, decodeProtectedHeader, errors, importJWK, jwtVerify, type JWK, type JWTPayload } from 'jose';
import type { Identity, RequestContext } from '../../../pipeline/context.js';
import type { PolicySetup } from '../../../pipeline/policy.js';
import {
  bearerToken,
  isAuthFailure,
  isCompactJws,
  type AuthenticatorDefinition,
  type Authenticator,
  type AuthFailure,
  type AuthOutcome,
} from '../authenticator.js';
import { TrustStore } from '../../../workload-identity/trust-store.js';
import { parseSpiffeId } from '../../../workload-identity/spiffe-id.js';
import { WorkloadJwtBundleSource } from '../../../workload-identity/workload-api/jwt-bundle-source.js';
import { spiffeJwtSchema, type SpiffeJwtConfig } from './schema.js';
import { recall, remember } from '../../../shared/credential-memo.js';

export const JWT_SVID_ALGORITHMS: ReadonlySet<string> = new Set([
  'RS256',
  'RS384',
  'RS512',
  'ES256',
  'ES384',
  'ES512',
  'PS256',
  'PS384',
  'PS512',
]);

type VerifyKey = Awaited<ReturnType<typeof importJWK>>;

function fail(reason: string, detail: string): AuthFailure {
  return { failed: true, reason, detail };
}

/** What a connection remembers for a verified JWT-SVID: the identity and the trust generation that verified it. */
interface Verified {
  readonly identity: Identity;
  readonly generation: number;
}

export class SpiffeJwtAuthenticator implements Authenticator {
  readonly method = 'spiffe-jwt';
  readonly challenge = 'Bearer realm="kycgate"';
  private readonly bySpiffeId = new Map<string, string>();
  private readonly byTrustDomain = new Map<string, string>();
  /** Imported keys per bundle JWK object (a bundle reload makes new objects, so stale keys drop out). */
  private readonly keys = new WeakMap<JWK, Map<string, Promise<VerifyKey>>>();

  constructor(
    private readonly config: SpiffeJwtConfig,
    readonly trust: TrustStore,
    private readonly bundleSource: WorkloadJwtBundleSource | undefined = undefined,
  ) {
    for (const c of config.consumers) {
      if (c.spiffe_id !== undefined) {
        const id = parseSpiffeId(c.spiffe_id);
        if (!id.ok) throw new Error(`spiffe-jwt consumer ${c.name}: spiffe_id is invalid: ${id.reason}`);
        this.bySpiffeId.set(c.spiffe_id, c.name);
      } else if (c.trust_domain !== undefined) this.byTrustDomain.set(c.trust_domain, c.name);
    }
  }

  authenticate(ctx: RequestContext): AuthOutcome | Promise<AuthOutcome> {
    const token = bearerToken(ctx.header(this.config.header));
    if (token === undefined) return undefined;
    // The same token again on this connection, with the same trust anchors: one constant-time comparison.
    const socket = ctx.req?.socket;
    const recalled = recall<Verified>(socket, this, token);
    if (recalled !== undefined && recalled.generation === this.trust.generation) return recalled.identity;
    if (!isCompactJws(token)) return undefined;
    let header: ReturnType<typeof decodeProtectedHeader>;
    let claims: ReturnType<typeof decodeJwt>;
    try {
      header = decodeProtectedHeader(token);
      claims = decodeJwt(token);
    } catch {
      return undefined;
    }
    if (typeof claims.sub !== 'string' || claims.sub.slice(0, 7).toLowerCase() !== 'spiffe:') return undefined;
    // From here on the token claims to be a JWT-SVID: every problem is a refusal.
    if (typeof header.alg !== 'string' || !JWT_SVID_ALGORITHMS.has(header.alg))
      return fail('jwt_algorithm', 'The JWT-SVID algorithm is not allowed.');
    if (header.typ !== undefined && header.typ !== 'JWT' && header.typ !== 'JOSE')
      return fail('jwt_type', 'The JWT-SVID typ must be JWT or JOSE.');
    const id = parseSpiffeId(claims.sub);
    if (!id.ok) return fail('invalid_spiffe_id', `The JWT-SVID subject is not a valid SPIFFE ID: ${id.reason}.`);
    const bundle = this.trust.bundle(id.value.trustDomain);
    if (bundle === undefined)
      return fail('unknown_trust_domain', `The trust domain ${id.value.trustDomain} is not trusted.`);
    if (typeof header.kid !== 'string') return fail('jwt_key_id', 'The JWT-SVID has no kid.');
    const jwk = bundle.jwtAuthorities.get(header.kid);
    if (jwk === undefined)
      return fail('jwt_unknown_key', 'The JWT-SVID was signed by a key its trust domain does not publish.');
    const generation = this.trust.generation;
    return this.verify(token, jwk, header.alg, id.value.id, id.value.trustDomain).then((outcome) => {
      // Remembered with the generation read before verifying: a change while verifying makes the memo stale at once.
      if (outcome !== undefined && !isAuthFailure(outcome) && typeof outcome.claims?.exp === 'number') {
        remember(socket, this, token, { identity: outcome, generation } satisfies Verified, outcome.claims.exp * 1000);
      }
      return outcome;
    });
  }

  private keyFor(jwk: JWK, alg: string): Promise<VerifyKey> {
    let byAlg = this.keys.get(jwk);
    if (byAlg === undefined) this.keys.set(jwk, (byAlg = new Map()));
    let key = byAlg.get(alg);
    if (key === undefined) {
      key = importJWK(jwk, alg);
      byAlg.set(alg, key);
    }
    return key;
  }

  private async verify(
    token: string,
    jwk: JWK,
    alg: string,
    spiffeId: string,
    trustDomain: string,
  ): Promise<AuthOutcome> {
    let payload: JWTPayload;
    try {
      const key = await this.keyFor(jwk, alg);
      ({ payload } = await jwtVerify(token, key, {
        algorithms: [alg],
        audience: this.config.audience,
        clockTolerance: this.config.leeway_s,
        requiredClaims: ['sub', 'aud', 'exp'],
        subject: spiffeId,
      }));
    } catch (err) {
      if (err instanceof errors.JWTExpired) return fail('jwt_expired', 'The JWT-SVID has expired.');
      if (err instanceof errors.JWTClaimValidationFailed) {
        if (err.claim === 'aud') return fail('jwt_audience', 'The JWT-SVID is not meant for this audience.');
        return fail('jwt_claims', `The JWT-SVID claim ${err.claim} is missing or invalid.`);
      }
      if (err instanceof errors.JWSSignatureVerificationFailed)
        return fail('jwt_signature', 'The JWT-SVID signature is invalid.');
      return fail('jwt_invalid', 'The JWT-SVID cannot be verified.');
    }
    const consumer = this.bySpiffeId.get(spiffeId) ?? this.byTrustDomain.get(trustDomain);
    if (consumer === undefined && !this.config.allow_unmapped)
      return fail('unmapped_identity', 'The workload is not mapped to a consumer.');
    const identity: Identity = {
      method: 'spiffe-jwt',
      scopes: Object.freeze([]),
      spiffeId,
      ...(consumer !== undefined ? { consumer } : {}),
      ...(typeof payload.jti === 'string' ? { credentialId: payload.jti } : {}),
      claims: Object.freeze({ ...payload }),
      expiresAt: payload.exp! * 1000,
    };
    return Object.freeze(identity);
  }

  close(): void {
    this.bundleSource?.close();
    this.trust.close();
  }
}

export async function createSpiffeJwtAuthenticator(
  config: SpiffeJwtConfig,
  setup: PolicySetup,
): Promise<SpiffeJwtAuthenticator> {
  const logger = setup.services.logger;
  const trust = new TrustStore({ trustDomains: config.trust_domains ?? [] }, setup.baseDir ?? process.cwd(), logger);
  let source: WorkloadJwtBundleSource | undefined;
  if (config.workload_api) {
    try {
      source = new WorkloadJwtBundleSource(
        logger,
        config.workload_api.socket ? { address: config.workload_api.socket } : {},
      );
      source.on('update', (bundles: Map<string, Map<string, JWK>>) => trust.setPushedJwtBundles(bundles));
      await source.ready(config.workload_api.ready_timeout_ms);
    } catch (err) {
      source?.close();
      trust.close();
      throw err;
    }
  }
  return new SpiffeJwtAuthenticator(config, trust, source);
}

export const spiffeJwtAuthenticator: AuthenticatorDefinition<SpiffeJwtConfig> = {
  method: 'spiffe-jwt',
  description: 'JWT-SVIDs (SPIFFE) as bearer tokens, verified with the JWT bundle of the trust domain in sub.',
  schema: spiffeJwtSchema,
  create: createSpiffeJwtAuthenticator,
};
