/**
 * `authorize` policy: decides whether the authenticated identity may use the route, by scopes, consumer names,
 * groups and SPIFFE IDs. No identity → 401 (the route lacks an `authenticate` policy or it did not run); an
 * identity that is valid but not allowed → 403 problem+json naming what was missing (never what was present).
 */
import { problem, type Problem } from '../../pipeline/problem.js';
import type { Identity, RequestContext } from '../../pipeline/context.js';
import type { PolicyDefinition, PolicyInstance } from '../../pipeline/policy.js';
import type { EventBus } from '../../pipeline/events.js';
import { authorizeSchema, type AuthorizeConfig } from './schema.js';
import { SpiffeIdMatcher } from './spiffe-matcher.js';

class AuthorizePolicy implements PolicyInstance {
  /** Decides on the identity alone, which the credential in the proxy's cache key stands for. */
  readonly decisionReuse = 'reusable';
  private readonly allOf: readonly string[];
  private readonly anyOf: readonly string[];
  private readonly consumers: ReadonlySet<string> | undefined;
  private readonly groups: ReadonlySet<string> | undefined;
  private readonly spiffe: SpiffeIdMatcher | undefined;
  private readonly scopeChallenge: string;

  constructor(
    config: AuthorizeConfig,
    private readonly events: EventBus,
    private readonly routeName: string,
  ) {
    this.allOf = config.scopes?.all_of ?? [];
    this.anyOf = config.scopes?.any_of ?? [];
    this.consumers = config.consumers ? new Set(config.consumers) : undefined;
    this.groups = config.groups ? new Set(config.groups) : undefined;
    this.spiffe = config.spiffe_ids ? new SpiffeIdMatcher(config.spiffe_ids) : undefined;
    this.scopeChallenge = `Bearer error="insufficient_scope", scope="${[...this.allOf, ...this.anyOf].join(' ')}"`;
  }

  onRequest(ctx: RequestContext): Problem | undefined {
    const identity = ctx.identity;
    if (identity === undefined) {
      // RFC 9110 section 15.5.2: a 401 always carries a challenge.
      return this.deny(
        ctx,
        'no_identity',
        problem('unauthenticated', {
          detail: 'This route requires authentication.',
          extensions: { reason: 'missing_credential' },
          headers: { 'www-authenticate': 'Bearer realm="kycgate"' },
        }),
      );
    }
    if (this.allOf.length > 0 || this.anyOf.length > 0) {
      const missing = this.missingScope(identity);
      if (missing !== undefined) {
        return this.deny(
          ctx,
          'insufficient_scope',
          problem('forbidden', {
            detail: missing,
            extensions: { reason: 'insufficient_scope' },
            headers: { 'www-authenticate': this.scopeChallenge },
          }),
        );
      }
    }
    if (this.consumers !== undefined && (identity.consumer === undefined || !this.consumers.has(identity.consumer))) {
      return this.deny(
        ctx,
        'consumer_not_allowed',
        problem('forbidden', {
          detail: 'This consumer may not use this route.',
          extensions: { reason: 'consumer_not_allowed' },
        }),
      );
    }
    if (this.groups !== undefined && !this.inGroup(identity)) {
      return this.deny(
        ctx,
        'group_not_allowed',
        problem('forbidden', {
          detail: 'None of the groups allowed on this route.',
          extensions: { reason: 'group_not_allowed' },
        }),
      );
    }
    if (this.spiffe !== undefined && !this.spiffe.matches(identity.spiffeId)) {
      return this.deny(
        ctx,
        'spiffe_id_not_allowed',
        problem('forbidden', {
          detail: 'This workload identity may not use this route.',
          extensions: { reason: 'spiffe_id_not_allowed' },
        }),
      );
    }
    return undefined;
  }

  private missingScope(identity: Identity): string | undefined {
    const scopes = identity.scopes;
    for (const s of this.allOf) if (!scopes.includes(s)) return `Scope "${s}" is required.`;
    if (this.anyOf.length > 0 && !this.anyOf.some((s) => scopes.includes(s)))
      return `One of the scopes ${this.anyOf.map((s) => `"${s}"`).join(', ')} is required.`;
    return undefined;
  }

  private inGroup(identity: Identity): boolean {
    const groups = identity.groups;
    if (groups === undefined) return false;
    for (const g of groups) if (this.groups!.has(g)) return true;
    return false;
  }

  private deny(ctx: RequestContext, reason: string, p: Problem): Problem {
    ctx.decision = { outcome: 'forbidden', policy: 'authorize', reason };
    this.events.emit({
      type: 'authz.denied',
      requestId: ctx.id,
      route: this.routeName,
      outcome: reason,
      data: { consumer: ctx.identity?.consumer, method: ctx.identity?.method },
    });
    return p;
  }
}

export const authorizePolicy: PolicyDefinition<AuthorizeConfig> = {
  name: 'authorize',
  description:
    'Allows the authenticated identity by scopes (all of / any of), consumers, groups and SPIFFE IDs; 403 otherwise.',
  phase: 'authorize',
  schema: authorizeSchema,
  create(config, setup) {
    return new AuthorizePolicy(config, setup.services.events, setup.routeName);
  },
};
