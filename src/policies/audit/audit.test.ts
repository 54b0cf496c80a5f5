import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startTestGateway, startUpstream, httpRequest, memoryLogger } from '../../../testing/harness.js';
import { Services } from '../../pipeline/services.js';
import { auditPolicy } from './audit.js';
import { journalLines, verifyJournal, loadPublicKey } from '../../audit/verify.js';
import type { AuditService } from '../../audit/subsystem.js';

const route = (sync: boolean) => ({
  name: 'payments',
  match: { path: '/pay' },
  policies: [{ 'static-response': { status: 201, body: 'ok', headers: { 'x-ledger': 'L1' } } }, { audit: { sync } }],
});

test('audit {sync: true}: the record is on disk before the answer arrives', async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kycgate-audit-policy-'));
  // A group-commit period far longer than the test: only the synchronous path can have written the record.
  const gw = await startTestGateway(
    {
      routes: [route(true)],
      audit: { enabled: true, durability: 'sync', group_commit_ms: 5000, response_headers: ['x-ledger'] },
    },
    { dataDir },
  );
  try {
    for (let i = 0; i < 3; i++) {
      const r = await httpRequest(`${gw.url}/pay`, { method: 'POST', headers: { 'x-request-id': `pay-${i}` } });
      assert.equal(r.status, 201);
      const onDisk = [...journalLines(path.join(dataDir, 'audit'))].map(
        (l) => JSON.parse(l.line) as Record<string, any>,
      );
      const rec = onDisk.find((x) => x.request_id === `pay-${i}`);
      assert.ok(rec, `record of pay-${i} written before its answer`);
      assert.equal(rec.status, 201);
      assert.equal(rec.response_headers['x-ledger'], 'L1');
    }
  } finally {
    await gw.close();
  }
  const all = [...journalLines(path.join(dataDir, 'audit'))].map((l) => JSON.parse(l.line) as Record<string, any>);
  assert.equal(all.filter((x) => x.type === 'http.request').length, 3, 'one record per request, not two');
  fs.rmSync(dataDir, { recursive: true, force: true });
});

test('audit {sync: true} is refused without audit.durability: sync, and the policy needs the journal', () => {
  const setup = (service: unknown) => {
    const services = new Services(memoryLogger().logger, os.tmpdir());
    if (service) services.register('audit', service);
    return { routeName: 'payments', upstreamNames: new Set<string>(), services };
  };
  assert.throws(
    () => auditPolicy.create({ sync: true }, setup({ recorder: {}, durability: 'group' })),
    /durability: sync/,
  );
  assert.throws(() => auditPolicy.create({ sync: false }, setup(undefined)), /audit.enabled/);
  assert.equal(
    typeof (
      auditPolicy.create({ sync: false }, setup({ recorder: {}, durability: 'group' })) as { onResponse?: unknown }
    ).onResponse,
    'function',
  );
});

test('audit {sync: true}: when the record cannot be written, a 2xx is withheld and answered 503 problem+json', async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kycgate-audit-policy-'));
  const upstream = await startUpstream((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'text/plain' }).end('upstream-secret-body'));
  });
  const gw = await startTestGateway(
    {
      upstreams: { app: { targets: [{ url: upstream.url }] } },
      routes: [
        route(true),
        { name: 'proxied', match: { prefix: '/api' }, upstream: 'app', policies: [{ audit: { sync: true } }] },
      ],
      audit: { enabled: true, durability: 'sync', group_commit_ms: 5000 },
    },
    { dataDir },
  );
  const journal = gw.gateway.services.find<AuditService>('audit')!.journal!;
  const full = fs.openSync('/dev/full', 'w');
  let segmentFd = -1;
  try {
    assert.equal((await httpRequest(`${gw.url}/api/ok`, { headers: { 'x-request-id': 'before' } })).status, 200);
    // Every journal write now fails with ENOSPC.
    segmentFd = journal.swapSegmentFdForTest(full);
    for (const [url, id] of [
      [`${gw.url}/api/x`, 'proxied-full'],
      [`${gw.url}/pay`, 'reply-full'],
    ] as const) {
      const r = await httpRequest(url, { method: 'POST', headers: { 'x-request-id': id } });
      assert.equal(r.status, 503, `${id}: no success without its record`);
      assert.match(String(r.headers['content-type']), /application\/problem\+json/);
      assert.equal(r.headers['retry-after'], '1');
      assert.equal((JSON.parse(r.body) as { type: string }).type.endsWith('service-unavailable'), true);
      assert.ok(!r.body.includes('upstream-secret-body') && !r.body.includes('ok'), 'the withheld body is not sent');
    }
    journal.swapSegmentFdForTest(segmentFd);
    segmentFd = -1;
    const after = await httpRequest(`${gw.url}/api/again`, { headers: { 'x-request-id': 'after' } });
    assert.equal(after.status, 200);
    assert.equal(after.body, 'upstream-secret-body');
  } finally {
    if (segmentFd !== -1) journal.swapSegmentFdForTest(segmentFd);
    fs.closeSync(full);
    await gw.close();
    await upstream.close();
  }
  const auditDir = path.join(dataDir, 'audit');
  const v = verifyJournal(auditDir, loadPublicKey(auditDir));
  assert.equal(v.ok, true, v.problem?.message);
  const records = [...journalLines(auditDir)]
    .map((l) => JSON.parse(l.line) as Record<string, any>)
    .filter((x) => x.type === 'http.request');
  for (const id of ['proxied-full', 'reply-full']) {
    const mine = records.filter((x) => x.request_id === id);
    assert.deepEqual(
      mine.map((x) => x.status),
      [503],
      `${id}: recorded once, as the 503 that was sent`,
    );
  }
  assert.equal(records.find((x) => x.request_id === 'after')?.status, 200);
  fs.rmSync(dataDir, { recursive: true, force: true });
});
