/**
 * `introspection` authenticator (RFC 7662): asks the authorization server whether an opaque bearer token is
 * active. Only `active: true` is accepted. Answers are cached by token hash: active tokens up to
 * min(exp, cache_ttl_s), inactive ones briefly; concurrent requests with one token share one call. An endpoint
 * that is down or slow answers 503 (the token is not judged), never 401 and never a crash.
 *
 * An active token is also remembered on the client connection (credential memo) for as long as its cache entry
 * is valid: the same token again on that connection costs one constant-time comparison, no digest and no lookup.
 */
import { hash } from 'node:crypto';
import type { Identity, RequestContext } from '../../../pipeline/context.js';
import type { AuthService } from '../../../auth/subsystem.js';
import type { ConsumerDirectory } from '../../../auth/consumers.js';
import {
  bearerToken,
  identityFromClaims,
  isAuthFailure,
  isCompactJws,
  type AuthenticatorDefinition,
  type AuthFailure,
  type AuthOutcome,
  type Authenticator,
} from '../authenticator.js';
import { checkFetchUrl } from '../jwt/remote-key-set.js';
import { introspectionSchema, type IntrospectionConfig } from './schema.js';
import { recall, remember } from '../../../shared/credential-memo.js';
import { KEY_PREFIX } from '../../../auth/api-keys/format.js';
import { readBounded } from '../../../shared/bounded-body.js';

const INACTIVE: AuthFailure = Object.freeze({
  failed: true as const,
  reason: 'inactive_token',
  detail: 'The token is not active.',
});
const UNAVAILABLE: AuthFailure = Object.freeze({
  failed: true as const,
  reason: 'introspection_unavailable',
  detail: 'The token cannot be checked right now.',
  unavailable: true,
});
const NOT_JUDGED = Object.freeze({ outcome: UNAVAILABLE, until: 0 });

interface CacheEntry {
  readonly outcome: Identity | AuthFailure;
  readonly until: number;
}

/** What one call to the endpoint found, and until when it is cached (0: not cached). */
interface Answer {
  readonly outcome: AuthOutcome;
  readonly until: number;
}

/** RFC 6749 section 2.3.1: client id and secret are form-urlencoded before Basic encoding. */
function basicCredentials(id: string, secret: string): string {
  const enc = (s: string) => encodeURIComponent(s).replace(/%20/g, '+');
  return 'Basic ' + Buffer.from(`${enc(id)}:${enc(secret)}`).toString('base64');
}

class IntrospectionAuthenticator implements Authenticator {
  readonly method = 'introspection';
  readonly challenge = 'Bearer';
  private readonly cache = new Map<string, CacheEntry>();
  private readonly inflight = new Map<string, Promise<Answer>>();
  private readonly secret: string;
  /** Calls made to the endpoint (for metrics and tests). */
  calls = 0;

  constructor(
    private readonly config: IntrospectionConfig,
    secret: string,
    private readonly consumers: ConsumerDirectory,
  ) {
    this.secret = secret;
  }

  authenticate(ctx: RequestContext): AuthOutcome | Promise<AuthOutcome> {
    const token = bearerToken(ctx.header('authorization'));
    // API keys and (when configured) JWTs are other methods' tokens: never sent to the authorization server.
    if (token === undefined || token.startsWith(KEY_PREFIX)) return undefined;
    if (this.config.skip_jwts && isCompactJws(token)) return undefined;

    // The same active token again on this connection: one constant-time comparison. Otherwise its digest and the cache.
    const socket = ctx.req?.socket;
    const recalled = recall<Identity>(socket, this, token);
    if (recalled !== undefined) return recalled;
    const key = hash('sha256', token, 'base64');
    const hit = this.cache.get(key);
    if (hit !== undefined) {
      if (Date.now() < hit.until) {
        if (!isAuthFailure(hit.outcome)) remember(socket, this, token, hit.outcome, hit.until);
        return hit.outcome;
      }
      this.cache.delete(key);
    }
    let pending = this.inflight.get(key);
    if (pending === undefined) {
      pending = this.introspect(token, key).finally(() => this.inflight.delete(key));
      this.inflight.set(key, pending);
    }
    return pending.then((answer) => {
      if (answer.until > 0 && answer.outcome !== undefined && !isAuthFailure(answer.outcome))
        remember(socket, this, token, answer.outcome, answer.until);
      return answer.outcome;
    });
  }

