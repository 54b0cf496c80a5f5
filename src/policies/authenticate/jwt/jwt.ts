/**
 * `jwt` authenticator: verifies JWT access tokens from configured issuers. The issuer is chosen by the token's
 * `iss` claim, then the token must verify with that issuer's keys under its algorithm allowlist (never `none`;
 * an issuer with public keys never accepts HMAC, so a token "signed" with the public key as an HS256 secret
 * fails), with `iss`, `aud` and `exp` required and `nbf`/`exp` checked with a small leeway.
 */
import { readFileSync } from 'node:fs';
import { createPublicKey, type KeyObject } from 'node:crypto';
import path from 'node:path';
import type { Logger } from 'pino';
import type { EventBus } from '../../../pipeline/events.js';
import { createLocalJWKSet, decodeJwt, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { Identity, RequestContext } from '../../../pipeline/context.js';
import type { AuthService } from '../../../auth/subsystem.js';
import type { ConsumerDirectory } from '../../../auth/consumers.js';
import {
  bearerToken,
  identityFromClaims,
  isCompactJws,
  type AuthenticatorDefinition,
  type AuthFailure,
  type AuthOutcome,
  type Authenticator,
} from '../authenticator.js';
import { ASYMMETRIC_ALGORITHMS, HMAC_ALGORITHMS, jwtSchema, type JwtConfig, type JwtIssuerConfig } from './schema.js';
import { KeySetUnavailable, RemoteKeySet, checkFetchUrl, discoveredJwksUrl } from './remote-key-set.js';
import { VerifiedTokenCache } from './token-cache.js';
import { recall, remember } from '../../../shared/credential-memo.js';

const DEFAULT_ALGORITHMS = ['RS256', 'PS256', 'ES256', 'EdDSA'];

function failure(reason: string, detail: string, unavailable = false): AuthFailure {
  return unavailable ? { failed: true, reason, detail, unavailable } : { failed: true, reason, detail };
}

const MALFORMED = failure('malformed_token', 'The bearer token is not a well-formed JWT.');
const UNKNOWN_ISSUER = failure('unknown_issuer', 'The token issuer is not trusted here.');

/** Maps jose's precise errors to stable reason codes. */
function reasonFor(err: unknown): AuthFailure {
  if (err instanceof errors.JWTExpired) return failure('token_expired', 'The token has expired.');
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.reason === 'missing') return failure('missing_claim', `The token has no "${err.claim}" claim.`);
    switch (err.claim) {
      case 'nbf':
        return failure('token_not_yet_valid', 'The token is not valid yet.');
      case 'aud':
        return failure('wrong_audience', 'The token is not meant for this API.');
      case 'iss':
        return failure('wrong_issuer', 'The token issuer is not trusted here.');
      default:
        return failure('invalid_claims', `The token claim "${err.claim}" is missing or invalid.`);
    }
  }
  if (err instanceof errors.JOSEAlgNotAllowed)
    return failure('algorithm_not_allowed', 'The token signing algorithm is not accepted.');
  if (err instanceof errors.JWKSNoMatchingKey)
    return failure('unknown_key_id', 'The token was signed with an unknown key.');
  if (err instanceof errors.JWSSignatureVerificationFailed)
    return failure('invalid_signature', 'The token signature is invalid.');
  if (err instanceof KeySetUnavailable)
    return failure('jwks_unavailable', 'The token cannot be verified right now.', true);
  if (err instanceof errors.JWTInvalid || err instanceof errors.JWSInvalid) return MALFORMED;
  return failure('invalid_token', 'The token is not valid.');
}

/** One trusted issuer, compiled: its key source, allowlist and claim mapping. */
class IssuerVerifier {
  readonly keySet: RemoteKeySet | undefined;
  private readonly key: JWTVerifyGetKey | KeyObject | Uint8Array;
  private readonly options: Parameters<typeof jwtVerify>[2];

  constructor(
    readonly config: JwtIssuerConfig,
    jwks: JwtConfig['jwks'],
    auth: AuthService,
    logger: Logger,
    events: EventBus,
  ) {
    const sources = [
      config.discovery,
      config.jwks_url !== undefined,
      config.keys_file !== undefined,
      config.hmac_secret !== undefined,
    ].filter(Boolean).length;
    if (sources !== 1)
      throw new Error(
        `issuer ${config.issuer}: give exactly one key source (discovery: true, jwks_url, keys_file or hmac_secret)`,
      );
    const hmac = config.hmac_secret !== undefined;
    const algorithms = config.algorithms ?? (hmac ? ['HS256'] : DEFAULT_ALGORITHMS);
    for (const alg of algorithms) {
      const isHmac = (HMAC_ALGORITHMS as readonly string[]).includes(alg);
      if (isHmac !== hmac) {
        throw new Error(
          `issuer ${config.issuer}: algorithm ${alg} ` +
            `${hmac ? 'needs public keys, not hmac_secret' : 'needs hmac_secret'}; HMAC and public-key ` +
            `algorithms are never mixed`,
        );
      }
      if (!isHmac && !(ASYMMETRIC_ALGORITHMS as readonly string[]).includes(alg))
        throw new Error(`issuer ${config.issuer}: algorithm ${alg} is not supported`);
    }
    if (hmac) {
      const secret = Buffer.from(auth.resolveSecret(config.hmac_secret), 'utf8');
      if (secret.length < 32) throw new Error(`issuer ${config.issuer}: hmac_secret must be at least 32 bytes`);
      this.key = new Uint8Array(secret);
    } else if (config.keys_file !== undefined) {
      const text = readFileSync(path.resolve(auth.baseDir, config.keys_file), 'utf8');
      this.key = text.trimStart().startsWith('{') ? createLocalJWKSet(JSON.parse(text)) : createPublicKey(text);
    } else {
      const source = config.discovery ? `discovery:${config.issuer}` : `jwks:${config.jwks_url!}`;
      if (!config.discovery) checkFetchUrl(config.jwks_url!, 'jwks_url');
      const options = {
        cooldownMs: jwks.cooldown_s * 1000,
        maxAgeMs: jwks.max_age_s * 1000,
        timeoutMs: jwks.timeout_ms,
      };
      this.keySet = auth.shared(`jwt-key-set|${source}|${JSON.stringify(options)}`, () => {
        const urlOf = config.discovery
          ? discoveredJwksUrl(config.issuer, jwks.timeout_ms)
          : () => Promise.resolve(config.jwks_url!);
        return new RemoteKeySet(urlOf, options, logger, config.issuer, events);
      });
      this.key = this.keySet.getKey;
      // Warm the set at start so the first request does not wait for the IdP (failures are logged, not fatal).
      if (this.keySet.fetches === 0) void this.keySet.refresh();
    }
    this.options = {
      issuer: config.issuer,
      audience: config.audiences,
      algorithms,
      clockTolerance: config.leeway_s,
      requiredClaims: ['iss', 'aud', 'exp'],
    };
  }

