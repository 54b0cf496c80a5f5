/**
 * Certificate rotation from files under continuous HTTPS load, laid out as spiffe-helper writes them (svid.pem,
 * svid_key.pem, svid_bundle.pem): 20 rotations, each landing the files one after another (in place or by rename),
 * with a trust-bundle change on the way, and not one failed request. Between the certificate and the key write the
 * pair on disk does not match: the watcher must keep the old context until both do, and must not miss the last
 * write. Also: the served certificate in /readyz and /metrics, and the stalled-rotation warning.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { writeFileSync, renameSync, rmSync, mkdirSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { setImmediate as nextTick } from 'node:timers/promises';
import { startTestGateway, startUpstream, httpRequest } from '../../testing/harness.js';
import { issueSvid, tempDir, tlsRequest, trustDomainCa } from '../../testing/spiffe.js';
import type { CertificateWatcher } from './tls.js';
import type { GatewayEvent } from '../pipeline/events.js';

const ROTATIONS = 20;
const GATEWAY_ID = 'spiffe://a.test/gateway';

/** Resolves when `check()` holds, re-checking after every context swap; fails after `ms`. */
function untilSwapped(
  watcher: CertificateWatcher,
  check: () => boolean | Promise<boolean>,
  what: string,
  ms = 10_000,
): Promise<void> {
  return new Promise((resolve, reject) => {
    let done = false;
    const finish = (err?: Error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      unsubscribe();
      if (err) reject(err);
      else resolve();
    };
    const evaluate = async () => {
      try {
        if (!done && (await check())) finish();
      } catch (err) {
        finish(err as Error);
      }
    };
    const timer = setTimeout(() => finish(new Error(`timed out waiting for ${what}`)), ms);
    const unsubscribe = watcher.onReload(() => void evaluate());
    void evaluate();
  });
}

function writeInPlace(file: string, content: string): void {
  writeFileSync(file, content);
}

function writeByRename(file: string, content: string): void {
  writeFileSync(file + '.tmp', content);
  renameSync(file + '.tmp', file);
}

