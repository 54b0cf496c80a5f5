import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startTestGateway, httpRequest } from '../../testing/harness.js';

function config(frontProxies: string[]) {
  return {
    listeners: [{ name: 'decide', port: 0, decision: { front_proxies: frontProxies } }],
    admin: { port: 0 },
    routes: [
      {
        name: 'api',
        match: { prefix: '/api' },
        policies: [{ 'request-headers': { set: { 'x-kyc-status': 'approved' } } }],
      },
    ],
  };
}

const ask = (url: string) =>
  httpRequest(`${url}/nginx`, {
    headers: {
      'x-original-method': 'GET',
      'x-original-uri': '/api/x',
      'x-original-host': 'a',
      'x-real-ip': '203.0.113.7',
    },
  });

test('a reload changes who may ask; invalid front-proxy addresses are refused and the previous config keeps serving', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kycgate-decision-reload-'));
  const file = path.join(dir, 'kycgate.yaml');
  writeFileSync(file, JSON.stringify(config(['10.9.9.9'])));
  const gw = await startTestGateway(config(['10.9.9.9']), { file, watchConfig: false });
  try {
    assert.equal((await ask(gw.url)).status, 403);
    writeFileSync(file, JSON.stringify(config(['127.0.0.0/8', '::1'])));
    assert.equal(await gw.gateway.reload('test'), true);
    const allowed = await ask(gw.url);
    assert.equal(allowed.status, 200);
    assert.equal(allowed.headers['x-kyc-status'], 'approved');
    writeFileSync(file, JSON.stringify(config(['300.1.1.1'])));
    assert.equal(await gw.gateway.reload('test'), false);
    assert.equal((await ask(gw.url)).status, 200, 'the previous decision config still serves');
  } finally {
    await gw.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('allow_status 204 answers allows without a body or Content-Length', async () => {
  const cfg = config(['127.0.0.1', '::1']);
  (cfg.listeners[0]!.decision as Record<string, unknown>).allow_status = 204;
  const gw = await startTestGateway(cfg);
  try {
    const r = await ask(gw.url);
    assert.equal(r.status, 204);
    assert.equal(r.headers['content-length'], undefined);
    assert.equal(r.headers['x-kyc-status'], 'approved');
  } finally {
    await gw.close();
  }
});

test('callbacks and hosted pages use the first listener that serves routes, not a decision listener', async () => {
  const cfg = config(['127.0.0.1']);
  (cfg.listeners as unknown[]).push({ name: 'main', port: 0 });
  const gw = await startTestGateway(cfg);
  try {
    assert.equal(gw.gateway.publicBaseUrl, gw.urlOf('main'));
  } finally {
    await gw.close();
  }
});

test('conventions whose proxy never sends bodies cannot be declared body-forwarding', async () => {
  const cfg = config(['127.0.0.1']);
  (cfg.listeners[0]!.decision as Record<string, unknown>).forwarded_body = ['nginx'];
  await assert.rejects(startTestGateway(cfg), /forwarded_body/);
});

test('invalid front-proxy addresses stop the start', async () => {
  await assert.rejects(startTestGateway(config(['10.0.0.0/40'])), /front_proxies/);
});
