/**
 * The head of an answer the gateway makes itself (a policy's problem or reply), built the same way for proxied and
 * decision requests: the answer's own headers (names lower-cased), then the headers policies set for the client,
 * then the route's response hooks, which see it exactly as they see an upstream's head.
 */
import type { ResponseHead } from '../pipeline/policy.js';
import type { RoutedContext } from '../routing/router.js';

export function answerHead(
  ctx: RoutedContext,
  status: number,
  headers: Readonly<Record<string, string | number | string[]>> | undefined,
  /** Runs after the answer's own headers, before the client headers and hooks (e.g. the decision mode's relay headers). */
  adjust?: (head: ResponseHead) => void,
): ResponseHead {
  const head: ResponseHead = { status, headers: new Map(), fromUpstream: false };
  if (headers)
    for (const k of Object.keys(headers)) {
      const v = headers[k]!;
      head.headers.set(k.toLowerCase(), typeof v === 'number' ? String(v) : v);
    }
  adjust?.(head);
  const extra = ctx.responseHeaderChanges;
  if (extra !== undefined) for (const [k, v] of extra) head.headers.set(k, v);
  if (ctx.route.chain.hasResponseHooks) ctx.route.chain.onResponse(ctx, head);
  return head;
}
