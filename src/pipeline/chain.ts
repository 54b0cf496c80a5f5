/**
 * A route's policies, compiled once per config: request hooks ordered by phase (then by config order), and the
 * response and completion hooks. Running it is a loop that only goes asynchronous when a policy returns a promise.
 */
import { Problem } from './problem.js';
import type { RequestContext } from './context.js';
import {
  REQUEST_PHASES,
  type PolicyDefinition,
  type PolicyInstance,
  type PolicyResult,
  type ResponseBodyTransform,
  type ResponseHead,
} from './policy.js';

export interface ChainEntry {
  readonly name: string;
  readonly definition: PolicyDefinition;
  readonly instance: PolicyInstance;
}

/** Told about every policy that threw or rejected (the request is answered 500 without detail). */
export type PolicyErrorReporter = (ctx: RequestContext, policy: string, error: unknown) => void;

export class PolicyChain {
  readonly entries: readonly ChainEntry[];
  private readonly request: ReadonlyArray<ChainEntry>;
  private readonly response: readonly PolicyInstance[];
  private readonly complete: readonly PolicyInstance[];
  /** Response body transforms in policy order (empty for almost every route: then nothing is buffered). */
  readonly bodyTransforms: readonly ResponseBodyTransform[];
  /** Whether every policy declared its decisions reusable by a front proxy (a route without policies: yes). */
  readonly decisionsReusable: boolean;

  constructor(
    entries: ChainEntry[],
    private readonly report: PolicyErrorReporter = () => undefined,
  ) {
    const order = (e: ChainEntry) => REQUEST_PHASES.indexOf(e.definition.phase);
    // Array.prototype.sort is stable: policies in one phase keep their config order.
    this.entries = [...entries].sort((a, b) => order(a) - order(b));
    this.request = this.entries.filter((e) => typeof e.instance.onRequest === 'function');
    this.response = this.entries.map((e) => e.instance).filter((i) => typeof i.onResponse === 'function');
    this.complete = this.entries.map((e) => e.instance).filter((i) => typeof i.onComplete === 'function');
    this.bodyTransforms = this.entries
      .map((e) => e.instance.transformResponseBody)
      .filter((t): t is ResponseBodyTransform => t !== undefined);
    this.decisionsReusable = this.entries.every((e) => e.instance.decisionReuse === 'reusable');
  }

  get hasBodyTransforms(): boolean {
    return this.bodyTransforms.length > 0;
  }

  get hasResponseHooks(): boolean {
    return this.response.length > 0;
  }

  get hasCompleteHooks(): boolean {
    return this.complete.length > 0;
  }

  /**
   * Runs request hooks from index `from`. Returns undefined to forward, a Problem or Reply to answer, or a
   * promise of either when some policy went asynchronous.
   */
  run(ctx: RequestContext, from = 0): PolicyResult | Promise<PolicyResult> {
    const list = this.request;
    for (let i = from; i < list.length; i++) {
      let result: PolicyResult | Promise<PolicyResult>;
      try {
        result = list[i]!.instance.onRequest!(ctx);
      } catch (err) {
        return this.failed(ctx, list[i]!.name, err);
      }
      if (result === undefined) continue;
      if (result instanceof Promise) {
        const next = i + 1;
        return result.then(
          (value) => (value === undefined ? this.run(ctx, next) : value),
          (err: unknown) => this.failed(ctx, list[i]!.name, err),
        );
      }
      return result;
    }
    return undefined;
  }

  onResponse(ctx: RequestContext, head: ResponseHead): void {
    const list = this.response;
    for (let i = 0; i < list.length; i++) list[i]!.onResponse!(ctx, head);
  }

  onComplete(ctx: RequestContext): void {
    const list = this.complete;
    for (let i = 0; i < list.length; i++) {
      try {
        list[i]!.onComplete!(ctx);
      } catch {
        // A completion hook must never break the response that already went out.
      }
    }
  }

  /** A policy that threw: reported (logged with the request id by the runtime) and answered 500 without detail. */
  private failed(ctx: RequestContext, policy: string, err: unknown): Problem {
    try {
      this.report(ctx, policy, err);
    } catch {
      // reporting must not change the answer
    }
    return new Problem('internal-error');
  }

  async close(): Promise<void> {
    await Promise.all(this.entries.map((e) => Promise.resolve(e.instance.close?.()).catch(() => undefined)));
  }
}
