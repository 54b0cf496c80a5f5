/**
 * `api-key` authenticator: takes a key from the configured header, `Authorization: Bearer kg_...` or (only when
 * configured) a query parameter, checks its format and checksum, then verifies it against the cached key record.
 * A cached key is checked synchronously: one map lookup and one SHA-256.
 */
import type { RequestContext } from '../../../pipeline/context.js';
import type { AuthService } from '../../../auth/subsystem.js';
import { KEY_PREFIX, lookupIdOf, parseKey } from '../../../auth/api-keys/format.js';
import type { KeyCheck } from '../../../auth/api-keys/verifier.js';
import { bearerToken, type AuthenticatorDefinition, type AuthOutcome, type Authenticator } from '../authenticator.js';
import { apiKeySchema, type ApiKeyConfig } from './schema.js';

const MALFORMED: AuthOutcome = Object.freeze({
  failed: true as const,
  reason: 'malformed_key',
  detail: 'The API key is not well-formed.',
});
const UNAVAILABLE: AuthOutcome = Object.freeze({
  failed: true as const,
  reason: 'key_store_unavailable',
  detail: 'The API key could not be checked right now.',
  unavailable: true,
});
const DETAILS = {
  unknown_key: 'The API key is not valid.',
  revoked_key: 'The API key has been revoked.',
  expired_key: 'The API key has expired.',
  unknown_consumer: 'The API key belongs to no known consumer.',
  consumer_disabled: 'The consumer of this API key is disabled.',
} as const;

function outcomeOf(check: KeyCheck): AuthOutcome {
  if (check.ok) return check.identity;
  return { failed: true, reason: check.reason, detail: DETAILS[check.reason] };
}

/** A check made on a cached record served past its refresh time (store unreachable) marks the request. */
function staleAware(ctx: RequestContext, check: KeyCheck): AuthOutcome {
  if (check.stale === true) ctx.markStale('api_key');
  return outcomeOf(check);
}

class ApiKeyAuthenticator implements Authenticator {
  readonly method = 'api-key';
  readonly challenge: string;
  private readonly header: string;
  private readonly queryParam: string | undefined;

  constructor(
    private readonly config: ApiKeyConfig,
    private readonly auth: AuthService,
  ) {
    this.header = config.header.toLowerCase();
    this.queryParam = config.query_param;
    this.challenge = `ApiKey header="${this.header}"`;
  }

  authenticate(ctx: RequestContext): AuthOutcome | Promise<AuthOutcome> {
    let key = ctx.header(this.header);
    let from = this.header;
    if (key === undefined && this.config.bearer) {
      const token = bearerToken(ctx.header('authorization'));
      if (token?.startsWith(KEY_PREFIX)) {
        key = token;
        from = 'authorization';
      }
    }
    if (key === undefined && this.queryParam !== undefined && ctx.query !== '') {
      const value = new URLSearchParams(ctx.query).get(this.queryParam);
      if (value !== null) {
        key = value;
        from = '';
      }
    }
    if (key === undefined) return undefined;
    if (this.config.hide_credentials) {
      if (from !== '') ctx.removeUpstreamHeader(from);
      else ctx.removeUpstreamQueryParam(this.queryParam!);
    }
    // Cached keys skip the checksum (the hash comparison decides); others are checked before any store lookup.
    const shapedId = lookupIdOf(key);
    if (shapedId !== undefined) {
      const cached = this.auth.keys.checkCached(shapedId, key);
      if (cached !== undefined) return outcomeOf(cached);
    }
    key = key.trim();
    const id = parseKey(key);
    if (id === undefined) return MALFORMED;
    const check = this.auth.keys.check(id, key);
    if (check instanceof Promise)
      return check.then(
        (c) => staleAware(ctx, c),
        () => UNAVAILABLE,
      );
    return staleAware(ctx, check);
  }
}

export const apiKeyAuthenticator: AuthenticatorDefinition<ApiKeyConfig> = {
  method: 'api-key',
  description:
    'API keys managed with `kycgate keys` (hashed in the store, cached in memory, revocation effective on the next request).',
  schema: apiKeySchema,
  create(config, setup) {
    return new ApiKeyAuthenticator(config, setup.services.get<AuthService>('auth'));
  },
};
