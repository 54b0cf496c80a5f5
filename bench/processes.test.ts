import { test } from 'node:test';
import assert from 'node:assert/strict';
import { freePort, startProcess, waitForPort } from './processes.js';

test('bench: a binary that cannot be spawned fails the wait for its port instead of crashing the benchmark', async () => {
  const port = await freePort();
  const proc = startProcess('missing', [], ['/nonexistent/kycgate-bench-no-such-binary', '-c', 'x']);
  const started = Date.now();
  await assert.rejects(waitForPort(port, { failed: proc.failed }), /missing could not be started .*ENOENT/);
  assert.ok(Date.now() - started < 5000, 'the wait ends at once, not at its timeout');
  await proc.stop();
});

test('bench: a child that exits before listening fails the wait at once, with its stderr', async () => {
  const port = await freePort();
  const proc = startProcess(
    'dies',
    [],
    [process.execPath, '-e', 'process.stderr.write("bad config"); process.exit(3)'],
  );
  await assert.rejects(waitForPort(port, { failed: proc.failed }), /dies exited \(3\): bad config/);
  await proc.stop();
});

test('bench: a stopped child is not reported as failed', async () => {
  const port = await freePort();
  const proc = startProcess(
    'listener',
    [],
    [process.execPath, '-e', `require('node:net').createServer().listen(${port}, '127.0.0.1')`],
  );
  await waitForPort(port, { failed: proc.failed });
  assert.equal(proc.failed(), undefined);
  await proc.stop();
  assert.equal(proc.failed(), undefined);
});
