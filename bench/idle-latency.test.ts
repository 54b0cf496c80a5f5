import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { holdIdleLatency, idleLatencyUnavailable, withIdleLatencyHold } from './idle-latency.js';

test('bench: the idle-state hold writes a 0 µs request and keeps it until released; without the device it says why', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kycgate-pmqos-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const device = path.join(dir, 'cpu_dma_latency');
  writeFileSync(device, 'xxxxxxxx');

  const hold = holdIdleLatency(device);
  assert.equal(hold.held, true);
  assert.deepEqual([...readFileSync(device).subarray(0, 4)], [0, 0, 0, 0], 'a 32-bit zero, as the kernel reads it');
  hold.release();
  hold.release(); // a second release is harmless

  const missing = path.join(dir, 'absent', 'cpu_dma_latency');
  assert.match(idleLatencyUnavailable(missing) ?? '', /absent\/cpu_dma_latency: ENOENT/);
  assert.equal(idleLatencyUnavailable(device), undefined);

  // The hold is released even when the measured work fails.
  await assert.rejects(
    withIdleLatencyHold(true, () => Promise.reject(new Error('run failed'))),
    /run failed/,
  );
});
