/**
 * Every gateway configuration under examples/ starts: each is copied to a temporary directory, given free ports and,
 * where it names certificate files (examples/kycgate.yaml: /etc/kycgate/tls/...), certificates generated at test
 * time in their place; then `kycgate validate` accepts it and `kycgate start` runs it until it is ready.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseDocument } from 'yaml';
import { issueCertificate } from '../workload-identity/certificates.js';
import { cliEnv, runCli, spawnCli } from '../../testing/cli-process.js';
import { freePort } from '../../testing/ports.js';

function yamlFiles(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) yamlFiles(full, out);
    else if (/\.ya?ml$/.test(name)) out.push(full);
  }
  return out;
}

/** The example's gateway configs: YAML files with top-level `listeners` (not drills, compose files or recipes). */
const CONFIGS = yamlFiles('examples')
  .filter((f) => /^listeners:/m.test(readFileSync(f, 'utf8')))
  .sort();

test('examples: the gateway configurations are found', () => {
  assert.deepEqual(CONFIGS, [
    'examples/decision/kycgate.yaml',
    'examples/drills/staging.yaml',
    'examples/kycgate.yaml',
  ]);
});

for (const example of CONFIGS) {
  test(`examples: ${example} validates and starts as copied, on free ports`, { timeout: 300_000 }, async (t) => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'kycgate-example-'));
    t.after(() => rmSync(root, { recursive: true, force: true }));
    cpSync('examples', path.join(root, 'examples'), { recursive: true });
    const file = path.join(root, example);
    const doc = parseDocument(readFileSync(file, 'utf8'));
    const ports = new Map<number, number>();
    const port = async (old: number) => {
      if (!ports.has(old)) ports.set(old, await freePort());
      return ports.get(old)!;
    };
    const listeners = doc.get('listeners') as {
      items: Array<{ get(k: string): unknown; set(k: string, v: unknown): void }>;
    };
    for (const l of listeners.items) {
      l.set('port', await port(Number(l.get('port'))));
      if (l.get('https_port') !== undefined) l.set('https_port', await port(Number(l.get('https_port'))));
      const tls = l.get('tls') as { get(k: string): unknown; set(k: string, v: unknown): void } | undefined;
      if (tls && typeof tls.get('cert') === 'string') {
        // The certificate files a real host would have, generated here and named relative to the copy.
        const issued = await issueCertificate({ subject: 'CN=localhost', dns: ['localhost'], ips: ['127.0.0.1'] });
        mkdirSync(path.join(path.dirname(file), 'tls'), { recursive: true });
        writeFileSync(path.join(path.dirname(file), 'tls', 'cert.pem'), issued.certPem);
        writeFileSync(path.join(path.dirname(file), 'tls', 'key.pem'), issued.keyPem, { mode: 0o600 });
        tls.set('cert', 'tls/cert.pem');
        tls.set('key', 'tls/key.pem');
      }
    }
    const adminPort = await freePort();
    doc.setIn(['admin', 'port'], adminPort);
    if (doc.hasIn(['kyc', 'providers', 'sandbox', 'port']))
      doc.setIn(['kyc', 'providers', 'sandbox', 'port'], await freePort());
    writeFileSync(file, doc.toString());

    // Where the real host keeps state and secrets, this copy's directory and stand-in values.
    if (doc.has('data_dir')) doc.set('data_dir', 'data');
    writeFileSync(file, doc.toString());
    const env = cliEnv({ DIDIT_API_KEY: 'example-api-key', DIDIT_WEBHOOK_SECRET: 'example-webhook-secret' });
    const valid = await runCli(['validate', file], { env });
    assert.equal(valid.code, 0, valid.stderr);
    const gateway = spawnCli(['start', '-c', file], { cwd: root, env });
    t.after(() => gateway.stop());
    const summary = await gateway.waitFor((l) => typeof l.msg === 'string' && /^kycgate \S+ started$/.test(l.msg));
    assert.equal(summary.config, file);
    const ready = await fetch(`http://127.0.0.1:${adminPort}/readyz`);
    assert.equal(ready.status, 200, await ready.text());
    assert.equal(await gateway.stop(), 0);
  });
}
