import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { describeStalls, probeStalls, sumStalls, type StallProbeResult } from './machine-stalls.js';
import { tailVerdict } from './fixed-rate.js';

const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'stall-probe.js');

test('bench: the stall probe reports a stretch in which its process did not run', async () => {
  // 3 s, so that the stop lands while it probes even when a busy machine lets this process read the marker late.
  const child = spawn(process.execPath, [script, JSON.stringify({ durationS: 3 })], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  await once(child.stderr, 'data'); // "probing": it spins from now on
  // The stall: the process is stopped for 60 ms, as a descheduled virtual CPU would be.
  child.kill('SIGSTOP');
  await delay(60);
  child.kill('SIGCONT');
  const [code] = (await once(child, 'exit')) as [number];
  assert.equal(code, 0);
  const r = JSON.parse(stdout) as StallProbeResult;
  assert.ok(r.seconds >= 3 && r.seconds < 3.5 + r.maxGapMs / 1000, `it probed for its duration (${r.seconds} s)`);
  assert.ok(r.over5 >= 1, 'the stop counts as a stall of 5 ms or more');
  assert.ok(r.maxGapMs >= 55, `the longest stall covers the stop (${r.maxGapMs} ms)`);
  assert.ok(r.lostMs >= r.maxGapMs, 'lost time includes the longest stall');
  assert.ok(r.over05 >= r.over1 && r.over1 >= r.over2 && r.over2 >= r.over5, 'the counts are cumulative');
});

test('bench: stall probes of one core add up, and the report gives rates per second', async () => {
  const probed = await probeStalls([], 0.2);
  assert.ok(probed.seconds >= 0.2, 'a probe runs through the pin-less path too');
  const a: StallProbeResult = { seconds: 1, over05: 4, over1: 3, over2: 1, over5: 0, lostMs: 6, maxGapMs: 2.5 };
  const b: StallProbeResult = { seconds: 1, over05: 2, over1: 1, over2: 1, over5: 1, lostMs: 8, maxGapMs: 7 };
  const sum = sumStalls([a, b]);
  assert.deepEqual(sum, { seconds: 2, over05: 6, over1: 4, over2: 2, over5: 1, lostMs: 14, maxGapMs: 7 });
  assert.equal(
    describeStalls(sum),
    '2.0 stalls >= 1 ms per s (1.0 >= 2 ms, 0.5 >= 5 ms), 7.0 ms/s lost in stalls >= 0.5 ms, longest 7.0 ms',
  );
});

test("bench: the tail verdict judges kycgate's p99 minus nginx's per round on an interval, against 0.5 ms", () => {
  const v = (overNginx: number[], added: number[] = [], failures = 0, rate = 1000) =>
    tailVerdict({ rate, failures, overNginx, added });
  const rule = "kycgate's p99 minus nginx's (1 worker) in the same round <= 0.5 ms";
  // 10 rounds: the 95% interval of the median runs from the 2nd to the 9th value.
  const close = [0.1, -0.2, 0.3, 0, 0.2, -0.1, 0.4, 0.1, -0.3, 0.2];
  assert.equal(v(close), `MET (${rule}: median +0.100 ms [-0.200, +0.300], 10 rounds)`);
  const far = [1.1, 1.4, 0.9, 1.2, 1.3, 0.8, 1.6, 1.0, 1.2, 3.5];
  assert.equal(v(far), `NOT MET (${rule}: median +1.200 ms [+0.900, +1.600], 10 rounds)`);
  // One stalled round either way moves a median of few rounds by milliseconds; the interval says the line is inside.
  const spread = [0.1, -1.1, 2.7, -0.1, -0.9, 0.6, 1.5, 0.9, 0.4, 0.7];
  assert.equal(v(spread), `UNRESOLVED (${rule}: median +0.500 ms [-0.900, +1.500], 10 rounds)`);
  assert.equal(
    v([0.1, 0.2, NaN, 0.1, NaN]),
    `NO VERDICT (fewer than 6 valid rounds) (${rule}: median +0.100 ms, 3 rounds)`,
    'invalid rounds (NaN) are left out, and 3 rounds give no interval',
  );
  assert.equal(
    v([], [0.6, 0.7, 0.8, 0.9, 0.5, 0.6, 0.7, 0.8, 0.6, 0.7]),
    'MET (judged alone: p99 added over direct <= 1 ms: median +0.700 ms [+0.600, +0.800], 10 rounds)',
    'without nginx in the run the absolute 1 ms is judged',
  );
  assert.equal(v(close, [], 3), 'NOT MET (failed requests)', 'a failed request fails the target');
  assert.equal(v([NaN, NaN], [NaN, NaN]), 'NOT MET (no valid round)');
  assert.equal(v(close, [], 0, 500), 'not judged (the target is at 1000 req/s)');
});
