/** The pipeline runs phases in order regardless of config order, stops at the first answer, and turns a throwing policy into a 500 without detail. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PolicyChain } from './chain.js';
import { problem, Problem } from './problem.js';
import type { PolicyDefinition, PolicyInstance, RequestPhase } from './policy.js';
import type { RequestContext } from './context.js';

function entry(name: string, phase: RequestPhase, instance: PolicyInstance) {
  const definition: PolicyDefinition = { name, description: name, phase, schema: {}, create: () => instance };
  return { name, definition, instance };
}

test('chain: phases run in order, async only when a policy is async, first answer wins', async () => {
  const order: string[] = [];
  const ctx = { state: {} } as unknown as RequestContext;
  const chain = new PolicyChain([
    entry('t', 'transform', { onRequest: () => void order.push('transform') }),
    entry('g', 'gate', { onRequest: async () => void order.push('gate') }),
    entry('a', 'admit', { onRequest: () => void order.push('admit') }),
    entry('n', 'authenticate', { onRequest: () => void order.push('authenticate') }),
  ]);
  const result = chain.run(ctx);
  assert.ok(result instanceof Promise, 'goes async at the async policy');
  assert.equal(await result, undefined);
  assert.deepEqual(order, ['admit', 'authenticate', 'gate', 'transform']);

  const sync = new PolicyChain([entry('a', 'admit', { onRequest: () => undefined })]);
  assert.equal(sync.run(ctx), undefined, 'a synchronous chain stays synchronous');

  const stopped: string[] = [];
  const deny = new PolicyChain([
    entry('first', 'authorize', { onRequest: () => problem('forbidden') }),
    entry('later', 'transform', { onRequest: () => void stopped.push('ran') }),
  ]);
  const answer = deny.run(ctx);
  assert.ok(answer instanceof Problem && answer.status === 403);
  assert.deepEqual(stopped, []);
});

test('chain: a throwing or rejecting policy becomes a 500 problem without detail', async () => {
  const ctx = { state: {} } as unknown as RequestContext;
  const thrown = new PolicyChain([
    entry('boom', 'admit', {
      onRequest: () => {
        throw new Error('secret internals');
      },
    }),
  ]).run(ctx);
  assert.ok(thrown instanceof Problem && thrown.status === 500 && thrown.detail === undefined);
  const rejected = await new PolicyChain([
    entry('boom', 'admit', { onRequest: () => Promise.reject(new Error('x')) }),
  ]).run(ctx);
  assert.ok(rejected instanceof Problem && rejected.status === 500);
});

test('chain: every policy failure is reported with the policy name, and a failing reporter changes nothing', async () => {
  const ctx = { id: 'req-1', state: {} } as unknown as RequestContext;
  const reported: Array<[string, string]> = [];
  const report = (c: RequestContext, policy: string, err: unknown) =>
    void reported.push([policy, `${c.id}: ${(err as Error).message}`]);
  new PolicyChain(
    [
      entry('thrower', 'admit', {
        onRequest: () => {
          throw new Error('sync');
        },
      }),
    ],
    report,
  ).run(ctx);
  await new PolicyChain(
    [entry('rejecter', 'gate', { onRequest: () => Promise.reject(new Error('async')) })],
    report,
  ).run(ctx);
  assert.deepEqual(reported, [
    ['thrower', 'req-1: sync'],
    ['rejecter', 'req-1: async'],
  ]);
  const answer = new PolicyChain(
    [
      entry('thrower', 'admit', {
        onRequest: () => {
          throw new Error('x');
        },
      }),
    ],
    () => {
      throw new Error('logger down');
    },
  ).run(ctx);
  assert.ok(answer instanceof Problem && answer.status === 500);
});
