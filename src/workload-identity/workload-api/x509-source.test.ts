import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { WorkloadX509Source, grpcTargetOf, type WorkloadX509State } from './x509-source.js';
import { decodeX509SvidResponse, encodeX509SvidResponse, splitDerCertificates } from './protobuf.js';
import { TestWorkloadApi, svidMessage } from '../../../testing/workload-api.js';
import { tempDir, trustDomainCa } from '../../../testing/spiffe.js';
import type { IssuedCertificate } from '../certificates.js';

const logger = pino({ level: 'silent' });
let dir: string;
let ca: IssuedCertificate;
let partnerCa: IssuedCertificate;

before(async () => {
  dir = tempDir();
  ca = await trustDomainCa('a.test');
  partnerCa = await trustDomainCa('partner.test');
});

after(() => rmSync(dir, { recursive: true, force: true }));

/** Resolves with the next update for which `accept` holds (bounded by the test runner's timeout). */
function nextUpdate(source: WorkloadX509Source, accept: (s: WorkloadX509State) => boolean): Promise<WorkloadX509State> {
  return new Promise((resolve) => {
    const on = (s: WorkloadX509State) => {
      if (!accept(s)) return;
      source.off('update', on);
      resolve(s);
    };
    source.on('update', on);
  });
}

test('endpoint addresses: unix:///abs and tcp://IP:port only', () => {
  assert.equal(grpcTargetOf('unix:///run/spire/agent.sock'), 'unix:///run/spire/agent.sock');
  assert.equal(grpcTargetOf('tcp://127.0.0.1:8081'), 'ipv4:127.0.0.1:8081');
  assert.equal(grpcTargetOf('tcp://[::1]:8081'), 'ipv6:[::1]:8081');
  for (const bad of [
    'unix://relative.sock',
    'tcp://agent.local:8081',
    'tcp://127.0.0.1',
    'http://127.0.0.1:1',
    '/run/agent.sock',
  ]) {
    assert.throws(() => grpcTargetOf(bad), /Workload API address/, bad);
  }
});

test('the protobuf codec round-trips an X509SVIDResponse and splits DER chains', async () => {
  const { svid } = await svidMessage(ca, 'spiffe://a.test/w');
  const msg = {
    svids: [{ ...svid, hint: 'internal' }],
    crl: [Buffer.from('crl')],
    federatedBundles: new Map([['partner.test', Buffer.from(partnerCa.cert.rawData)]]),
  };
  const decoded = decodeX509SvidResponse(encodeX509SvidResponse(msg));
  assert.equal(decoded.svids[0]!.spiffeId, 'spiffe://a.test/w');
  assert.equal(decoded.svids[0]!.hint, 'internal');
  assert.deepEqual(decoded.svids[0]!.keyDer, svid.keyDer);
  assert.deepEqual(decoded.crl, [Buffer.from('crl')]);
  assert.deepEqual(decoded.federatedBundles.get('partner.test'), Buffer.from(partnerCa.cert.rawData));
  const two = splitDerCertificates(Buffer.concat([svid.certificatesDer, Buffer.from(ca.cert.rawData)]));
  assert.equal(two.length, 2);
  assert.deepEqual(two[1], Buffer.from(ca.cert.rawData));
});

test('FetchX509SVID: header sent, SVIDs and bundles received, rotation pushed on the open stream, reconnect after a drop', async () => {
  const api = new TestWorkloadApi();
  await api.start(tempDir());
  const first = await svidMessage(ca, 'spiffe://a.test/gateway', 60_000);
  api.state = {
    svids: [first.svid],
    crl: [],
    federatedBundles: new Map([['spiffe://partner.test', Buffer.from(partnerCa.cert.rawData)]]),
  };
  const source = new WorkloadX509Source(logger, { address: api.address, backoffStepMs: 20 });
  try {
    const state = await source.ready(5000);
    assert.equal(api.missingHeader, 0);
    assert.equal(state.svids[0]!.spiffeId, 'spiffe://a.test/gateway');
    assert.ok(
      state.svids[0]!.leaf.checkPrivateKey((await import('node:crypto')).createPrivateKey(state.svids[0]!.keyPem)),
    );
    assert.equal(state.bundles.get('a.test')!.length, 1);
    assert.equal(state.bundles.get('partner.test')!.length, 1);

    const second = await svidMessage(ca, 'spiffe://a.test/gateway', 60_000);
    const rotated = nextUpdate(
      source,
      (s) => s.svids[0]?.leaf.serialNumber === second.issued.cert.serialNumber.toUpperCase(),
    );
    api.push({ svids: [second.svid], crl: [], federatedBundles: new Map() });
    const afterRotation = await rotated;
    assert.equal(
      afterRotation.bundles.has('partner.test'),
      false,
      'every message is the whole state: the federated bundle was withdrawn',
    );

    const connects = source.connects;
    const again = nextUpdate(source, () => true);
    api.fail(grpc.status.UNAVAILABLE);
    await again;
    assert.ok(source.connects > connects, 'the stream was reopened');
  } finally {
    source.close();
    await api.close();
  }
});

test('PermissionDenied withdraws the SVIDs and keeps retrying with backoff; they return when allowed again', async () => {
  const api = new TestWorkloadApi();
  await api.start(tempDir());
  api.state = {
    svids: [(await svidMessage(ca, 'spiffe://a.test/gateway')).svid],
    crl: [],
    federatedBundles: new Map(),
  };
  const source = new WorkloadX509Source(logger, { address: api.address, backoffStepMs: 20 });
  try {
    await source.ready(5000);
    api.mode = 'deny';
    const withdrawn = nextUpdate(source, (s) => s.svids.length === 0);
    api.fail(grpc.status.PERMISSION_DENIED);
    await withdrawn;
    assert.equal(source.svid(), undefined);
    const callsWhileDenied = api.calls;
    for (let i = 0; i < 200 && api.calls < callsWhileDenied + 2; i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(api.calls >= callsWhileDenied + 2, 'retries continue while denied');
    api.mode = 'serve';
    await nextUpdate(source, (s) => s.svids.length === 1);
    assert.equal(source.svid()?.spiffeId, 'spiffe://a.test/gateway');
  } finally {
    source.close();
    await api.close();
  }
});

test('Unimplemented stops the source without retrying', async () => {
  const api = new TestWorkloadApi();
  await api.start(tempDir());
  api.mode = 'unimplemented';
  const source = new WorkloadX509Source(logger, { address: api.address, backoffStepMs: 5 });
  try {
    await assert.rejects(source.ready(5000), /Unimplemented|UNIMPLEMENTED/);
    const calls = api.calls;
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(api.calls, calls, 'no retry after Unimplemented');
    assert.equal(calls, 1);
  } finally {
    source.close();
    await api.close();
  }
});