test('tls rotation: 20 spiffe-helper style rotations under continuous HTTPS load, zero failed requests', async (t) => {
  const dir = tempDir('kycgate-rotation-');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const ca = await trustDomainCa('a.test');
  const otherCa = await trustDomainCa('a.test');
  const certFile = path.join(dir, 'svid.pem');
  const keyFile = path.join(dir, 'svid_key.pem');
  const bundleFile = path.join(dir, 'svid_bundle.pem');
  const first = await issueSvid(ca, GATEWAY_ID, { dns: ['localhost'] });
  writeFileSync(certFile, first.certPem);
  writeFileSync(keyFile, first.keyPem);
  writeFileSync(bundleFile, ca.certPem);
  // A client whose SVID is signed by a CA that joins the bundle half-way through.
  const lateClient = await issueSvid(otherCa, 'spiffe://a.test/late-client');

  const upstream = await startUpstream((_req, res) => res.end('ok'));
  t.after(() => upstream.close());
  const gw = await startTestGateway({
    listeners: [
      {
        name: 'https',
        port: 0,
        tls: {
          cert: certFile,
          key: keyFile,
          client_auth: 'optional',
          trust_domains: [{ name: 'a.test', bundle: bundleFile }],
        },
      },
    ],
    upstreams: { app: { targets: [{ url: upstream.url }] } },
    routes: [{ name: 'all', match: { prefix: '/' }, upstream: 'app' }],
  });
  t.after(() => gw.close());
  const watcher = gw.gateway.listeners[0]!.certificates!;
  const events: GatewayEvent[] = [];
  gw.gateway.services.events.subscribe({ onEvent: (e) => void events.push(e) });

  // Continuous load: workers opening a fresh TLS connection per request (every handshake meets the context of the
  // moment) and one keep-alive worker (its connection must survive every swap). Every answer must be 200 over a
  // certificate that chains to the trust domain CA.
  const load = { running: true, ok: 0, failed: [] as string[], serials: new Set<string>() };
  const keepAlive = new https.Agent({ keepAlive: true, maxSockets: 1, ca: ca.certPem });
  t.after(() => keepAlive.destroy());
  const once = (agent: https.Agent | false) =>
    new Promise<void>((resolve) => {
      const req = https.request(
        {
          host: '127.0.0.1',
          port: gw.port,
          servername: 'localhost',
          path: '/load',
          agent,
          ...(agent === false ? { ca: ca.certPem } : {}),
        },
        (res) => {
          const serial = (res.socket as import('node:tls').TLSSocket).getPeerCertificate().serialNumber;
          res.resume();
          res.on('end', () => {
            if (res.statusCode === 200) {
              load.ok++;
              if (serial) load.serials.add(serial.toUpperCase());
            } else load.failed.push(`status ${res.statusCode}`);
            resolve();
          });
        },
      );
      req.on('error', (err: NodeJS.ErrnoException) => {
        load.failed.push(err.code ?? err.message);
        resolve();
      });
      req.end();
    });
  const worker = async (agent: https.Agent | false) => {
    while (load.running) await once(agent);
  };
  const workers = [worker(false), worker(false), worker(false), worker(keepAlive)];

  // A refused change has no event of its own; its log line is what the loop below waits for.
  const refusalCount = () =>
    gw.logs.filter((l) => l.msg === 'TLS certificate change refused; the previous certificate stays in use').length;
  let current = first;
  for (let i = 1; i <= ROTATIONS; i++) {
    const next = await issueSvid(ca, GATEWAY_ID, { dns: ['localhost'] });
    const write = i % 2 === 0 ? writeByRename : writeInPlace;
    const withLateCa = i >= ROTATIONS / 2;
    const bundle = withLateCa ? ca.certPem + otherCa.certPem : ca.certPem;
    // Certificate first, then key, then bundle, each landing separately: in between, the pair on disk mismatches.
    write(certFile, next.certPem);
    await nextTick();
    if (i % 4 === 3) {
      // Let the watcher see the half-rotated pair (new certificate, old key): it must refuse it and keep serving.
      const refusals = refusalCount();
      for (let n = 0; n < 500 && refusalCount() === refusals; n++) await new Promise((r) => setTimeout(r, 10));
      assert.ok(refusalCount() > refusals, `rotation ${i}: the mismatched pair was examined and refused`);
      const during = await tlsRequest(gw.port, { ca: ca.certPem, path: '/probe' });
      assert.equal(during.status, 200);
      assert.equal(during.serverSerial, current.cert.serialNumber.toUpperCase(), 'the previous pair keeps serving');
    }
    write(keyFile, next.keyPem);
    await nextTick();
    write(bundleFile, bundle);
    const serial = next.cert.serialNumber.toUpperCase();
    await untilSwapped(watcher, () => watcher.served?.serial === serial, `rotation ${i} to be served`);
    const fresh = await tlsRequest(gw.port, { ca: ca.certPem, path: '/probe' });
    assert.equal(fresh.status, 200, `rotation ${i}: a new connection is served`);
    assert.equal(fresh.serverSerial, serial, `rotation ${i}: a new connection gets the new certificate`);
    if (i === ROTATIONS / 2) {
      // The bundle change is applied too (client certificates from the new CA are admitted).
      await untilSwapped(
        watcher,
        async () =>
          (
            await tlsRequest(gw.port, {
              ca: ca.certPem,
              cert: lateClient.certPem,
              key: lateClient.keyPem,
              path: '/probe',
            })
          ).status === 200,
        'the new trust bundle',
      );
    }
    current = next;
  }
  load.running = false;
  await Promise.all(workers);

  assert.deepEqual(load.failed, [], 'no request failed during the rotations');
  assert.ok(load.ok >= ROTATIONS * 5, `continuous load ran (${load.ok} requests)`);
  assert.ok(load.serials.size >= ROTATIONS / 2, `the load saw the certificates change (${load.serials.size} distinct)`);
  assert.equal(watcher.rotations, ROTATIONS);
  assert.equal(watcher.served?.serial, current.cert.serialNumber.toUpperCase());
  t.diagnostic(
    `${load.ok} requests during ${ROTATIONS} rotations, ${load.serials.size} certificates seen by the load, ${refusalCount()} half-written pairs refused`,
  );

  // The gateway's own identity: readiness and metrics.
  const ready = JSON.parse((await httpRequest(gw.adminUrl + '/readyz')).body) as {
    checks: Record<string, Record<string, unknown>>;
  };
  const check = ready.checks['tls:https']!;
  assert.equal(check.ok, true);
  assert.equal(check.source, 'file');
  assert.equal(check.spiffe_id, GATEWAY_ID);
  assert.equal(check.serial, current.cert.serialNumber.toUpperCase());
  assert.equal(check.rotations, ROTATIONS);
  assert.equal(check.last_rotation, watcher.rotatedAt!.toISOString());
  const metrics = (await httpRequest(gw.adminUrl + '/metrics')).body;
  assert.match(
    metrics,
    new RegExp(
      `kycgate_tls_certificate_info\\{listener="https",serial="${current.cert.serialNumber.toUpperCase()}",spiffe_id="${GATEWAY_ID}",source="file"\\} 1`,
    ),
  );
  assert.match(metrics, new RegExp(`kycgate_tls_certificate_rotations_total\\{listener="https"\\} ${ROTATIONS}\\b`));
  assert.match(
    metrics,
    new RegExp(
      `kycgate_tls_certificate_last_rotation_seconds\\{listener="https"\\} ${Math.floor(watcher.rotatedAt!.getTime() / 1000)}\\b`,
    ),
  );
  assert.ok(!events.some((e) => e.type === 'tls.certificate_expiring'), 'fresh certificates raise no expiry warning');
});

