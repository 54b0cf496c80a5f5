/**
 * kyc-gate: lets a request through only when its end user holds the verification claims the route demands.
 *
 *   subject (pseudonymised) → cached verification state → rules in order (CEL) → allow | deny | require | reroute
 *
 * `require` with missing claims starts (or reuses) one provider session and answers 403 kyc-required with the
 * verification link (303 to it for browsers), 403 kyc-pending while the provider reviews, 403 kyc-denied when the
 * verification cannot grant the claims, or 503 kyc-provider-unavailable during a provider outage. Allowed
 * requests carry x-kyc-status, x-kyc-claims, x-subject-id and a signed x-kycgate-assertion upstream. An approved,
 * cached subject on a route whose rules do not read the body is decided synchronously.
 */
import { Problem, problem } from '../../pipeline/problem.js';
import { RequestField, type RequestContext } from '../../pipeline/context.js';
import type {
  DecisionReuse,
  PolicyDefinition,
  PolicyInstance,
  PolicyResult,
  PolicySetup,
  Reply,
} from '../../pipeline/policy.js';
import type { Services } from '../../pipeline/services.js';
import type { KycService } from '../../kyc/service.js';
import type { SessionOffer } from '../../kyc/sessions.js';
import type { CompiledWorkflow } from '../../kyc/setup.js';
import type { SubjectEntry } from '../../kyc/subject-cache.js';
import { kycGateSchema, type KycGateConfig } from './schema.js';
import { POLICY, compileKycGate, compiledRule, type CompiledRule } from './compile.js';
import { ruleContext, type HistoryReader } from './rules.js';
import type { SubjectSource } from './subject-source.js';
import {
  KYC_DENIED,
  KYC_GATE_PROBLEMS,
  KYC_PENDING,
  KYC_REQUIRED,
  SUBJECT_BLOCKED,
  stepUpProblem,
} from './problems.js';
import type { SubjectBlocks } from '../../kyc/blocks.js';
import { routingInput } from '../../kyc/routing.js';
import { StoreUnavailable } from '../../store/store.js';
import { browserPage } from './pages.js';
import { sessionFailure, stateFailure } from './failures.js';

/** What onComplete records into the subject's history once the upstream answered. */
interface PendingHistory {
  subject: string;
  values: Array<[string, number]>;
}

const PENDING_HISTORY = new RequestField<PendingHistory>('kyc-gate.history');

/** The answer to a blocked subject: one object, made once. */
const BLOCKED = problem(SUBJECT_BLOCKED, { detail: 'Requests for this user are blocked. Contact the operator.' });

class KycGate implements PolicyInstance {
  readonly injectsHeaders = ['x-kyc-*', 'x-subject-id', 'x-kycgate-assertion'];
  private readonly needsBody: boolean;
  private readonly needsAsync: boolean;
  private readonly variables: ReadonlySet<string>;
  private readonly history: HistoryReader;
  private readonly defaultRule: CompiledRule;
  /** Decision mode: the header the subject comes from, which a cached answer must vary on. */
  private readonly subjectHeader: string | undefined;
  /** Decision mode: conditions read inputs outside a front proxy's cache key (headers, address, time, history). */
  readonly decisionReuse: DecisionReuse;

  constructor(
    private readonly kyc: KycService,
    private readonly services: Services,
    private readonly source: SubjectSource,
    private readonly namespace: string,
    private readonly workflow: CompiledWorkflow,
    private readonly rules: readonly CompiledRule[],
    private readonly config: KycGateConfig,
    private readonly blocks: SubjectBlocks | undefined,
  ) {
    const variables = new Set<string>();
    let readsHistory = false;
    for (const r of rules) {
      if (!r.condition) continue;
      for (const v of r.condition.variables) variables.add(v);
      readsHistory ||= r.condition.readsHistory;
    }
    this.variables = variables;
    this.needsBody = variables.has('body') || config.record_history.length > 0;
    this.needsAsync = this.needsBody || readsHistory;
    this.subjectHeader =
      config.subject.from === 'header' && config.subject.header ? config.subject.header.toLowerCase() : undefined;
    // Rules reading what a front proxy's cache key does not hold (other headers, the client address, the clock, the
    // history, the body) decide every request anew.
    this.decisionReuse =
      readsHistory || this.needsBody || variables.has('headers') || variables.has('client_ip') || variables.has('now')
        ? 'per-request'
        : 'reusable';
    const records = kyc.records;
    this.history = {
      sum: (s, f, since) => records.historySum(s, f, since),
      count: (s, f, since) => records.historyCount(s, f, since),
    };
    this.onComplete = config.record_history.length > 0 ? (ctx) => this.recordHistory(ctx) : undefined;
    this.defaultRule = compiledRule(
      'default',
      undefined,
      config.required_claims.length > 0 ? 'require' : 'allow',
      config.required_claims,
      undefined,
    );
  }

