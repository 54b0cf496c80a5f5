/**
 * Test-only policies that stand in for authentication, KYC gating and rate limiting in decision-service and
 * front-proxy tests: they answer with the same shapes (401 + WWW-Authenticate, 403 kyc-required + verification_url,
 * 429 + Retry-After/RateLimit) and inject the same kind of upstream headers. A gateway started with
 * POLICIES_WITH_DECISION_TESTS lets configs name them like bundled ones.
 */
import { POLICIES } from '../src/bundled.js';
import { problem, type Problem } from '../src/pipeline/problem.js';
import type { PolicyDefinition } from '../src/pipeline/policy.js';
import { KYC_REQUIRED } from '../src/policies/kyc-gate/problems.js';

export const VERIFICATION_URL = 'https://verify.example.test/session/abc123';

/** Bearer tokens: `good` (subject sub-1), `short` (valid 2 more seconds), `unverified` (KYC not done); others fail. */
const testIdentity: PolicyDefinition<Record<string, never>> = {
  name: 'test-identity',
  description: 'Test: bearer-token authentication that injects subject and KYC headers.',
  phase: 'authenticate',
  schema: { type: 'object', additionalProperties: false },
  create() {
    return {
      decisionReuse: 'reusable',
      injectsHeaders: ['x-kyc-*', 'x-subject-id', 'x-consumer'],
      onRequest(ctx) {
        const auth = ctx.header('authorization');
        const token = auth?.startsWith('Bearer ') ? auth.slice(7) : undefined;
        if (token !== 'good' && token !== 'short' && token !== 'unverified') {
          return problem('unauthenticated', {
            headers: { 'www-authenticate': 'Bearer realm="kycgate", error="invalid_token"' },
          });
        }
        ctx.identity = { method: 'test-bearer', consumer: 'app-1', scopes: [] };
        ctx.subject = token === 'unverified' ? 'sub-2' : 'sub-1';
        if (token === 'short') ctx.limitCacheTtl(2);
        ctx.setUpstreamHeader('x-subject-id', ctx.subject);
        ctx.setUpstreamHeader('x-consumer', 'app-1');
        ctx.setUpstreamHeader('x-kyc-status', token === 'unverified' ? 'none' : 'approved');
        ctx.decision = { outcome: 'allow', policy: 'test-identity' };
        return undefined;
      },
    };
  },
};

/** Challenges subjects whose KYC is not done, like the KYC gate does. */
const testKycChallenge: PolicyDefinition<Record<string, never>> = {
  name: 'test-kyc-challenge',
  description: 'Test: answers the kyc-required challenge for unverified subjects.',
  phase: 'gate',
  schema: { type: 'object', additionalProperties: false },
  create() {
    return {
      decisionReuse: 'reusable',
      onRequest(ctx) {
        if (ctx.subject !== 'sub-2') return undefined;
        ctx.decision = { outcome: 'challenge', policy: 'test-kyc-challenge' };
        return problem(KYC_REQUIRED, {
          status: 403,
          title: 'Identity verification required',
          detail: 'Complete identity verification to use this route.',
          extensions: { verification_url: VERIFICATION_URL },
        });
      },
    };
  },
};

/** Throttles requests carrying `x-test-burst`, and reports quota headers on the ones it lets through. */
const testRateLimit: PolicyDefinition<Record<string, never>> = {
  name: 'test-rate-limit',
  description: 'Test: 429 with Retry-After and RateLimit headers when x-test-burst is present.',
  phase: 'protect',
  schema: { type: 'object', additionalProperties: false },
  create() {
    return {
      decisionReuse: 'per-request',
      onRequest(ctx) {
        // A limiter must count every request: no front proxy may reuse its answers.
        ctx.limitCacheTtl(0);
        if (ctx.header('x-test-burst') === undefined) {
          ctx.setResponseHeader('ratelimit', '"default";r=9;t=60');
          return undefined;
        }
        return problem('rate-limited', {
          headers: { 'retry-after': 7, 'ratelimit-policy': '"default";q=10;w=60', ratelimit: '"default";r=0;t=7' },
        });
      },
    };
  },
};

/** Refuses bodies containing "forbidden": a rule that needs the body. */
const testBodyRule: PolicyDefinition<Record<string, never>> = {
  name: 'test-body-rule',
  description: 'Test: decides on the request body.',
  phase: 'gate',
  schema: { type: 'object', additionalProperties: false },
  create() {
    return {
      decisionReuse: 'per-request',
      async onRequest(ctx) {
        // Two readers at once must see the same body (a stream can only be drained once).
        const [body, again]: Array<Buffer | Problem> = await Promise.all([ctx.readBody(), ctx.readBody()]);
        if (!Buffer.isBuffer(body)) return body;
        if (again !== body) return problem('internal-error', { detail: 'The body read twice differs.' });
        ctx.setUpstreamHeader('x-kyc-body-bytes', String(body.length));
        if (body.includes('forbidden')) return problem('forbidden', { detail: 'The body is not allowed.' });
        return undefined;
      },
    };
  },
};

/** Sets an upstream header value no HTTP message may carry (a policy bug the gateway must survive). */
const testBadHeader: PolicyDefinition<Record<string, never>> = {
  name: 'test-bad-header',
  description: 'Test: injects a header value containing a line break.',
  phase: 'transform',
  schema: { type: 'object', additionalProperties: false },
  create() {
    return {
      decisionReuse: 'reusable',
      onRequest(ctx) {
        ctx.setUpstreamHeader('x-kyc-status', 'approved\r\nx-injected: yes');
        return undefined;
      },
    };
  },
};

/** Refuses with a response header value Node cannot write (a policy bug the answer path must survive). */
const testBadResponseHeader: PolicyDefinition<Record<string, never>> = {
  name: 'test-bad-response-header',
  description: 'Test: refuses with a response header value containing a line break.',
  phase: 'gate',
  schema: { type: 'object', additionalProperties: false },
  create() {
    return {
      decisionReuse: 'reusable',
      onRequest(ctx) {
        ctx.setResponseHeader('x-note', 'refused\r\nx-injected: yes');
        return problem('forbidden');
      },
    };
  },
};

/** Throws on every request (a policy bug: answered 500, logged with the request id). */
const testThrow: PolicyDefinition<Record<string, never>> = {
  name: 'test-throw',
  description: 'Test: throws.',
  phase: 'gate',
  schema: { type: 'object', additionalProperties: false },
  create() {
    return {
      decisionReuse: 'reusable',
      onRequest() {
        throw new Error('policy internals');
      },
    };
  },
};

export const DECISION_TEST_POLICIES: readonly PolicyDefinition[] = [
  testIdentity,
  testKycChallenge,
  testRateLimit,
  testBodyRule,
  testBadHeader,
  testBadResponseHeader,
  testThrow,
];

/** The bundled policies and the test ones, for `startTestGateway(config, { policies })`. */
export const POLICIES_WITH_DECISION_TESTS: readonly PolicyDefinition[] = [...POLICIES, ...DECISION_TEST_POLICIES];
