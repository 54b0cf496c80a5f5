/**
 * kill -9 under load: the gateway runs as a child process (`kycgate start`), takes traffic, is killed with SIGKILL
 * and restarted. `kycgate audit verify` must pass, and every answered request missing from the journal must have
 * been answered within the group-commit window before the kill.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { journalLines } from './verify.js';

const MAIN = path.join(path.dirname(fileURLToPath(import.meta.url)), '../cli/main.js');
const GROUP_COMMIT_MS = 20;

function startChild(configFile: string, dataDir: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [MAIN, 'start', '--config', configFile], {
    env: { ...process.env, KYCGATE_DATA_DIR: dataDir },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    // A gateway that did not come up is killed, so a failed start cannot leave the test process waiting on it.
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error('gateway did not start within 30 s'));
    }, 30_000);
    let url: string | undefined;
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      try {
        const rec = JSON.parse(line) as { listener?: string; url?: string; msg?: string };
        if (rec.listener === 'main' && rec.url) url = rec.url;
        // Listeners bind before subsystems start: serving begins once the journal is open.
        if (rec.msg === 'audit journal open' && url) {
          clearTimeout(timer);
          resolve({ child, url });
        }
      } catch {
        /* not a log line */
      }
    });
    child.once('exit', (code) => reject(new Error(`gateway exited early (${code})`)));
  });
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) =>
    child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve()),
  );
}

/** SIGTERM, then the exit; a gateway that does not stop within 20 s is killed and the test fails. */
async function stopped(child: ChildProcess): Promise<void> {
  child.kill('SIGTERM');
  let hung = false;
  const timer = setTimeout(() => {
    hung = true;
    child.kill('SIGKILL');
  }, 20_000);
  await exited(child);
  clearTimeout(timer);
  assert.equal(hung, false, 'the gateway stops on SIGTERM');
}

for (const sync of [false, true]) {
  test(
    sync
      ? 'kill -9 under load with durability sync and audit {sync: true}: no answered request is missing'
      : 'kill -9 under load: the journal verifies after restart and loses at most the group-commit window',
    async () => {
      const root = fs.mkdtempSync(path.join(os.tmpdir(), 'kycgate-crash-'));
      const dataDir = path.join(root, 'data');
      const configFile = path.join(root, 'gateway.yaml');
      fs.writeFileSync(
        configFile,
        JSON.stringify({
          listeners: [{ name: 'main', port: 0 }],
          admin: { port: 0 },
          log: { level: 'info', access: false },
          routes: [
            {
              name: 'static',
              match: { path: '/s' },
              policies: [
                { 'static-response': { status: 200, body: 'ok' } },
                ...(sync ? [{ audit: { sync: true } }] : []),
              ],
            },
          ],
          audit: {
            enabled: true,
            durability: sync ? 'sync' : 'group',
            group_commit_ms: GROUP_COMMIT_MS,
            checkpoint_records: 200,
          },
        }),
      );
      const first = await startChild(configFile, dataDir);
      const answered: Array<{ id: string; at: number }> = [];
      const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
      let stop = false;
      let n = 0;
      const worker = async () => {
        while (!stop) {
          const id = `load-${n++}`;
          const ok = await new Promise<boolean>((resolve) => {
            const req = http.get(
              `${first.url}/s`,
              { agent, headers: { 'x-request-id': id }, timeout: 10_000 },
              (res) => {
                res.resume();
                res.on('end', () => resolve(res.statusCode === 200));
                res.on('error', () => resolve(false));
              },
            );
            req.on('error', () => resolve(false));
            req.on('timeout', () => req.destroy());
          });
          if (ok) answered.push({ id, at: Date.now() });
          else return;
        }
      };
      const workers = Array.from({ length: 16 }, () => worker());
      await new Promise((r) => setTimeout(r, 1500));
      const killedAt = Date.now();
      first.child.kill('SIGKILL');
      stop = true;
      await exited(first.child);
      await Promise.all(workers);
      agent.destroy();
      assert.ok(answered.length > 50, `load ran (${answered.length} answered)`);

      // Restart on the same data directory, then stop cleanly.
      const second = await startChild(configFile, dataDir);
      await stopped(second.child);

      const verify = spawnSync(process.execPath, [MAIN, 'audit', 'verify', '--journal', path.join(dataDir, 'audit')], {
        encoding: 'utf8',
      });
      assert.equal(verify.status, 0, `verify: ${verify.stdout}${verify.stderr}`);
      assert.match(verify.stdout, /^OK: /);

      const recorded = new Set<string>();
      const records = [...journalLines(path.join(dataDir, 'audit'))].map(
        (l) =>
          JSON.parse(l.line) as {
            request_id?: string;
            type: string;
            outcome?: string;
            data?: { truncated_bytes?: number };
          },
      );
      for (const r of records) if (r.request_id) recorded.add(r.request_id);
      const lost = answered.filter((a) => !recorded.has(a.id));
      // Lost records can only be those answered in the last group-commit period before the kill (plus scheduling
      // slack on a shared machine: the timer may fire late, and the write + fsync take time).
      const windowMs = GROUP_COMMIT_MS + 500;
      if (sync) assert.deepEqual(lost, [], 'with sync durability every answered request is in the journal');
      for (const l of lost)
        assert.ok(l.at >= killedAt - windowMs, `${l.id} answered ${killedAt - l.at} ms before the kill is missing`);
      const starts = records.filter((r) => r.type === 'audit.started');
      assert.equal(starts.length, 2, 'one audit.started per process start');
      process.stdout.write(
        `# kill -9 (${sync ? 'sync' : 'group'}): ${answered.length} answered, ${lost.length} not in the ` +
          `journal, the oldest answered ${lost.length ? killedAt - Math.min(...lost.map((l) => l.at)) : 0} ms ` +
          `before the kill, restart recorded as ${starts[1]!.outcome}\n`,
      );
      if (!sync) {
        // The same CLI names a tampered record, and exports CEF.
        const auditDir = path.join(dataDir, 'audit');
        const cef = spawnSync(
          process.execPath,
          [
            MAIN,
            'audit',
            'export',
            '--journal',
            auditDir,
            '--format',
            'cef',
            '--since',
            new Date(killedAt - 60_000).toISOString(),
          ],
          { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 },
        );
        assert.equal(cef.status, 0);
        assert.ok(
          cef.stdout.split('\n').filter((l) => l.startsWith('CEF:0|kycgate|kycgate|')).length >=
            answered.length - lost.length,
        );
        const segment = fs.readdirSync(path.join(auditDir, 'journal')).sort()[0]!;
        const file = path.join(auditDir, 'journal', segment);
        const lines = fs.readFileSync(file, 'utf8').split('\n');
        lines[41] = lines[41]!.replace('"status":200', '"status":204');
        fs.writeFileSync(file, lines.join('\n'));
        const tampered = spawnSync(process.execPath, [MAIN, 'audit', 'verify', '--journal', auditDir], {
          encoding: 'utf8',
        });
        assert.equal(tampered.status, 1);
        assert.match(
          tampered.stdout,
          new RegExp(`^TAMPERED: record seq 42 \\(id [0-9A-Z]{26}\\) at ${segment}:42 was modified`),
        );
      }
      fs.rmSync(root, { recursive: true, force: true });
    },
  );
}
