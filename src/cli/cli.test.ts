import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const CLI = path.resolve('dist/src/cli/main.js');

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI and resolves with its exit code and output, whatever the code. */
function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Outcome> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { env: { ...process.env, ...env }, timeout: 120_000 }, // generous: a loaded machine
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** A failure a user sees: a non-zero exit and one clear message, never a stack trace or a source path. */
function assertCleanFailure(r: Outcome, code: number, message: RegExp): void {
  assert.equal(r.code, code, `exit code (stderr: ${r.stderr})`);
  assert.match(r.stderr, message);
  assert.doesNotMatch(r.stderr, /\n\s+at |dist\/src|node:internal/, 'no stack trace or source path');
}

function workDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kycgate-cli-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('cli: --help lists the commands, and an unknown command or option is refused with the reason', async () => {
  const help = await cli(['--help']);
  assert.equal(help.code, 0);
  for (const command of ['start', 'validate', 'schema', 'keys', 'audit'])
    assert.match(help.stdout, new RegExp(`\\n\\s+${command}\\b`), command);
  assertCleanFailure(await cli(['frobnicate']), 1, /unknown command 'frobnicate'/);
  assertCleanFailure(await cli(['start', '--bogus']), 1, /unknown option '--bogus'/);
  assertCleanFailure(await cli(['validate']), 1, /missing required argument 'file'/);
});

test('cli: start with a config file that does not exist names the file and exits 1', async (t) => {
  const dir = workDir(t);
  const missing = path.join(dir, 'nope.yaml');
  const r = await cli(['start', '-c', missing], { KYCGATE_DATA_DIR: dir });
  assertCleanFailure(r, 1, /^kycgate: invalid configuration:\n {2}- .*nope\.yaml: cannot be read \(ENOENT\)$/m);
});

test('cli: start on a port that is taken says which address and exits 1 instead of hanging', async (t) => {
  const dir = workDir(t);
  const taken = net.createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  t.after(() => taken.close());
  const port = (taken.address() as net.AddressInfo).port;
  const file = path.join(dir, 'kycgate.yaml');
  writeFileSync(
    file,
    `listeners:\n  - { name: http, port: ${port} }\nadmin: { enabled: false }\nupstreams:\n  app: { ` +
      `targets: [{ url: "http://127.0.0.1:1" }] }\nroutes:\n  - { name: all, match: { prefix: / }, ` +
      `upstream: app }\n`,
  );
  const r = await cli(['start', '-c', file], { KYCGATE_DATA_DIR: dir });
  assertCleanFailure(r, 1, new RegExp(`kycgate: cannot start: .*(EADDRINUSE|in use).*${port}`));
});

test('cli: key commands refuse an unknown consumer, a bad duration and an unknown key id, each with its reason', async (t) => {
  const dir = workDir(t);
  const env = { KYCGATE_DATA_DIR: dir };
  assertCleanFailure(await cli(['keys', 'create', '--consumer', 'nobody'], env), 1, /no consumer named "nobody"/);
  assertCleanFailure(await cli(['keys', 'create'], env), 1, /required option '--consumer <name>' not specified/);
  assertCleanFailure(await cli(['keys', 'revoke', 'zzzzzzzz'], env), 1, /^kycgate: no API key with id "zzzzzzzz"$/m);
  assertCleanFailure(
    await cli(['keys', 'rotate', 'zzzzzzzz', '--overlap', 'a fortnight'], env),
    1,
    /^kycgate: "a fortnight" is not a duration/m,
  );
  const listed = await cli(['keys', 'list', '--json'], env);
  assert.equal(listed.code, 0, listed.stderr);
  assert.equal(listed.stdout, '', 'nothing was created by the refused commands');
});

test('cli: audit export refuses a time it cannot read, and audit verify a journal that is not there', async (t) => {
  const dir = workDir(t);
  const env = { KYCGATE_DATA_DIR: dir };
  assertCleanFailure(await cli(['audit', 'export', '--since', 'yesterday'], env), 2, /--since is not a date\/time/);
  assertCleanFailure(await cli(['audit', 'export', '--format', 'xml'], env), 2, /--format must be jsonl or cef/);
  assertCleanFailure(
    await cli(['audit', 'verify', '--journal', path.join(dir, 'no-journal')], env),
    2,
    /^kycgate audit verify: .*no-journal/m,
  );
});
