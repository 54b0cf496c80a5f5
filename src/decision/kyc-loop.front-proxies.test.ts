/**
 * The real KYC loop through real nginx (auth_request) and real Caddy (forward_auth): the proxy asks kycgate's
 * decision listener, the user is challenged, approves on the embedded sandbox's hosted page, the signed webhook
 * arrives on kycgate's proxying listener, and the same request then passes with the injected identity headers;
 * a client's forged x-kyc-status never reaches the application.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import { startTestGateway, startUpstream, httpRequest, type TestGateway } from '../../testing/harness.js';
import {
  findBinary,
  requireBinary,
  startFrontProxy,
  type FrontProxy,
  type FrontProxyName,
} from '../../testing/front-proxies.js';

const KYC = {
  providers: { sandbox: { type: 'sandbox', port: 0 } },
  workflows: {
    kyc: {
      provider: 'sandbox',
      workflow_id: '0b6f3f0e-6c1d-4c55-9d9e-0e6f2f1d2a3b',
      claims: { kyc_full: 'facts.status == "Approved"' },
    },
  },
};

interface Setup {
  gw: TestGateway;
  app: Awaited<ReturnType<typeof startUpstream>>;
  proxy: FrontProxy;
  decidePort: number;
  /** Request headers the application received, in order. */
  seen: IncomingHttpHeaders[];
  close(): Promise<void>;
}

/**
 * kycgate with a proxying listener (the sandbox's callbacks) and a decision listener, a KYC-gated route whose
 * subject is the x-user-id header, the application, and the front proxy asking kycgate.
 */
async function startLoop(name: FrontProxyName, cache: Record<string, unknown> = {}): Promise<Setup> {
  const seen: IncomingHttpHeaders[] = [];
  const app = await startUpstream((req, res) => {
    seen.push(req.headers);
    res.end('from the application');
  });
  const gw = await startTestGateway({
    listeners: [
      { name: 'main', port: 0 },
      { name: 'decide', port: 0, decision: { front_proxies: ['127.0.0.1', '::1'], cache } },
    ],
    kyc: KYC,
    routes: [
      {
        name: 'api',
        match: { prefix: '/api' },
        policies: [
          {
            'kyc-gate': {
              subject: { from: 'header', header: 'x-user-id', trust_unauthenticated_header: true },
              required_claims: ['kyc_full'],
            },
          },
        ],
      },
    ],
  });
  const decidePort = gw.gateway.listeners.find((l) => l.config.name === 'decide')!.port;
  const proxy = await startFrontProxy(name, { decision: `127.0.0.1:${decidePort}`, upstream: `127.0.0.1:${app.port}` });
  return {
    gw,
    app,
    proxy,
    decidePort,
    seen,
    async close() {
      await proxy.close();
      await gw.close();
      await app.close();
    },
  };
}

/** Approves on the sandbox's hosted page, then retries `path` until the webhook has opened the gate. */
async function approveAndPass(s: Setup, verificationUrl: string, path: string, headers: Record<string, string>) {
  const approved = await httpRequest(verificationUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: 'decision=approved',
  });
  assert.equal(approved.status, 200);
  let passed: Awaited<ReturnType<typeof httpRequest>> | undefined;
  const started = Date.now();
  while (Date.now() - started < 5000) {
    passed = await httpRequest(s.proxy.url + path, { headers });
    if (passed.status === 200) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.equal(passed!.status, 200, s.proxy.log());
  return passed!;
}

for (const name of ['nginx', 'caddy'] as FrontProxyName[]) {
  describe(`KYC loop through ${name}`, () => {
    let s: Setup | undefined;
    before(async () => {
      if (findBinary(name)) s = await startLoop(name);
    });
    after(() => s?.close());

    test('challenge, sandbox approval, then the request passes with the injected headers', async (t) => {
      if (!requireBinary(t, name)) return;
      const user = {
        'x-user-id': `dana-${name}`,
        accept: 'application/json',
        'x-kyc-status': 'forged',
        'x-kyc-claims': 'everything',
      };
      const first = await httpRequest(s!.proxy.url + '/api/transfers', { headers: user });
      assert.equal(first.status, 403, s!.proxy.log());
      const url = first.headers['x-kycgate-verification-url'] as string;
      assert.match(url, /\/verify\//);
      assert.equal(JSON.parse(first.body).verification_url, url);
      assert.equal(s!.seen.length, 0, 'nothing reached the application before verification');

      const passed = await approveAndPass(s!, url, '/api/transfers', user);
      assert.equal(passed.body, 'from the application');
      const headers = s!.seen.at(-1)!;
      assert.equal(headers['x-kyc-status'], 'verified', 'the forged status was replaced');
      assert.equal(headers['x-kyc-claims'], 'kyc_full');
      assert.match(String(headers['x-subject-id']), /^sub_/);
      assert.ok(headers['x-kycgate-assertion'], 'the signed assertion reaches the application');
    });
  });
}

describe('nginx caching decisions keeps one answer per subject', () => {
  let s: Setup | undefined;
  before(async () => {
    if (findBinary('nginx')) s = await startLoop('nginx', { allow_max_age_s: 30 });
  });
  after(() => s?.close());

  test("an approved user's cached allow is never served to another user on the same URL", async (t) => {
    if (!requireBinary(t, 'nginx')) return;
    const dana = { 'x-user-id': 'dana-cached', accept: 'application/json' };
    const eve = { 'x-user-id': 'eve-cached', accept: 'application/json' };
    const first = await httpRequest(s!.proxy.url + '/api/balance', { headers: dana });
    assert.equal(first.status, 403, s!.proxy.log());
    await approveAndPass(s!, first.headers['x-kycgate-verification-url'] as string, '/api/balance', dana);

    // The allow names the subject header in Vary, so nginx keeps it for Dana only.
    const answer = await httpRequest(`http://127.0.0.1:${s!.decidePort}/nginx`, {
      headers: {
        ...dana,
        'x-original-method': 'GET',
        'x-original-uri': '/api/balance',
        'x-original-host': 'app.example',
        'x-real-ip': '203.0.113.9',
      },
    });
    assert.equal(answer.status, 200);
    assert.match(String(answer.headers.vary), /(^|, )x-user-id$/);
    assert.match(String(answer.headers['cache-control']), /max-age=\d+/);

    const before = s!.seen.length;
    for (let i = 0; i < 3; i++) {
      const r = await httpRequest(s!.proxy.url + '/api/balance', { headers: eve });
      assert.equal(r.status, 403, "Eve is challenged, not served Dana's cached allow");
    }
    assert.equal(s!.seen.length, before, "nothing of Eve's reached the application");
    assert.equal((await httpRequest(s!.proxy.url + '/api/balance', { headers: dana })).status, 200);
    assert.equal(s!.seen.at(-1)!['x-kyc-status'], 'verified');
  });
});
