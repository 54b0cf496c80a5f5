/**
 * An acknowledged webhook survives `kill -9`: the gateway runs as a child process (the real CLI), the webhook is
 * answered 200, the process is killed at once, and after a restart the verification is there.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import { httpRequest } from '../../testing/harness.js';
import { kycTestbed, postWebhook, eventually } from '../../testing/kyc-testbed.js';

interface Child {
  process: ChildProcess;
  url: string;
  exited: Promise<number | null>;
}

function startGatewayProcess(configFile: string, dataDir: string): Promise<Child> {
  const child = spawn(
    process.execPath,
    [
      'dist/src/cli/main.js',
      'start',
      '--plugin',
      path.resolve('dist/testing/kyc-test-provider-plugin.js'),
      '--config',
      configFile,
    ],
    {
      env: { ...process.env, KYCGATE_DATA_DIR: dataDir },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    let buffered = '';
    let stderr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`gateway did not start within 30 s: ${stderr}`));
    }, 30_000);
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    child.stdout!.on('data', (c: Buffer) => {
      buffered += c.toString();
      for (const line of buffered.split('\n')) {
        if (!line.includes('"listening"')) continue;
        const entry = JSON.parse(line) as { listener: string; url: string };
        if (entry.listener === 'main') {
          clearTimeout(timer);
          resolve({ process: child, url: entry.url, exited });
          return;
        }
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`gateway exited with ${code}: ${stderr}`));
    });
  });
}

test('a webhook answered 200 survives kill -9 of the gateway right after', async (t) => {
  const bed = await kycTestbed(t);
  const file = path.join(bed.dir, 'gateway.yaml');
  writeFileSync(
    file,
    stringify({
      ...bed.config(),
      listeners: [{ name: 'main', port: 0 }],
      admin: { enabled: false },
      log: { level: 'info', access: false },
    }),
  );
  const dataDir = path.join(bed.dir, 'data');
  const as = { headers: { 'x-user-id': 'kim', accept: 'application/json' } };

  const first = await startGatewayProcess(file, dataDir);
  t.after(() => first.process.kill('SIGKILL'));
  // The listener is bound before the config is compiled and answers 503 until then: wait until it serves.
  let challenge = await httpRequest(`${first.url}/api/x`, as);
  for (let i = 0; i < 200 && challenge.status === 503; i++) {
    await new Promise((r) => setTimeout(r, 25));
    challenge = await httpRequest(`${first.url}/api/x`, as);
  }
  assert.equal(challenge.status, 403);
  const sessionId = (JSON.parse(challenge.body) as { session_id: string }).session_id;
  const hook = await postWebhook(first.url, bed.provider.webhook(sessionId, 'Approved'));
  assert.equal(hook.status, 200);
  first.process.kill('SIGKILL');
  await first.exited;

  const second = await startGatewayProcess(file, dataDir);
  t.after(() => second.process.kill('SIGKILL'));
  assert.ok(
    await eventually(async () => (await httpRequest(`${second.url}/api/x`, as)).status === 200, 3000, 50),
    'the approval is there after the restart',
  );
  assert.equal(bed.provider.created, 1);
  second.process.kill('SIGTERM');
  assert.equal(await second.exited, 0);
});
