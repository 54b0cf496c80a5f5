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

test('bench: the tail verdict is unresolved only when nginx itself missed the budget and kycgate stayed within 1 ms of it', () => {
  const v = (addedMs: number, nginxAddedMs: number, failures = 0, rate = 1000) =>
    tailVerdict({ rate, addedMs, nginxAddedMs, failures });
  assert.equal(v(0.8, 2.5), 'MET', 'within the budget is met, whatever nginx did');
  assert.equal(v(0.8, NaN), 'MET');
  assert.equal(v(1.6, 0.4), 'NOT MET', "nginx within the budget: the machine was calm enough, the miss is kycgate's");
  assert.equal(v(1.6, NaN), 'NOT MET', 'without nginx there is nothing to read the machine against');
  assert.equal(v(3.3, 2.4), 'UNRESOLVED on this machine (nginx, 1 worker, itself added 2.400 ms in the same rounds)');
  assert.equal(v(4.5, 2.5), 'NOT MET', "more than 1 ms over what nginx added is kycgate's own");
  assert.equal(v(0.5, 0.2, 3), 'NOT MET', 'a failed request fails the target');
  assert.equal(v(NaN, 2.5), 'NOT MET', 'no valid round: nothing shown');
  assert.equal(v(0.5, 0.2, 0, 500), 'not judged (the target is at 1000 req/s)');
});
