import { test } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { rmSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { startTestGateway, startUpstream, type TestGateway } from '../../../testing/harness.js';
import { issueSvid, tempDir, tlsRequest, trustDomainCa } from '../../../testing/spiffe.js';
import { TestWorkloadApi, svidMessage } from '../../../testing/workload-api.js';

async function contextSwaps(gw: TestGateway, count: number): Promise<void> {
  const watcher = gw.gateway.listeners[0]!.certificates!;
  for (let i = 0; i < 200 && watcher.reloads < count; i++) await new Promise((r) => setTimeout(r, 25));
  assert.ok(watcher.reloads >= count, 'the listener swapped its TLS context');
}

test('a listener serves the Workload API SVID, rotates it without dropping connections, and stops when it is withdrawn', async () => {
  const dir = tempDir();
  const ca = await trustDomainCa('a.test');
  const api = new TestWorkloadApi();
  await api.start(dir);
  const first = await svidMessage(ca, 'spiffe://a.test/gateway', 120_000);
  api.state = { svids: [first.svid], crl: [], federatedBundles: new Map() };
  const upstream = await startUpstream((_req, res) => res.end('ok'));
  const gw = await startTestGateway({
    listeners: [{ name: 'spiffe', port: 0, tls: { workload_api: { socket: api.address } } }],
    upstreams: { app: { targets: [{ url: upstream.url }] } },
    routes: [{ name: 'all', match: { prefix: '/' }, upstream: 'app' }],
  });
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: ca.certPem });
  try {
    const serialOf = (c: { cert: { serialNumber: string } }) => c.cert.serialNumber.toUpperCase();
    const r1 = await tlsRequest(gw.port, { ca: ca.certPem });
    assert.equal(r1.status, 200);
    assert.equal(r1.serverSerial, serialOf(first.issued));

    const sockets = new Set<unknown>();
    agent.on('free', (s) => sockets.add(s));
    const get = () =>
      new Promise<number>((resolve, reject) => {
        const req = https.request(
          { host: '127.0.0.1', port: gw.port, servername: 'localhost', path: '/', agent },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode!));
          },
        );
        req.on('error', reject);
        req.end();
      });
    assert.equal(await get(), 200);

    const swaps = gw.gateway.listeners[0]!.certificates!.reloads;
    const second = await svidMessage(ca, 'spiffe://a.test/gateway', 120_000);
    api.push({ svids: [second.svid], crl: [], federatedBundles: new Map() });
    await contextSwaps(gw, swaps + 1);
    const r2 = await tlsRequest(gw.port, { ca: ca.certPem });
    assert.equal(r2.status, 200);
    assert.equal(r2.serverSerial, serialOf(second.issued), 'new connections get the rotated SVID');
    assert.equal(await get(), 200);
    assert.equal(sockets.size, 1, 'the connection opened before the rotation kept serving');
    const rotated = (await gw.gateway.readiness()).checks['tls:spiffe'] as Record<string, unknown>;
    assert.equal(rotated.ok, true);
    assert.equal(rotated.source, 'workload_api');
    assert.equal(rotated.spiffe_id, 'spiffe://a.test/gateway');
    assert.equal(rotated.serial, serialOf(second.issued));
    assert.equal(rotated.rotations, 1);
    assert.ok(typeof rotated.last_rotation === 'string' && Date.now() - Date.parse(rotated.last_rotation) < 60_000);

    api.mode = 'deny';
    api.fail(grpc.status.PERMISSION_DENIED);
    await contextSwaps(gw, swaps + 2);
    const r3 = await tlsRequest(gw.port, { ca: ca.certPem });
    assert.equal(r3.status, 0, 'no handshake with a withdrawn SVID');
    const withdrawn = (await gw.gateway.readiness()).checks['tls:spiffe'] as Record<string, unknown>;
    assert.equal(withdrawn.ok, false);
    assert.equal(withdrawn.not_after, new Date(0).toISOString());
    assert.equal(withdrawn.serial, undefined, 'no certificate is served');
  } finally {
    agent.destroy();
    await gw.close();
    await upstream.close();
    await api.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('start-up fails when the Workload API offers no SVID in time', async () => {
  const dir = tempDir();
  const api = new TestWorkloadApi();
  await api.start(dir);
  try {
    await assert.rejects(
      startTestGateway({
        listeners: [{ name: 'spiffe', port: 0, tls: { workload_api: { socket: api.address, ready_timeout_ms: 300 } } }],
        routes: [],
      }),
      /no X509-SVID from the Workload API/,
    );
  } finally {
    await api.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('config: a TLS listener needs either cert and key or workload_api, not both', async () => {
  await assert.rejects(
    startTestGateway({
      listeners: [{ name: 'x', port: 0, tls: { cert: 'a.pem', key: 'a-key.pem', workload_api: {} } }],
      routes: [],
    }),
    /oneOf|must match/,
  );
  await assert.rejects(
    startTestGateway({ listeners: [{ name: 'x', port: 0, tls: { min_version: 'TLSv1.3' } }], routes: [] }),
    /oneOf|must match|required/,
  );
});

test('client_trust: client SVIDs are checked against the bundles the Workload API pushes, federated ones included', async () => {
  const dir = tempDir();
  const ca = await trustDomainCa('a.test');
  const partnerCa = await trustDomainCa('partner.test');
  const strangerCa = await trustDomainCa('partner.test');
  const api = new TestWorkloadApi();
  await api.start(dir);
  const own = await svidMessage(ca, 'spiffe://a.test/gateway');
  const withPartner = {
    svids: [own.svid],
    crl: [],
    federatedBundles: new Map([['spiffe://partner.test', Buffer.from(partnerCa.cert.rawData)]]),
  };
  api.state = withPartner;
  const upstream = await startUpstream((_req, res) => res.end('ok'));
  const gw = await startTestGateway({
    listeners: [
      {
        name: 'spiffe',
        port: 0,
        tls: { workload_api: { socket: api.address, client_trust: true }, client_auth: 'required' },
      },
    ],
    upstreams: { app: { targets: [{ url: upstream.url }] } },
    routes: [
      {
        name: 'all',
        match: { prefix: '/' },
        upstream: 'app',
        policies: [{ 'client-certificate': { allow_unmapped: true } }],
      },
    ],
  });
  try {
    const client = async (issuer: typeof ca, id: string) => {
      const svid = await issueSvid(issuer, id);
      return { cert: svid.certPem, key: svid.keyPem, ca: ca.certPem };
    };
    const sameDomain = await client(ca, 'spiffe://a.test/caller');
    const partner = await client(partnerCa, 'spiffe://partner.test/bank');
    assert.equal((await tlsRequest(gw.port, sameDomain)).status, 200);
    const partnerFirst = await tlsRequest(gw.port, { ...partner, maxVersion: 'TLSv1.2' });
    assert.equal(partnerFirst.status, 200);
    assert.ok(partnerFirst.session, 'the partner got a session it could resume');
    assert.equal((await tlsRequest(gw.port, await client(strangerCa, 'spiffe://partner.test/bank'))).status, 0);
    assert.equal(
      (await tlsRequest(gw.port, await client(partnerCa, 'spiffe://a.test/caller'))).status,
      0,
      'a partner CA cannot vouch for the own domain',
    );

    const swaps = gw.gateway.listeners[0]!.certificates!.reloads;
    api.push({ svids: [own.svid], crl: [], federatedBundles: new Map() });
    await contextSwaps(gw, swaps + 1);
    assert.equal((await tlsRequest(gw.port, partner)).status, 0, 'federation withdrawn with the bundle');
    const resumed = await tlsRequest(gw.port, { ...partner, maxVersion: 'TLSv1.2', session: partnerFirst.session! });
    assert.notEqual(resumed.status, 200, 'a session from before the withdrawal cannot be resumed into a request');
    assert.equal((await tlsRequest(gw.port, sameDomain)).status, 200);
  } finally {
    await gw.close();
    await upstream.close();
    await api.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
