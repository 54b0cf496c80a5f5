/**
 * Reload edge cases: a config refused after the subsystems took it, and a reload racing a stop.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startTestGateway, httpRequest } from '../../testing/harness.js';
import { ConfigValidator, loadConfigFile } from '../config/load.js';
import { SUBSYSTEMS, POLICIES } from '../bundled.js';
import type { AuthService } from '../auth/subsystem.js';
import { issueCertificate } from '../workload-identity/certificates.js';
import { issueSvid, spiffeBundle, tlsRequest, trustDomainCa } from '../../testing/spiffe.js';

function configWith(scopes: string[], userAgentDeny: string): string {
  return JSON.stringify({
    listeners: [{ name: 'main', port: 0 }],
    admin: { port: 0 },
    log: { level: 'warn', access: false },
    consumers: { billing: { scopes } },
    routes: [
      {
        name: 'hello',
        match: { path: '/hello' },
        policies: [
          { 'network-rules': { user_agents: { deny: [userAgentDeny] } } },
          { 'static-response': { body: 'hi' } },
        ],
      },
    ],
  });
}

async function gatewayOn(file: string, dir: string) {
  const loaded = loadConfigFile(file, new ConfigValidator(SUBSYSTEMS, POLICIES));
  return startTestGateway(loaded.config as unknown as Record<string, unknown>, {
    file,
    baseDir: dir,
    watchConfig: false,
  });
}

test('a config refused after the subsystems took it leaves them on the configuration that keeps serving', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kycgate-reload-'));
  const file = path.join(dir, 'kycgate.json');
  writeFileSync(file, configWith(['payments:read'], 'curl'));
  const gw = await gatewayOn(file, dir);
  t.after(async () => {
    await gw.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const auth = gw.gateway.services.get<AuthService>('auth');
  assert.deepEqual(auth.consumers.get('billing')?.scopes, ['payments:read']);

  // Valid for the schema and for the auth subsystem's consumers, refused when the route's policies compile (bad regex).
  writeFileSync(file, configWith(['payments:read', 'payments:write'], '('));
  assert.equal(await gw.gateway.reload('test'), false);
  assert.deepEqual(
    auth.consumers.get('billing')?.scopes,
    ['payments:read'],
    'the consumers are those of the serving config',
  );
  assert.equal((await httpRequest(gw.url + '/hello')).body, 'hi');

  writeFileSync(file, configWith(['payments:read', 'payments:write'], 'curl'));
  assert.equal(await gw.gateway.reload('test'), true);
  assert.deepEqual(auth.consumers.get('billing')?.scopes, ['payments:read', 'payments:write']);
});

test('a reload racing a stop is not put in service, and the stop waits for it', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kycgate-reload-'));
  const file = path.join(dir, 'kycgate.json');
  writeFileSync(file, configWith([], 'curl'));
  const gw = await gatewayOn(file, dir);
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const reloaded = gw.gateway.reload('racing');
  await gw.close();
  assert.equal(await reloaded, false, 'the reload did not apply');
  assert.equal(await gw.gateway.reload('after stop'), false, 'no reload after a stop');
});

test('a config mounted from a Kubernetes config map reloads when the volume swaps its ..data link', {
  timeout: 20_000,
}, async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kycgate-configmap-'));
  // The kubelet's atomic writer: a timestamped directory, `..data` pointing at it, the file a link through `..data`.
  const generation = (name: string, body: string) => {
    mkdirSync(path.join(dir, name));
    writeFileSync(
      path.join(dir, name, 'kycgate.json'),
      JSON.stringify({
        listeners: [{ name: 'main', port: 0 }],
        admin: { port: 0 },
        log: { level: 'warn', access: false },
        routes: [{ name: 'hello', match: { path: '/hello' }, policies: [{ 'static-response': { body } }] }],
      }),
    );
    symlinkSync(name, path.join(dir, '..data_tmp'));
    renameSync(path.join(dir, '..data_tmp'), path.join(dir, '..data'));
  };
  generation('..2026_01', 'one');
  const file = path.join(dir, 'kycgate.json');
  symlinkSync('..data/kycgate.json', file);
  const loaded = loadConfigFile(file, new ConfigValidator(SUBSYSTEMS, POLICIES));
  const gw = await startTestGateway(loaded.config as unknown as Record<string, unknown>, {
    file,
    baseDir: dir,
    watchConfig: true,
  });
  t.after(async () => {
    await gw.close();
    rmSync(dir, { recursive: true, force: true });
  });
  assert.equal((await httpRequest(gw.url + '/hello')).body, 'one');
  const reloaded = new Promise<void>((resolve) => {
    const off = gw.gateway.services.events.subscribe({
      onEvent: (e) => {
        if (e.type === 'config.reloaded') {
          off();
          resolve();
        }
      },
    });
  });
  generation('..2026_02', 'two');
  await reloaded;
  assert.equal((await httpRequest(gw.url + '/hello')).body, 'two');
});

test("a reload that leaves TLS settings alone keeps clients' sessions resumable; a TLS change ends them", {
  timeout: 30_000,
}, async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kycgate-reload-tls-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const ca = await issueCertificate({ subject: 'CN=reload test CA', ca: true });
  const leaf = await issueCertificate({ subject: 'CN=localhost', dns: ['localhost'], ips: ['127.0.0.1'], issuer: ca });
  writeFileSync(path.join(dir, 'server.pem'), leaf.certPem);
  writeFileSync(path.join(dir, 'server-key.pem'), leaf.keyPem);
  const file = path.join(dir, 'kycgate.json');
  const write = (body: string, tls: Record<string, unknown> = {}) =>
    writeFileSync(
      file,
      JSON.stringify({
        listeners: [{ name: 'https', port: 0, tls: { cert: 'server.pem', key: 'server-key.pem', ...tls } }],
        admin: { port: 0 },
        log: { level: 'warn', access: false },
        routes: [{ name: 'hello', match: { path: '/hello' }, policies: [{ 'static-response': { body } }] }],
      }),
    );
  write('one');
  const gw = await gatewayOn(file, dir);
  t.after(() => gw.close());
  const client = { ca: ca.certPem, path: '/hello' };
  const first = await tlsRequest(gw.port, client);
  assert.equal(first.body, 'one');
  assert.ok(first.session);

  write('two');
  assert.equal(await gw.gateway.reload('routes changed'), true);
  const resumed = await tlsRequest(gw.port, { ...client, session: first.session });
  assert.equal(resumed.body, 'two');
  assert.equal(resumed.reused, true, 'the session survives a reload that did not touch TLS');

  write('three', { min_version: 'TLSv1.3' });
  assert.equal(await gw.gateway.reload('tls changed'), true);
  const after = await tlsRequest(gw.port, { ...client, session: resumed.session ?? first.session });
  assert.equal(after.body, 'three');
  assert.equal(after.reused, false, 'changed TLS settings rotate the ticket keys');
});

test('a reload that leaves TLS settings alone re-reads the trust bundles: a replaced CA applies when the reload returns', {
  timeout: 30_000,
}, async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kycgate-reload-trust-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const serverCa = await issueCertificate({ subject: 'CN=reload test CA', ca: true });
  const leaf = await issueCertificate({
    subject: 'CN=localhost',
    dns: ['localhost'],
    ips: ['127.0.0.1'],
    issuer: serverCa,
  });
  writeFileSync(path.join(dir, 'server.pem'), leaf.certPem);
  writeFileSync(path.join(dir, 'server-key.pem'), leaf.keyPem);
  const oldCa = await trustDomainCa('a.test');
  const newCa = await trustDomainCa('a.test');
  writeFileSync(path.join(dir, 'bundle.json'), spiffeBundle([oldCa]));
  const file = path.join(dir, 'kycgate.json');
  writeFileSync(
    file,
    JSON.stringify({
      listeners: [
        {
          name: 'https',
          port: 0,
          tls: {
            cert: 'server.pem',
            key: 'server-key.pem',
            client_auth: 'required',
            trust_domains: [{ name: 'a.test', bundle: 'bundle.json' }],
          },
        },
      ],
      admin: { port: 0 },
      log: { level: 'warn', access: false },
      routes: [{ name: 'hello', match: { path: '/hello' }, policies: [{ 'static-response': { body: 'hi' } }] }],
    }),
  );
  const gw = await gatewayOn(file, dir);
  t.after(() => gw.close());
  const svidOf = async (ca: typeof oldCa) => {
    const svid = await issueSvid(ca, 'spiffe://a.test/client');
    return { cert: svid.certPem, key: svid.keyPem, ca: serverCa.certPem, path: '/hello' };
  };
  const fromOld = await svidOf(oldCa);
  const fromNew = await svidOf(newCa);
  assert.equal((await tlsRequest(gw.port, fromOld)).status, 200);
  assert.equal((await tlsRequest(gw.port, fromNew)).status, 0, 'a client of the CA not yet trusted is refused');

  writeFileSync(path.join(dir, 'bundle.json'), spiffeBundle([newCa]));
  assert.equal(await gw.gateway.reload('sighup'), true);
  assert.equal((await tlsRequest(gw.port, fromNew)).status, 200, 'the new CA is trusted as soon as the reload returns');
  assert.equal((await tlsRequest(gw.port, fromOld)).status, 0, 'the removed CA is not');
});
