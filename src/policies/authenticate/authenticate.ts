/**
 * `authenticate` policy: establishes who the client is from the credentials the route accepts (API keys, JWTs,
 * opaque tokens, client certificates ...), sets `ctx.identity`, and refuses with 401 problem+json and
 * WWW-Authenticate challenges otherwise. Identity only ever comes from a verified credential, never from client
 * headers. Every outcome is reported as an `auth.success` / `auth.failure` event with a stable reason code.
 */
import { problem, type Problem } from '../../pipeline/problem.js';
import type { Identity, RequestContext } from '../../pipeline/context.js';
import type { PolicyDefinition, PolicyInstance, PolicyResult } from '../../pipeline/policy.js';
import type { EventBus } from '../../pipeline/events.js';
import { ConfigError } from '../../config/load.js';
import { isAuthFailure, type AuthFailure, type AuthOutcome, type Authenticator } from './authenticator.js';
import { authenticatorFor } from './registry.js';
import { authenticateSchema, type AuthenticateConfig } from './schema.js';
import { FailureThrottle, serveFailureCounts } from './failure-throttle.js';
import type { RedisService } from '../../shared/redis.js';
import type { ClusterChannel } from '../../pipeline/cluster.js';
import type { AuthService } from '../../auth/subsystem.js';

const MISSING: AuthFailure = Object.freeze({
  failed: true as const,
  reason: 'missing_credential',
  detail: 'This route requires authentication.',
});

/** Identity headers this policy may send upstream; the core strips them from every client request. */
const IDENTITY_HEADERS = ['x-consumer', 'x-consumer-*', 'x-auth-method'] as const;
const PRINTABLE = /^[\x20-\x7e]*$/;

class AuthenticatePolicy implements PolicyInstance {
  readonly injectsHeaders = IDENTITY_HEADERS;
  /** A decision holds while the credential does: a front proxy reuses it no longer than the credential's expiry. */
  readonly decisionReuse = 'reusable';
  private readonly upstreamHeaders: boolean;
  private readonly challenges: string[];
  private readonly invalidTokenChallenges: string[];
  private readonly throttle: FailureThrottle | undefined;

  constructor(
    private readonly authenticators: readonly Authenticator[],
    private readonly mode: 'any' | 'all',
    private readonly events: EventBus,
    private readonly routeName: string,
    config: AuthenticateConfig,
    throttle: FailureThrottle | undefined,
  ) {
    this.upstreamHeaders = config.upstream_headers;
    const realm = `realm="${config.realm}"`;
    const withRealm = (c: string) => (c.includes('realm=') ? c : c.includes(' ') ? `${c}, ${realm}` : `${c} ${realm}`);
    // Several methods may share a scheme (api-key in a bearer header, JWT, introspection): one challenge per scheme.
    const seen = new Set<string>();
    this.challenges = [];
    for (const a of authenticators) {
      const c = withRealm(a.challenge);
      const scheme = c.split(' ')[0]!.toLowerCase();
      if (seen.has(scheme)) continue;
      seen.add(scheme);
      this.challenges.push(c);
    }
    // RFC 6750 section 3.1: a bearer token that was presented and refused is reported as invalid_token.
    this.invalidTokenChallenges = this.challenges.map((c) =>
      /^bearer\b/i.test(c) ? `${c}, error="invalid_token"` : c,
    );
    this.throttle = throttle;
  }

  onRequest(ctx: RequestContext): PolicyResult | Promise<PolicyResult> {
    if (this.throttle !== undefined) {
      const wait = this.throttle.retryAfter(ctx.clientIp);
      if (wait > 0) {
        this.events.emit({
          type: 'auth.failure',
          requestId: ctx.id,
          route: this.routeName,
          outcome: 'throttled',
          data: { client_ip: ctx.clientIp },
        });
        return problem('rate-limited', {
          detail: 'Too many failed authentication attempts from this address.',
          headers: { 'retry-after': wait },
        });
      }
    }
    return this.mode === 'any' ? this.any(ctx, 0) : this.all(ctx, 0, undefined);
  }

  /** The first authenticator that finds a credential decides. */
  private any(ctx: RequestContext, from: number): PolicyResult | Promise<PolicyResult> {
    const list = this.authenticators;
    for (let i = from; i < list.length; i++) {
      const outcome = list[i]!.authenticate(ctx);
      if (outcome === undefined) continue;
      if (outcome instanceof Promise) {
        const next = i + 1;
        return outcome.then((o) => (o === undefined ? this.any(ctx, next) : this.settle(ctx, list[i]!, o)));
      }
      return this.settle(ctx, list[i]!, outcome);
    }
    return this.refuse(ctx, undefined, MISSING);
  }