test('tls rotation: a served certificate close to expiry without rotation warns and emits an event', async (t) => {
  const dir = tempDir('kycgate-expiry-');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const ca = await trustDomainCa('a.test');
  const svid = await issueSvid(ca, GATEWAY_ID, { dns: ['localhost'], notAfter: new Date(Date.now() + 120_000) });
  writeFileSync(path.join(dir, 'svid.pem'), svid.certPem);
  writeFileSync(path.join(dir, 'svid_key.pem'), svid.keyPem);
  const gw = await startTestGateway({
    listeners: [
      {
        name: 'https',
        port: 0,
        tls: { cert: path.join(dir, 'svid.pem'), key: path.join(dir, 'svid_key.pem'), expiry_warning_s: 600 },
      },
    ],
    routes: [{ name: 'r', match: { prefix: '/' }, policies: [{ 'static-response': {} }] }],
  });
  t.after(() => gw.close());
  const warning = gw.logs.find((l) => l.msg === 'TLS certificate expires soon and has not been rotated');
  assert.ok(warning, 'warned at start');
  assert.equal(warning.spiffe_id, GATEWAY_ID);
  assert.ok((warning.seconds_left as number) > 0 && (warning.seconds_left as number) <= 120);
  const events: GatewayEvent[] = [];
  gw.gateway.services.events.subscribe({ onEvent: (e) => void events.push(e) });
  gw.gateway.listeners[0]!.certificates!.checkExpiry();
  assert.equal(events.length, 1);
  assert.equal(events[0]!.type, 'tls.certificate_expiring');
  assert.equal(events[0]!.outcome, 'rotation_stalled');
  assert.equal(events[0]!.data?.listener, 'https');
  assert.equal(events[0]!.data?.serial, svid.cert.serialNumber.toUpperCase());
});

test('tls rotation: a Kubernetes secret volume update (the ..data symlink swapped) is served', async (t) => {
  const dir = tempDir('kycgate-k8s-');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const ca = await trustDomainCa('a.test');
  // The kubelet's atomic writer: files live in a timestamped directory, `..data` points at it, and the names the
  // config uses are symlinks through `..data`. An update writes a new directory and renames a new `..data` over
  // the old one, so the only directory event names `..data`, never `tls.crt`.
  const generation = async (name: string) => {
    const issued = await issueSvid(ca, GATEWAY_ID, { dns: ['localhost'] });
    mkdirSync(path.join(dir, name));
    writeFileSync(path.join(dir, name, 'tls.crt'), issued.certPem);
    writeFileSync(path.join(dir, name, 'tls.key'), issued.keyPem);
    symlinkSync(name, path.join(dir, '..data_tmp'));
    renameSync(path.join(dir, '..data_tmp'), path.join(dir, '..data'));
    return issued;
  };
  const first = await generation('..2026_01');
  symlinkSync('..data/tls.crt', path.join(dir, 'tls.crt'));
  symlinkSync('..data/tls.key', path.join(dir, 'tls.key'));
  const gw = await startTestGateway({
    listeners: [{ name: 'https', port: 0, tls: { cert: path.join(dir, 'tls.crt'), key: path.join(dir, 'tls.key') } }],
    routes: [{ name: 'r', match: { prefix: '/' }, policies: [{ 'static-response': {} }] }],
  });
  t.after(() => gw.close());
  const watcher = gw.gateway.listeners[0]!.certificates!;
  assert.equal(watcher.served?.serial, first.cert.serialNumber.toUpperCase());
  for (let i = 2; i <= 4; i++) {
    const next = await generation(`..2026_0${i}`);
    const serial = next.cert.serialNumber.toUpperCase();
    await untilSwapped(watcher, () => watcher.served?.serial === serial, `generation ${i} to be served`, 5_000);
    assert.equal((await tlsRequest(gw.port, { ca: ca.certPem, path: '/' })).serverSerial, serial);
  }
});
