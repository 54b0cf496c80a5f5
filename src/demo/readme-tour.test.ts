/**
 * The README's five-minute tour, run as written against the built-in demo: every command of its first `sh` block,
 * step by step, in a fresh directory, each checked for what the README says it shows. The README cannot drift from
 * the product without this test failing. `npx kycgate` is the checkout's CLI (what npx runs inside the checkout);
 * `nc` is a few lines of Node when the machine has none.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CLI, cliEnv, spawnCli } from '../../testing/cli-process.js';
import { holdDemoPorts } from '../../testing/demo-ports.js';

interface Step {
  number: number;
  commands: string[];
}

/** The tour's steps: the first ```sh block after "## Five-minute tour", split at its `# N.` comments. */
export function tourSteps(readme: string): Step[] {
  const section = readme.slice(readme.indexOf('## Five-minute tour'));
  const block = /```sh\n([\s\S]*?)```/.exec(section)?.[1];
  assert.ok(block, 'the README has a tour block');
  const steps: Step[] = [];
  for (const line of block.split('\n')) {
    const heading = /^# (\d+)\. /.exec(line);
    if (heading) steps.push({ number: Number(heading[1]), commands: [] });
    else if (line.trim() !== '' && !line.trimStart().startsWith('#')) steps.at(-1)!.commands.push(line);
  }
  return steps;
}

function shims(dir: string): string {
  const bin = path.join(dir, 'bin');
  mkdirSync(bin);
  writeFileSync(
    path.join(bin, 'npx'),
    `#!/bin/sh\nif [ "$1" = kycgate ]; then shift; exec "${process.execPath}" "${CLI}" "$@"; fi\necho "npx $1: not in the tour" >&2\nexit 127\n`,
  );
  writeFileSync(
    path.join(bin, 'nc'),
    `#!${process.execPath}\nconst net = require('node:net');\nconst chunks = [];\nprocess.stdin.on('data', (c) => chunks.push(c));\n` +
      "process.stdin.on('end', () => {\n  const s = net.connect(Number(process.argv[3]), process.argv[2], () => s.end(Buffer.concat(chunks)));\n" +
      "  s.pipe(process.stdout);\n  s.on('error', (e) => { console.error(e.message); process.exit(1); });\n});\n",
  );
  chmodSync(path.join(bin, 'npx'), 0o755);
  chmodSync(path.join(bin, 'nc'), 0o755);
  return bin;
}

/** Runs one step's commands in one shell (variables carry from line to line); each command's output and status. */
function runStep(
  step: Step,
  cwd: string,
  env: NodeJS.ProcessEnv,
): Promise<Array<{ command: string; out: string; rc: number }>> {
  const script = step.commands.map((c) => `${c}\nprintf '\\n@@rc:%d\\n' $?`).join('\n');
  return new Promise((resolve, reject) => {
    execFile('bash', ['-c', script], { cwd, env, timeout: 120_000, maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
      if (error) return reject(new Error(`step ${step.number}: ${error.message}\n${stderr}`));
      const parts = stdout.split(/\n@@rc:(\d+)\n/);
      const results = step.commands.map((command, i) => ({
        command,
        out: compact(parts[i * 2]!.trim()),
        rc: Number(parts[i * 2 + 1]),
      }));
      resolve(results);
    });
  });
}

/** JSON output (the echo pretty-prints) compacted, so one pattern reads every answer; anything else as it is. */
function compact(out: string): string {
  try {
    return JSON.stringify(JSON.parse(out));
  } catch {
    return out;
  }
}

const PROBLEM_WITH_ID = /"instance":"urn:kycgate:request:[0-9a-f-]{36}"/;

/** What each step shows, per command, as the README describes it. */
const EXPECTED: Record<number, RegExp[][]> = {
  1: [[/"path":"\/demo\/echo\/hello","query":"x=1"/, /"x-forwarded-for":"127\.0\.0\.1"/, /"x-request-id":"/]],
  2: [
    [
      /"type":"https:\/\/kycgate\.dev\/problems\/kyc-required"/,
      /"verification_url":"http:\/\/127\.0\.0\.1:8090\/verify\//,
      /"missing_claims":\["kyc_full"\]/,
    ],
  ],
  3: [[], [/^[23]\d\d$/]],
  4: [[/"x-kyc-status":"verified"/, /"x-kyc-claims":"kyc_full"/, /"x-subject-id"/, /"x-kycgate-assertion":"ey/]],
  5: [[/"keys":\[\{/]],
  6: [[/^OK: \d+ records/], [/^CEF:0\|/m]],
  7: [
    [/problems\/not-found/, PROBLEM_WITH_ID],
    [/problems\/invalid-path/, PROBLEM_WITH_ID],
    [/^HTTP\/1\.1 400 /, /problems\/ambiguous-request/, PROBLEM_WITH_ID],
  ],
  8: [[/"path":"\/demo\/echo\/hello"/], [/"status":"ready"/], [/^kycgate_requests_total\{/m]],
  9: [[], [/"decisions"|"buckets"|"window"/], [/"subject"|"status"/], [/"items":\[\{"id":.*"alive":true/]],
  10: [[/^<title>kycgate dashboard<\/title>$/], [/^kga_[0-9A-Za-z]{8}_[0-9A-Za-z]{38}$/]],
};

test('README tour: every command runs against the demo and shows what the README says', {
  timeout: 600_000,
}, async (t) => {
  const readme = readFileSync('README.md', 'utf8');
  const steps = tourSteps(readme);
  assert.deepEqual(
    steps.map((s) => s.number),
    Object.keys(EXPECTED).map(Number),
    'a step was added or removed: say here what it shows',
  );
  const release = await holdDemoPorts(t);
  if (!release) return;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kycgate-tour-'));
  const env = cliEnv();
  delete env.DIDIT_WEBHOOK_SECRET;
  delete env.DIDIT_API_KEY;
  delete env.KYCGATE_ADMIN_KEY;
  delete env.KYCGATE_ADMIN_URL;
  const demo = spawnCli(['start'], { cwd: dir, env });
  t.after(async () => {
    await demo.stop();
    release();
    rmSync(dir, { recursive: true, force: true });
  });
  await demo.waitFor((l) => typeof l.msg === 'string' && l.msg.startsWith('built-in demo running'));
  const shellEnv = { ...env, PATH: `${shims(dir)}:${env.PATH ?? ''}` };

  for (const step of steps) {
    let results = await runStep(step, dir, shellEnv);
    if (step.number === 4) {
      // The webhook the sandbox sent in step 3 is applied just after it was accepted: the same call passes once it is.
      await demo.waitFor((l) => String(l.path ?? '').startsWith('/webhooks/') && l.status === 200);
      for (let i = 0; i < 100 && !/"x-kyc-status":"verified"/.test(results[0]!.out); i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        results = await runStep(step, dir, shellEnv);
      }
      assert.doesNotMatch(results[0]!.out, /forged/, 'a forged x-kyc-status is replaced');
    }
    const expected = EXPECTED[step.number]!;
    assert.equal(results.length, expected.length, `step ${step.number}: ${step.commands.length} commands`);
    for (const [i, r] of results.entries()) {
      assert.equal(r.rc, 0, `step ${step.number}: \`${r.command}\` exited ${r.rc}: ${r.out}`);
      for (const re of expected[i]!) assert.match(r.out, re, `step ${step.number}: \`${r.command}\``);
    }
  }
});