  private async introspect(token: string, key: string): Promise<Answer> {
    const c = this.config;
    const form = new URLSearchParams({ token, token_type_hint: 'access_token' });
    const headers: Record<string, string> = {
      'content-type': 'application/x-www-form-urlencoded',
      accept: 'application/json',
    };
    if (c.auth_method === 'client_secret_basic') headers.authorization = basicCredentials(c.client_id, this.secret);
    else {
      form.set('client_id', c.client_id);
      form.set('client_secret', this.secret);
    }
    let body: Record<string, unknown>;
    try {
      this.calls++;
      const response = await fetch(c.endpoint, {
        method: 'POST',
        headers,
        body: form.toString(),
        signal: AbortSignal.timeout(c.timeout_ms),
        redirect: 'error',
      });
      if (response.status !== 200) {
        await response.body?.cancel().catch(() => undefined);
        return NOT_JUDGED;
      }
      // Bounded while reading (an answer over 64 KiB is not judged, and not read further).
      const text = await readBounded(response.body, 65_536);
      const parsed = JSON.parse(text) as unknown;
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return NOT_JUDGED;
      body = parsed as Record<string, unknown>;
    } catch {
      return NOT_JUDGED;
    }
    const now = Date.now();
    const outcome = this.judge(body, now);
    let until = 0;
    if (isAuthFailure(outcome)) {
      if (c.negative_cache_ttl_s > 0) until = this.remember(key, outcome, now + c.negative_cache_ttl_s * 1000);
    } else if (c.cache_ttl_s > 0) {
      const exp = typeof body.exp === 'number' ? body.exp * 1000 : Number.POSITIVE_INFINITY;
      until = this.remember(key, outcome, Math.min(now + c.cache_ttl_s * 1000, exp));
    }
    return { outcome, until };
  }

  private judge(body: Record<string, unknown>, now: number): Identity | AuthFailure {
    const c = this.config;
    if (body.active !== true) return INACTIVE;
    if (typeof body.exp === 'number' && body.exp * 1000 <= now) return INACTIVE;
    if (typeof body.nbf === 'number' && body.nbf * 1000 > now + 30_000) return INACTIVE;
    if (c.issuer !== undefined && body.iss !== c.issuer)
      return { failed: true, reason: 'wrong_issuer', detail: 'The token issuer is not trusted here.' };
    if (c.audiences !== undefined) {
      const aud = Array.isArray(body.aud) ? body.aud : [body.aud];
      if (!aud.some((a) => typeof a === 'string' && c.audiences!.includes(a)))
        return { failed: true, reason: 'wrong_audience', detail: 'The token is not meant for this API.' };
    }
    // Checked again once the answer leaves the cache (at once without a cache): a decision is reused no longer.
    const exp = typeof body.exp === 'number' ? body.exp * 1000 : Number.POSITIVE_INFINITY;
    const expiresAt = c.cache_ttl_s > 0 ? Math.min(now + c.cache_ttl_s * 1000, exp) : now;
    return identityFromClaims('introspection', body, c, this.consumers, expiresAt);
  }

  /** Caches an answer; returns `until`, or 0 when nothing may be cached (cache_max_entries: 0). */
  private remember(key: string, outcome: Identity | AuthFailure, until: number): number {
    if (this.cache.size >= this.config.cache_max_entries) {
      const oldest = this.cache.keys().next().value;
      if (oldest === undefined) return 0;
      this.cache.delete(oldest);
    }
    this.cache.set(key, { outcome, until });
    return until;
  }
}

export const introspectionAuthenticator: AuthenticatorDefinition<IntrospectionConfig> = {
  method: 'introspection',
  description: 'Opaque OAuth2 tokens checked by RFC 7662 token introspection, with positive and negative caching.',
  schema: introspectionSchema,
  create(config, setup) {
    checkFetchUrl(config.endpoint, 'introspection endpoint');
    const auth = setup.services.get<AuthService>('auth');
    return new IntrospectionAuthenticator(config, auth.resolveSecret(config.client_secret), auth.consumers);
  },
};