  /** Every authenticator must succeed; identities are merged in method order. */
  private all(ctx: RequestContext, from: number, merged: Identity | undefined): PolicyResult | Promise<PolicyResult> {
    const list = this.authenticators;
    for (let i = from; i < list.length; i++) {
      const outcome = list[i]!.authenticate(ctx);
      if (outcome instanceof Promise) {
        const next = i + 1;
        return outcome.then((o) => {
          const step = this.step(ctx, list[i]!, o, merged);
          return step instanceof Refusal ? step.problem : this.all(ctx, next, step);
        });
      }
      const step = this.step(ctx, list[i]!, outcome, merged);
      if (step instanceof Refusal) return step.problem;
      merged = step;
    }
    return this.settle(ctx, undefined, merged!);
  }

  private step(
    ctx: RequestContext,
    a: Authenticator,
    outcome: AuthOutcome,
    merged: Identity | undefined,
  ): Identity | Refusal {
    if (outcome === undefined)
      return new Refusal(
        this.refuse(ctx, a, { ...MISSING, detail: `This route requires ${a.method} authentication.` }),
      );
    if (isAuthFailure(outcome)) return new Refusal(this.refuse(ctx, a, outcome));
    return merged === undefined ? outcome : mergeIdentities(merged, outcome);
  }

  private settle(ctx: RequestContext, a: Authenticator | undefined, outcome: Identity | AuthFailure): PolicyResult {
    if (isAuthFailure(outcome)) return this.refuse(ctx, a, outcome);
    ctx.identity = outcome;
    if (outcome.expiresAt !== undefined) ctx.limitCacheUntil(outcome.expiresAt);
    if (this.upstreamHeaders) setIdentityHeaders(ctx, outcome);
    this.events.emit({
      type: 'auth.success',
      requestId: ctx.id,
      route: this.routeName,
      outcome: outcome.method,
      data: successData(outcome),
    });
    return undefined;
  }

  private refuse(ctx: RequestContext, a: Authenticator | undefined, failure: AuthFailure): Problem {
    this.events.emit({
      type: 'auth.failure',
      requestId: ctx.id,
      route: this.routeName,
      outcome: failure.reason,
      data: { method: a?.method, client_ip: ctx.clientIp },
    });
    ctx.decision = {
      outcome: 'unauthenticated',
      policy: 'authenticate',
      ...(a ? { rule: a.method } : {}),
      reason: failure.reason,
    };
    if (failure.unavailable) {
      return problem('service-unavailable', {
        detail: failure.detail ?? 'Credentials cannot be checked right now.',
        extensions: { reason: failure.reason },
        headers: { 'retry-after': 1 },
      });
    }
    // A request without any credential is not a guess; only refused credentials count towards the throttle.
    const missing = failure.reason === 'missing_credential';
    if (!missing && this.throttle !== undefined) this.throttle.recordFailure(ctx.clientIp);
    const challenges = missing ? this.challenges : this.invalidTokenChallenges;
    return problem('unauthenticated', {
      detail: failure.detail ?? 'The credential was not accepted.',
      extensions: { reason: failure.reason },
      headers: { 'www-authenticate': challenges.length === 1 ? challenges[0]! : challenges },
    });
  }

  close(): void {
    for (const a of this.authenticators) void Promise.resolve(a.close?.()).catch(() => undefined);
  }
}

/** Upstream identity headers of shared (frozen) identities, computed once per identity. */
/**
 * The `auth.success` event's data, made once per identity: a cached credential yields the same identity object on
 * every request, so a request allocates no data object of its own. Frozen: listeners only read event data.
 */
const successDataCache = new WeakMap<Identity, Record<string, unknown>>();

function successData(identity: Identity): Record<string, unknown> {
  let data = successDataCache.get(identity);
  if (data === undefined) {
    data = Object.freeze({
      consumer: identity.consumer,
      credential_id: identity.credentialId,
      spiffe_id: identity.spiffeId,
    });
    successDataCache.set(identity, data);
  }
  return data;
}

const identityHeaderCache = new WeakMap<Identity, ReadonlyArray<readonly [string, string]>>();

