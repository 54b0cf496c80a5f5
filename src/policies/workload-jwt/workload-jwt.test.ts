import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { SignJWT, generateKeyPair, jwtVerify } from 'jose';
import { startTestGateway, startUpstream, httpRequest } from '../../../testing/harness.js';
import { tempDir } from '../../../testing/spiffe.js';
import { TestWorkloadApi } from '../../../testing/workload-api.js';

test(
  'workload-jwt: the upstream receives the gateway JWT-SVID for its audience; reused while fresh, ' +
    'refreshed after half-life, kept while valid if the agent fails, dropped on PermissionDenied',
  async () => {
    const dir = tempDir();
    const { publicKey, privateKey } = await generateKeyPair('ES256');
    const api = new TestWorkloadApi();
    await api.start(dir);
    let iatOffsetS = 0;
    api.mintJwt = async (audience, spiffeId) => {
      const now = Math.floor(Date.now() / 1000) + iatOffsetS;
      const sub = spiffeId || 'spiffe://a.test/gateway';
      const token = await new SignJWT({})
        .setProtectedHeader({ alg: 'ES256', kid: 'k1', typ: 'JWT' })
        .setSubject(sub)
        .setAudience(audience)
        .setIssuedAt(now)
        .setExpirationTime(now + 300)
        .sign(privateKey);
      return [{ spiffeId: sub, svid: token, hint: '' }];
    };
    const received: string[] = [];
    const upstream = await startUpstream((req, res) => {
      received.push(String(req.headers.authorization));
      res.end('ok');
    });
    const gw = await startTestGateway({
      upstreams: { ledger: { targets: [{ url: upstream.url }] } },
      routes: [
        {
          name: 'ledger',
          match: { prefix: '/ledger' },
          upstream: 'ledger',
          policies: [{ 'workload-jwt': { audience: ['ledger'], socket: api.address } }],
        },
        {
          name: 'pinned',
          match: { prefix: '/pinned' },
          upstream: 'ledger',
          policies: [
            { 'workload-jwt': { audience: ['ledger'], spiffe_id: 'spiffe://a.test/other', socket: api.address } },
          ],
        },
      ],
    });
    try {
      assert.equal(
        (await httpRequest(`${gw.url}/ledger`, { headers: { authorization: 'Bearer forged' } })).status,
        200,
      );
      assert.equal((await httpRequest(`${gw.url}/ledger`)).status, 200);
      assert.equal(api.jwtRequests.length, 1, 'one fetch while the token is fresh');
      assert.equal(api.missingHeader, 0);
      assert.deepEqual(api.jwtRequests[0]!.audience, ['ledger']);
      assert.equal(received[0], received[1]);
      const { payload } = await jwtVerify(received[0]!.replace(/^Bearer /, ''), publicKey, { audience: 'ledger' });
      assert.equal(payload.sub, 'spiffe://a.test/gateway');

      // From now on tokens are issued 200 s in the past with a 300 s lifetime: past half-life, so every request
      // of the (not yet used) pinned route fetches a new one.
      iatOffsetS = -200;
      const before = api.jwtRequests.length;
      assert.equal((await httpRequest(`${gw.url}/pinned`)).status, 200);
      assert.equal(api.jwtRequests.at(-1)!.spiffeId, 'spiffe://a.test/other');
      await httpRequest(`${gw.url}/pinned`);
      await httpRequest(`${gw.url}/pinned`);
      assert.equal(api.jwtRequests.length, before + 3);
      // The agent fails: the last token is still valid, so it keeps being sent.
      const mint = api.mintJwt;
      api.mintJwt = () => Promise.reject(new Error('agent trouble'));
      const last = received.at(-1);
      assert.equal((await httpRequest(`${gw.url}/pinned`)).status, 200);
      assert.equal(received.at(-1), last);
      // PermissionDenied: the workload lost its identity; the old token is no longer sent.
      api.mintJwt = mint;
      api.mode = 'deny';
      const count = upstream.requests;
      assert.equal((await httpRequest(`${gw.url}/pinned`)).status, 502);
      assert.equal(upstream.requests, count);
    } finally {
      await gw.close();
      await upstream.close();
      await api.close();
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test('workload-jwt: without a token from the agent the request is answered 502 and not forwarded', async () => {
  const dir = tempDir();
  const api = new TestWorkloadApi();
  await api.start(dir);
  api.mode = 'deny';
  const upstream = await startUpstream((_req, res) => res.end('ok'));
  const gw = await startTestGateway({
    upstreams: { ledger: { targets: [{ url: upstream.url }] } },
    routes: [
      {
        name: 'ledger',
        match: { prefix: '/' },
        upstream: 'ledger',
        policies: [{ 'workload-jwt': { audience: ['ledger'], socket: api.address } }],
      },
    ],
  });
  try {
    const r = await httpRequest(gw.url + '/');
    assert.equal(r.status, 502);
    assert.match(r.body, /bad-gateway/);
    assert.equal(upstream.requests, 0);
  } finally {
    await gw.close();
    await upstream.close();
    await api.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('workload-jwt: with the agent failing, requests are refused without calling it each time, and the outage is logged once', async () => {
  const dir = tempDir();
  const { privateKey } = await generateKeyPair('ES256');
  const api = new TestWorkloadApi();
  await api.start(dir);
  api.mode = 'deny';
  api.mintJwt = async (audience) => {
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: 'ES256', kid: 'k1', typ: 'JWT' })
      .setSubject('spiffe://a.test/gateway')
      .setAudience(audience)
      .setIssuedAt(now)
      .setExpirationTime(now + 300)
      .sign(privateKey);
    return [{ spiffeId: 'spiffe://a.test/gateway', svid: token, hint: '' }];
  };
  const received: string[] = [];
  const upstream = await startUpstream((req, res) => {
    received.push(String(req.headers.authorization));
    res.end('ok');
  });
  const gw = await startTestGateway({
    upstreams: { ledger: { targets: [{ url: upstream.url }] } },
    routes: [
      {
        name: 'ledger',
        match: { prefix: '/' },
        upstream: 'ledger',
        policies: [{ 'workload-jwt': { audience: ['ledger'], socket: api.address } }],
      },
    ],
  });
  const outageLines = () => gw.logs.filter((l) => typeof l.msg === 'string' && /JWT-SVID/.test(l.msg));
  try {
    const calls = api.calls;
    const statuses = await Promise.all(
      Array.from({ length: 10 }, () => httpRequest(gw.url + '/').then((r) => r.status)),
    );
    for (let i = 0; i < 20; i++) statuses.push((await httpRequest(gw.url + '/')).status);
    assert.ok(statuses.every((s) => s === 502));
    assert.ok(api.calls - calls <= 2, `30 requests during the outage made ${api.calls - calls} agent calls`);
    assert.equal(upstream.requests, 0);
    assert.equal(outageLines().length, 1, 'the outage is logged once');
    assert.equal(outageLines()[0]!.level, 40);
    assert.equal(outageLines()[0]!.route, 'ledger');

    // The agent answers again: after the short backoff the next request fetches a token and the recovery is logged.
    api.mode = 'serve';
    let status = 502;
    for (let i = 0; i < 100 && status !== 200; i++) {
      status = (await httpRequest(gw.url + '/')).status;
      if (status !== 200) await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(status, 200);
    assert.match(received[0]!, /^Bearer ey/);
    assert.equal((await httpRequest(gw.url + '/')).status, 200);
    assert.equal(received[1], received[0]);
    assert.equal(outageLines().length, 2);
    assert.equal(outageLines()[1]!.level, 30);
  } finally {
    await gw.close();
    await upstream.close();
    await api.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
