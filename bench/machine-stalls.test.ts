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

test("bench: the tail verdict is kycgate's added p99 against nginx's in the same rounds plus 0.5 ms", () => {
  const v = (addedMs: number, nginxAddedMs: number, failures = 0, rate = 1000) =>
    tailVerdict({ rate, addedMs, nginxAddedMs, failures });
  const against = (ms: string) => `nginx, 1 worker, added ${ms} ms in the same rounds`;
  assert.equal(v(2.8, 2.5), `MET (${against('2.500')})`, 'the machine put 2.5 ms into both: kycgate added 0.3 ms more');
  assert.equal(v(3.0, 2.5), `MET (${against('2.500')})`, 'exactly 0.5 ms over nginx is within');
  assert.equal(v(0.5, 0.7), `MET (${against('0.700')})`);
  assert.equal(v(1.6, 0.4), `NOT MET (1.200 ms over nginx's figure; ${against('0.400')})`);
  assert.equal(v(4.5, 2.5), `NOT MET (2.000 ms over nginx's figure; ${against('2.500')})`);
  assert.equal(v(0.8, NaN), 'MET (judged alone: <= 1 ms)', 'without nginx the absolute 1 ms is judged');
  assert.equal(v(1.6, NaN), 'NOT MET (judged alone: <= 1 ms)');
  assert.equal(v(0.5, 0.2, 3), 'NOT MET', 'a failed request fails the target');
  assert.equal(v(NaN, 2.5), 'NOT MET', 'no valid round: nothing shown');
  assert.equal(v(0.5, 0.2, 0, 500), 'not judged (the target is at 1000 req/s)');
});
