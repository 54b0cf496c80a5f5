/**
 * /readyz names each check after what it checks and says what fails, never an error's text (a connection string,
 * an address or a driver message is for the log, not for whoever can reach the admin listener).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestGateway, httpRequest } from '../../testing/harness.js';
import { freePort } from '../../testing/ports.js';

test('readiness names the failing dependency without its error text; the text goes to the log once', async (t) => {
  const deadPort = await freePort();
  const gw = await startTestGateway({ redis: { url: `redis://127.0.0.1:${deadPort}` } });
  t.after(() => gw.close());
  const first = await httpRequest(gw.adminUrl + '/readyz');
  const second = await httpRequest(gw.adminUrl + '/readyz');
  assert.equal(first.status, 503);
  const body = JSON.parse(second.body) as { status: string; checks: Record<string, Record<string, unknown>> };
  assert.equal(body.status, 'not ready');
  assert.deepEqual(body.checks.redis, { ok: false, state: 'unreachable' });
  assert.deepEqual(body.checks.store, { ok: true, driver: 'sqlite' });
  for (const answer of [first.body, second.body]) {
    assert.doesNotMatch(answer, /ECONNREFUSED|127\.0\.0\.1|connect|Error/i, 'no error text in the answer');
    assert.doesNotMatch(answer, /module:\d/, 'checks are named after what they check');
  }
  const logged = gw.logs.filter((l) => l.msg === 'readiness check failing');
  assert.equal(logged.length, 1, 'logged once while it keeps failing');
  assert.equal(logged[0]!.check, 'redis');
  assert.ok(JSON.stringify(logged[0]!.err).length > 2, 'the log has the cause');
});