function setIdentityHeaders(ctx: RequestContext, identity: Identity): void {
  let headers = identityHeaderCache.get(identity);
  if (headers === undefined) {
    headers = identityHeadersOf(identity);
    // Cached identities are frozen and shared by every request with the same credential; others are per request.
    if (Object.isFrozen(identity)) identityHeaderCache.set(identity, headers);
  }
  ctx.addUpstreamHeaders(headers);
}

function identityHeadersOf(identity: Identity): Array<readonly [string, string]> {
  const out: Array<readonly [string, string]> = [['x-auth-method', identity.method]];
  if (identity.consumer !== undefined && PRINTABLE.test(identity.consumer)) out.push(['x-consumer', identity.consumer]);
  const scopes = identity.scopes.join(' ');
  if (scopes !== '' && PRINTABLE.test(scopes)) out.push(['x-consumer-scopes', scopes]);
  const groups = identity.groups?.join(',');
  if (groups !== undefined && groups !== '' && PRINTABLE.test(groups)) out.push(['x-consumer-groups', groups]);
  return out;
}

/** A refusal inside the `all` loop, told apart from an Identity with one instanceof test. */
class Refusal {
  constructor(readonly problem: Problem) {}
}

function union(a: readonly string[] | undefined, b: readonly string[] | undefined): readonly string[] | undefined {
  if (a === undefined || a.length === 0) return b;
  if (b === undefined || b.length === 0) return a;
  return [...new Set([...a, ...b])];
}

/** Merges identities proven by several methods: first value wins for single fields, lists are united. */
export function mergeIdentities(a: Identity, b: Identity): Identity {
  const groups = union(a.groups, b.groups);
  const claims = a.claims && b.claims ? { ...b.claims, ...a.claims } : (a.claims ?? b.claims);
  const merged: Identity = {
    ...b,
    ...stripUndefined(a),
    method: `${a.method}+${b.method}`,
    scopes: union(a.scopes, b.scopes) ?? [],
  };
  if (groups !== undefined) merged.groups = groups;
  if (claims !== undefined) merged.claims = claims;
  if (a.expiresAt !== undefined || b.expiresAt !== undefined)
    merged.expiresAt = Math.min(a.expiresAt ?? Infinity, b.expiresAt ?? Infinity);
  return merged;
}

function stripUndefined(identity: Identity): Partial<Identity> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(identity)) if (v !== undefined) out[k] = v;
  return out as Partial<Identity>;
}

export const authenticatePolicy: PolicyDefinition<AuthenticateConfig> = {
  name: 'authenticate',
  description:
    'Authenticates the client (API key, JWT/OIDC, token introspection, mTLS, SPIFFE) and sets the request identity; 401 otherwise.',
  phase: 'authenticate',
  schema: authenticateSchema,
  primary: serveFailureCounts,
  async create(config, setup) {
    const authenticators: Authenticator[] = [];
    try {
      for (let i = 0; i < config.methods.length; i++) {
        const entry = config.methods[i]!;
        const method = Object.keys(entry)[0]!;
        const definition = authenticatorFor(method);
        if (!definition)
          throw new ConfigError([`route "${setup.routeName}": authenticate.methods[${i}]: unknown method "${method}"`]);
        try {
          authenticators.push(await definition.create(entry[method] ?? {}, setup));
        } catch (err) {
          const reasons = err instanceof ConfigError ? err.problems : [(err as Error).message];
          throw new ConfigError(
            reasons.map((r) => `route "${setup.routeName}": authenticate.methods[${i}].${method}: ${r}`),
          );
        }
      }
    } catch (err) {
      for (const a of authenticators) await Promise.resolve(a.close?.()).catch(() => undefined);
      throw err;
    }
    // One throttle per limit setting for the whole process, kept across reloads: guesses spread over several
    // routes count together, and a reload does not reset an address that is being throttled.
    const limit = config.failure_limit;
    const throttle = limit.enabled
      ? setup.services.get<AuthService>('auth').shared(
          `failure-throttle|${limit.max_failures}|${limit.window_s}`,
          () =>
            new FailureThrottle(limit.max_failures, limit.window_s * 1000, {
              redis: setup.services.find<RedisService>('redis'),
              cluster: setup.services.find<ClusterChannel>('cluster'),
            }),
        )
      : undefined;
    return new AuthenticatePolicy(
      authenticators,
      config.mode,
      setup.services.events,
      setup.routeName,
      config,
      throttle,
    );
  },
};