  verify(token: string): Promise<JWTPayload> {
    const key = this.key;
    // Two calls because jwtVerify's overloads tell a key resolver from a key.
    return typeof key === 'function'
      ? jwtVerify(token, key, this.options).then((r) => r.payload)
      : jwtVerify(token, key, this.options).then((r) => r.payload);
  }

  identityOf(payload: JWTPayload, consumers: ConsumerDirectory): Identity {
    return identityFromClaims('jwt', payload, this.config, consumers, payload.exp! * 1000);
  }
}

class JwtAuthenticator implements Authenticator {
  readonly method = 'jwt';
  readonly challenge = 'Bearer';
  private readonly issuers: Map<string, IssuerVerifier>;
  private readonly cache: VerifiedTokenCache;
  private readonly bearer: boolean;
  private readonly header: string;
  /** `cache.max_entries: 0` turns caching off, the per-connection memo included. */
  private readonly memo: boolean;

  constructor(
    config: JwtConfig,
    issuers: IssuerVerifier[],
    private readonly consumers: ConsumerDirectory,
  ) {
    this.issuers = new Map(issuers.map((i) => [i.config.issuer, i]));
    this.cache = new VerifiedTokenCache(config.cache.max_entries);
    this.header = config.header.toLowerCase();
    this.bearer = this.header === 'authorization';
    this.memo = config.cache.max_entries > 0;
  }

  /** For tests and metrics: JWKS fetches per issuer. */
  keySet(issuer: string): RemoteKeySet | undefined {
    return this.issuers.get(issuer)?.keySet;
  }

  authenticate(ctx: RequestContext): AuthOutcome | Promise<AuthOutcome> {
    const value = ctx.header(this.header);
    if (value === undefined) return undefined;
    // The same header value again on this connection (a token verified before): one constant-time comparison, before
    // any parsing. Otherwise the token's digest and the cache.
    const socket = this.memo ? ctx.req?.socket : undefined;
    const recalled = recall<Identity>(socket, this, value);
    if (recalled !== undefined) return recalled;
    const token = this.bearer ? bearerToken(value) : value;
    // Only compact JWS (three parts, a JSON header) is ours; other bearer tokens go to the next method.
    if (token === undefined || !isCompactJws(token)) return undefined;
    const key = VerifiedTokenCache.keyOf(token);
    const cached = this.cache.get(key);
    if (cached !== undefined) {
      remember(socket, this, value, cached, this.cache.expiresAt(key));
      return cached;
    }

    let claims: JWTPayload;
    try {
      claims = decodeJwt(token);
    } catch {
      return MALFORMED;
    }
    const issuer = typeof claims.iss === 'string' ? this.issuers.get(claims.iss) : undefined;
    if (issuer === undefined) {
      // A JWT-SVID from an issuer we do not know is left to a `spiffe-jwt` method listed after this one.
      if (typeof claims.sub === 'string' && claims.sub.startsWith('spiffe://')) return undefined;
      return UNKNOWN_ISSUER;
    }
    return issuer.verify(token).then((payload) => {
      const identity = issuer.identityOf(payload, this.consumers);
      this.cache.set(key, identity, payload.exp! * 1000);
      remember(socket, this, value, identity, payload.exp! * 1000);
      return identity;
    }, reasonFor);
  }
}

export const jwtAuthenticator: AuthenticatorDefinition<JwtConfig> = {
  method: 'jwt',
  description:
    'JWT bearer tokens from OIDC/OAuth2 issuers (JWKS by discovery or URL, key files, HMAC secrets), with algorithm allowlists and a verified-token cache.',
  schema: jwtSchema,
  create(config, setup) {
    const auth = setup.services.get<AuthService>('auth');
    const issuers = config.issuers.map(
      (i) => new IssuerVerifier(i, config.jwks, auth, setup.services.logger, setup.services.events),
    );
    return new JwtAuthenticator(config, issuers, auth.consumers);
  },
};