  onRequest(ctx: RequestContext): PolicyResult | Promise<PolicyResult> {
    if (ctx.frontProxy !== undefined && this.subjectHeader !== undefined) ctx.varyOn(this.subjectHeader);
    const raw = this.source(ctx);
    if (raw === undefined) return this.noSubject(ctx);
    const subject = this.kyc.pseudonymise(this.namespace, raw);
    ctx.subject = subject;
    if (this.blocks?.has(subject) === true) return this.refuse(ctx, 'blocked', BLOCKED);
    const now = this.kyc.now();
    if (this.needsAsync) return this.decideWithBody(ctx, subject, now);
    const entry = this.kyc.cache.peek(subject, now);
    if (entry !== undefined) return this.decide(ctx, entry, now, undefined);
    return this.kyc.cache.fetch(subject).then(
      (loaded) => this.decide(ctx, loaded, now, undefined),
      (err: unknown) => this.storeFailed(ctx, err),
    );
  }

  /**
   * Completion hook, present only on routes that record history (`record_history`): the chain calls no hook at all
   * on the others.
   */
  readonly onComplete: ((ctx: RequestContext) => void) | undefined;

  private recordHistory(ctx: RequestContext): void {
    const pending = ctx.get(PENDING_HISTORY);
    if (pending === undefined || ctx.aborted || ctx.status === 0 || ctx.status >= 400) return;
    for (const [field, value] of pending.values) this.kyc.recordHistory(pending.subject, field, value);
  }

