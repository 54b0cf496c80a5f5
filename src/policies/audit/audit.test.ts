import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startTestGateway, httpRequest, memoryLogger } from '../../../testing/harness.js';
import { Services } from '../../pipeline/services.js';
import { auditPolicy } from './audit.js';
import { journalLines } from '../../audit/verify.js';

const route = (sync: boolean) => ({ name: 'payments', match: { path: '/pay' }, policies: [{ 'static-response': { status: 201, body: 'ok', headers: { 'x-ledger': 'L1' } } }, { audit: { sync } }] });

test('audit {sync: true}: the record is on disk before the answer arrives', async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kycgate-audit-policy-'));
  // A group-commit period far longer than the test: only the synchronous path can have written the record.
  const gw = await startTestGateway({ routes: [route(true)], audit: { enabled: true, durability: 'sync', group_commit_ms: 5000, response_headers: ['x-ledger'] } }, { dataDir });
  try {
    for (let i = 0; i < 3; i++) {
      const r = await httpRequest(`${gw.url}/pay`, { method: 'POST', headers: { 'x-request-id': `pay-${i}` } });
      assert.equal(r.status, 201);
      const onDisk = [...journalLines(path.join(dataDir, 'audit'))].map((l) => JSON.parse(l.line) as Record<string, any>);
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
  assert.throws(() => auditPolicy.create({ sync: true }, setup({ recorder: {}, durability: 'group' })), /durability: sync/);
  assert.throws(() => auditPolicy.create({ sync: false }, setup(undefined)), /audit.enabled/);
  assert.equal(typeof (auditPolicy.create({ sync: false }, setup({ recorder: {}, durability: 'group' })) as { onResponse?: unknown }).onResponse, 'function');
});
