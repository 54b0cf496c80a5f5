/**
 * network-rules: who may reach a route at all, checked before authentication: client address allow and deny
 * lists, User-Agent rules, allowed methods (405) and request body media types (415). Everything is compiled in
 * create(); a request costs a few BlockList and regex checks. Answers never echo the address or header checked.
 */
import type { DecisionReuse, PolicyDefinition, PolicyInstance } from '../../pipeline/policy.js';
import type { RequestContext } from '../../pipeline/context.js';
import { problem, type Problem } from '../../pipeline/problem.js';
import type { EventBus } from '../../pipeline/events.js';
import { networkRulesSchema, type NetworkRulesConfig } from './schema.js';
import { AddressList } from '../../shared/address-list.js';
import { hasBody, mediaTypeOf, MediaTypeMatcher } from '../../shared/media-type.js';

export const networkRulesPolicy: PolicyDefinition<NetworkRulesConfig> = {
  name: 'network-rules',
  description:
    'Allows or denies clients by IP address or range and User-Agent, and restricts methods and request content types.',
  phase: 'admit',
  schema: networkRulesSchema,
  create(config, setup): PolicyInstance {
    return new NetworkRules(config, setup.services.events);
  },
};

function compileRegexes(sources: readonly string[], what: string): RegExp[] {
  return sources.map((s) => {
    try {
      return new RegExp(s, 'i');
    } catch {
      throw new Error(`${what}: "${s}" is not a valid regular expression`);
    }
  });
}

class NetworkRules implements PolicyInstance {
  /**
   * Address rules decide on the client address, which no front proxy keys its cache on: asked every time. User-agent
   * and content-type rules make the answer vary on those headers.
   */
  readonly decisionReuse: DecisionReuse;
  private readonly varies: readonly string[];
  private readonly allow: AddressList;
  private readonly deny: AddressList;
  private readonly uaAllow: RegExp[];
  private readonly uaDeny: RegExp[];
  private readonly methods: ReadonlySet<string> | undefined;
  private readonly allowHeader: string;
  private readonly contentTypes: MediaTypeMatcher | undefined;
  private readonly forbiddenAddress: Problem;
  private readonly forbiddenAgent: Problem;
  private readonly wrongMethod: Problem;
  private readonly wrongType: Problem;

  constructor(
    private readonly config: NetworkRulesConfig,
    private readonly events: EventBus,
  ) {
    this.allow = new AddressList(config.allow, 'network-rules.allow');
    this.deny = new AddressList(config.deny, 'network-rules.deny');
    this.uaAllow = compileRegexes(config.user_agents.allow, 'network-rules.user_agents.allow');
    this.uaDeny = compileRegexes(config.user_agents.deny, 'network-rules.user_agents.deny');
    const methods = new Set(config.methods);
    if (methods.has('GET')) methods.add('HEAD');
    this.methods = methods.size === 0 ? undefined : methods;
    this.allowHeader = [...methods].join(', ');
    this.contentTypes = config.content_types.length === 0 ? undefined : new MediaTypeMatcher(config.content_types);
    this.decisionReuse = config.allow.length > 0 || config.deny.length > 0 ? 'per-request' : 'reusable';
    const varies: string[] = [];
    if (this.uaAllow.length > 0 || this.uaDeny.length > 0 || config.user_agents.require) varies.push('user-agent');
    if (this.contentTypes !== undefined) varies.push('content-type');
    this.varies = varies;
    // Answers are built once: they never contain anything from the request.
    this.forbiddenAddress = problem('forbidden', {
      detail: 'Requests from this network address are not allowed on this route.',
    });
    this.forbiddenAgent = problem('forbidden', {
      detail: 'Requests from this client software are not allowed on this route.',
    });
    this.wrongMethod = problem('method-not-allowed', {
      detail: 'This method is not allowed on this route.',
      headers: { allow: this.allowHeader },
    });
    this.wrongType = problem('unsupported-media-type', {
      detail: `Request bodies must be one of: ${config.content_types.join(', ')}.`,
      headers: { 'accept-post': config.content_types.join(', ') },
    });
  }

  onRequest(ctx: RequestContext): Problem | undefined {
    if (ctx.frontProxy !== undefined) for (let i = 0; i < this.varies.length; i++) ctx.varyOn(this.varies[i]!);
    const ip = ctx.clientIp;
    if (this.deny.has(ip) || (!this.allow.empty && !this.allow.has(ip)))
      return this.refuse(ctx, this.forbiddenAddress, 'address');
    if (this.uaAllow.length > 0 || this.uaDeny.length > 0 || this.config.user_agents.require) {
      const ua = ctx.header('user-agent');
      if (ua === undefined || ua === '') {
        if (this.config.user_agents.require || this.uaAllow.length > 0)
          return this.refuse(ctx, this.forbiddenAgent, 'user-agent');
      } else {
        for (let i = 0; i < this.uaDeny.length; i++)
          if (this.uaDeny[i]!.test(ua)) return this.refuse(ctx, this.forbiddenAgent, 'user-agent');
        if (this.uaAllow.length > 0 && !this.uaAllow.some((r) => r.test(ua)))
          return this.refuse(ctx, this.forbiddenAgent, 'user-agent');
      }
    }
    if (this.methods !== undefined && !this.methods.has(ctx.method))
      return this.refuse(ctx, this.wrongMethod, 'method');
    if (
      this.contentTypes !== undefined &&
      hasBody(ctx) &&
      !this.contentTypes.matches(mediaTypeOf(ctx.header('content-type')))
    ) {
      return this.refuse(ctx, this.wrongType, 'content-type');
    }
    return undefined;
  }

  private refuse(ctx: RequestContext, p: Problem, rule: string): Problem {
    ctx.decision = { outcome: 'refused', policy: 'network-rules', rule, reason: p.detail };
    this.events.emit({ type: 'network.refused', requestId: ctx.id, route: ctx.route.name, outcome: rule });
    return p;
  }
}