  private async decideWithBody(ctx: RequestContext, subject: string, now: number): Promise<PolicyResult> {
    let body: Record<string, unknown> | undefined;
    if (this.needsBody) {
      const raw = await ctx.readBody();
      if (raw instanceof Problem) return raw;
      if (raw.length > 0) {
        let parsed: unknown;
        try {
          parsed = JSON.parse(raw.toString('utf8'));
        } catch {
          parsed = undefined;
        }
        // The rules of this route read the body: one the gate cannot read must not slip past them.
        if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
          return this.refuse(
            ctx,
            'body',
            problem('bad-request', { detail: 'This route needs a JSON object body (or none).' }),
          );
        }
        body = parsed as Record<string, unknown>;
      }
    }
    let entry: SubjectEntry;
    try {
      entry = await this.kyc.subject(subject, now);
    } catch (err) {
      return this.storeFailed(ctx, err);
    }
    return this.decide(ctx, entry, now, body);
  }

  /** First matching rule decides; synchronous unless a condition reads the history. */
  private decide(
    ctx: RequestContext,
    entry: SubjectEntry,
    now: number,
    body: Record<string, unknown> | undefined,
  ): PolicyResult | Promise<PolicyResult> {
    // Reused no longer than the gateway trusts this state itself (never past an approval's expiry).
    if (ctx.frontProxy !== undefined) ctx.limitCacheUntil(entry.freshUntil);
    // Served past its refresh time: the store could not be reached to re-read it.
    if (now >= entry.freshUntil) ctx.markStale('kyc_subject');
    const rules = this.rules;
    let context: Record<string, unknown> | undefined;
    for (let i = 0; i < rules.length; i++) {
      const rule = rules[i]!;
      if (rule.condition !== undefined) {
        context ??= ruleContext(this.variables, ctx, entry, now, body, this.history);
        let matched: unknown;
        try {
          matched = rule.condition.test(context);
        } catch {
          continue; // a condition that cannot be evaluated (missing field) does not match
        }
        if (matched instanceof Promise) return this.decideFrom(ctx, entry, now, body, context, i, matched);
        if (matched !== true) continue;
      }
      return this.act(ctx, entry, now, rule, body);
    }
    return this.act(ctx, entry, now, this.defaultRule, body);
  }

  private async decideFrom(
    ctx: RequestContext,
    entry: SubjectEntry,
    now: number,
    body: Record<string, unknown> | undefined,
    context: Record<string, unknown>,
    index: number,
    first: Promise<unknown>,
  ): Promise<PolicyResult> {
    const rules = this.rules;
    for (let i = index; i < rules.length; i++) {
      const rule = rules[i]!;
      if (rule.condition !== undefined) {
        let matched: unknown;
        try {
          matched = await (i === index ? first : rule.condition.test(context));
        } catch (err) {
          // The history could not be read: the rule is not skipped (it may be the one that denies), nothing is decided.
          if (err instanceof StoreUnavailable) return this.storeFailed(ctx, err);
          continue;
        }
        if (matched !== true) continue;
      }
      return this.act(ctx, entry, now, rule, body);
    }
    return this.act(ctx, entry, now, this.defaultRule, body);
  }

  private act(
    ctx: RequestContext,
    entry: SubjectEntry,
    now: number,
    rule: CompiledRule,
    body: Record<string, unknown> | undefined,
  ): PolicyResult | Promise<PolicyResult> {
    switch (rule.action) {
      case 'allow':
        return this.pass(ctx, entry, now, rule, body);
      case 'deny':
        return this.refuse(
          ctx,
          rule.name,
          problem('forbidden', { detail: 'The KYC policy of this route refuses this request.' }),
        );
      case 'reroute':
        ctx.upstream = rule.group;
        return this.pass(ctx, entry, now, rule, body);
      case 'require': {
        const claims = rule.claims;
        let missing: string[] | undefined;
        for (let i = 0; i < claims.length; i++) if (!entry.claims.has(claims[i]!)) (missing ??= []).push(claims[i]!);
        if (missing === undefined) return this.pass(ctx, entry, now, rule, body);
        return this.challenge(ctx, entry, now, rule.name, missing, rule);
      }
    }
  }

  private pass(
    ctx: RequestContext,
    entry: SubjectEntry,
    now: number,
    rule: CompiledRule,
    body: Record<string, unknown> | undefined,
  ): PolicyResult | Promise<PolicyResult> {
    const decision = rule.passed;
    ctx.decision = decision;
    ctx.verification = decision;
    this.services.events.emit({
      type: 'kyc.decision',
      requestId: ctx.id,
      route: ctx.route.name,
      outcome: decision.outcome,
      data: { subject: entry.subject, rule: rule.name },
    });
    ctx.addUpstreamHeaders(entry.upstreamHeaders);
    if (body !== undefined && this.config.record_history.length > 0) this.keepHistory(ctx, entry.subject, body);
    // The audience is the upstream that will read the assertion; behind a front proxy (decision mode, no upstream
    // here) it is the route's name.
    const audience = ctx.upstream?.name ?? ctx.route.name;
    const header = entry.assertionHeaderFor(audience, now);
    if (header !== undefined) {
      ctx.addUpstreamHeader(header);
      return undefined;
    }
    const token = this.kyc.assertion(entry, audience, now);
    if (typeof token === 'string') {
      ctx.setUpstreamHeader('x-kycgate-assertion', token);
      return undefined;
    }
    return token.then((t) => {
      ctx.setUpstreamHeader('x-kycgate-assertion', t);
      return undefined;
    });
  }

  private keepHistory(ctx: RequestContext, subject: string, body: Record<string, unknown>): void {
    const values: Array<[string, number]> = [];
    for (const field of this.config.record_history) {
      const v = body[field];
      if (typeof v === 'number' && Number.isFinite(v)) values.push([field, v]);
    }
    if (values.length > 0) ctx.set(PENDING_HISTORY, { subject, values });
  }

  private challenge(
    ctx: RequestContext,
    entry: SubjectEntry,
    now: number,
    ruleName: string,
    missing: string[],
    rule?: CompiledRule,
  ): PolicyResult | Promise<PolicyResult> {
    const workflow = rule?.workflow ?? this.workflow;
    const wf = entry.workflows.get(workflow.name);
    const extensions = { missing_claims: missing, workflow: workflow.name };
    if (wf?.state === 'in_review') {
      return this.answer(
        ctx,
        entry,
        'pending',
        ruleName,
        missing,
        problem(KYC_PENDING, {
          detail: 'Your identity verification is being reviewed. Try again later.',
          extensions,
          headers: { 'retry-after': this.config.pending_retry_after_seconds },
        }),
      );
    }
    // Claims that lapsed (max_age, document expiry) are asked for again: a re-verification session, not a refusal.
    const lapsed = wf?.state === 'approved' && missing.every((c) => entry.expiredClaims.has(c));
    if (wf?.state === 'declined' || (wf?.state === 'approved' && !lapsed)) {
      return this.answer(
        ctx,
        entry,
        'denied',
        ruleName,
        missing,
        problem(KYC_DENIED, {
          detail:
            wf.state === 'declined'
              ? 'Your identity verification was declined.'
              : 'Your identity verification does not grant what this request needs.',
          extensions,
        }),
      );
    }
    if (
      wf?.sessionId &&
      wf.sealedSessionUrl &&
      wf.sessionStartedAt !== null &&
      wf.sessionStartedAt > now - workflow.sessionReuseMs &&
      // An unfinished session at a provider that is down is not offered: a fallback's is.
      this.kyc.providerAvailable(wf.provider)
    ) {
      const url = this.kyc.sessionUrl(wf.provider, wf.sessionId, wf.sealedSessionUrl);
      const offer = { sessionId: wf.sessionId, url, created: false };
      return this.challengeAnswer(ctx, entry, ruleName, missing, offer, workflow, rule?.level);
    }
    const routing =
      workflow.routing.length > 0 ? routingInput(ctx.headers, ctx.path, ctx.method, ctx.clientIp) : undefined;
    return this.kyc.offerSession(entry.subject, workflow, routing).then(
      (offer) => this.challengeAnswer(ctx, entry, ruleName, missing, offer, workflow, rule?.level),
      (err: unknown) => this.sessionFailed(ctx, entry, ruleName, missing, err),
    );
  }

  private challengeAnswer(
    ctx: RequestContext,
    entry: SubjectEntry,
    ruleName: string,
    missing: string[],
    offer: SessionOffer,
    workflow: CompiledWorkflow = this.workflow,
    level?: string,
  ): PolicyResult {
    if (this.config.redirect_browsers && (ctx.header('accept') ?? '').includes('text/html')) {
      this.record(ctx, entry.subject, 'challenge', ruleName, missing);
      return { status: 303, headers: { location: offer.url, 'cache-control': 'no-store', 'content-length': 0 } };
    }
    if (level !== undefined)
      return this.answer(
        ctx,
        entry,
        'step_up',
        ruleName,
        missing,
        stepUpProblem(offer, missing, workflow.name, level, this.kyc.levelOf(entry.claims)),
      );
    return this.answer(
      ctx,
      entry,
      'challenge',
      ruleName,
      missing,
      problem(KYC_REQUIRED, {
        detail: 'Verify your identity at verification_url, then retry the request.',
        extensions: {
          verification_url: offer.url,
          session_id: offer.sessionId,
          missing_claims: missing,
          workflow: workflow.name,
        },
      }),
    );
  }

  private sessionFailed(
    ctx: RequestContext,
    entry: SubjectEntry,
    ruleName: string,
    missing: string[],
    err: unknown,
  ): PolicyResult {
    const failure = sessionFailure(this.services.logger, ctx.id, err);
    return this.answer(ctx, entry, failure.outcome, ruleName, missing, failure.answer);
  }

  private answer(
    ctx: RequestContext,
    entry: SubjectEntry,
    outcome: string,
    ruleName: string,
    missing: string[],
    p: Problem,
  ): Problem | Reply {
    this.record(ctx, entry.subject, outcome, ruleName, missing);
    // A browser is shown a page, never raw JSON (challenges are redirects to the verification page).
    if (this.config.redirect_browsers && (ctx.header('accept') ?? '').includes('text/html'))
      return browserPage(p, ctx.id, this.workflow.applicationName);
    return p;
  }

  private record(
    ctx: RequestContext,
    subject: string | undefined,
    outcome: string,
    ruleName: string,
    missing?: string[],
  ): void {
    const decision = {
      outcome,
      policy: POLICY,
      rule: ruleName,
      ...(missing ? { reason: `missing claims: ${missing.join(', ')}` } : {}),
    };
    ctx.decision = decision;
    ctx.verification = decision;
    this.services.events.emit({
      type: 'kyc.decision',
      requestId: ctx.id,
      route: ctx.route.name,
      outcome,
      data: { ...(subject ? { subject } : {}), rule: ruleName, ...(missing ? { missing_claims: missing } : {}) },
    });
  }

  private refuse(ctx: RequestContext, ruleName: string, p: Problem): Problem {
    this.record(ctx, ctx.subject, 'deny', ruleName);
    return p;
  }

  private noSubject(ctx: RequestContext): Problem {
    this.record(ctx, undefined, 'deny', 'subject');
    return problem('unauthenticated', { detail: 'This route needs to know which user the request is for.' });
  }

  private storeFailed(ctx: RequestContext, err: unknown): Problem {
    this.record(ctx, ctx.subject, 'error', 'state');
    return stateFailure(this.services.logger, ctx.id, err);
  }
}

export const kycGatePolicy: PolicyDefinition<KycGateConfig> = {
  name: POLICY,
  description:
    "Gates the route on the end user's identity verification (KYC): rules decide which claims a request needs; missing claims start a verification session.",
  phase: 'gate',
  problems: KYC_GATE_PROBLEMS,
  schema: kycGateSchema,
  async create(config, setup: PolicySetup) {
    const { kyc, source, workflow, rules } = await compileKycGate(config, setup);
    return new KycGate(
      kyc,
      setup.services,
      source,
      config.subject.namespace,
      workflow,
      rules,
      config,
      setup.services.find<SubjectBlocks>('kyc-blocks'),
    );
  },
};
