import { test } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { rmSync, writeFileSync } from 'node:fs';
import type { TLSSocket } from 'node:tls';
import { startTestGateway, httpRequest } from '../../testing/harness.js';
import { issueSvid, tempDir, trustDomainCa, writeFile } from '../../testing/spiffe.js';
import { TestWorkloadApi, svidMessage } from '../../testing/workload-api.js';

test(
  'upstream SPIFFE pin: exact ID and trust domain checked on every connection, resumed ones included; ' +
    'the gateway presents its Workload API SVID',
  async () => {
    const dir = tempDir();
    const caA = await trustDomainCa('a.test');
    const caB = await trustDomainCa('b.test');
    const caB2 = await trustDomainCa('b.test');
    writeFile(dir, 'a.pem', caA.certPem);
    const bBundle = writeFile(dir, 'b.pem', caB.certPem);
    const backend = await issueSvid(caB, 'spiffe://b.test/backend', { dns: ['localhost'] });
    const api = new TestWorkloadApi();
    await api.start(dir);
    api.state = {
      svids: [(await svidMessage(caA, 'spiffe://a.test/gateway')).svid],
      crl: [],
      federatedBundles: new Map(),
    };

    const seen: Array<{ path: string; client: string | undefined }> = [];
    const connections: Array<{ reused: boolean }> = [];
    const server = https.createServer(
      { cert: backend.certPem, key: backend.keyPem, requestCert: true, rejectUnauthorized: false },
      (req, res) => {
        const peer = (req.socket as TLSSocket).getPeerX509Certificate();
        seen.push({ path: req.url!, client: peer?.subjectAltName });
        // One request per connection, so every request opens (and resumes) a connection.
        res.writeHead(200, { connection: 'close' });
        res.end('backend');
      },
    );
    server.on('secureConnection', (s: TLSSocket) => connections.push({ reused: s.isSessionReused() }));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const target = `https://127.0.0.1:${(server.address() as { port: number }).port}`;
    const upstream = (spiffe: Record<string, unknown>) => ({ targets: [{ url: target }], tls: { spiffe } });
    const gw = await startTestGateway(
      {
        upstreams: {
          pinned: upstream({
            trust_domains: [{ name: 'b.test', bundle: 'b.pem' }],
            id: 'spiffe://b.test/backend',
            client_svid: { socket: api.address },
          }),
          domain: upstream({ trust_domains: [{ name: 'b.test', bundle: 'b.pem' }], trust_domain: 'b.test' }),
          wrongid: upstream({ trust_domains: [{ name: 'b.test', bundle: 'b.pem' }], id: 'spiffe://b.test/other' }),
          wrongdomain: upstream({
            trust_domains: [
              { name: 'a.test', bundle: 'a.pem' },
              { name: 'b.test', bundle: 'b.pem' },
            ],
            trust_domain: 'a.test',
          }),
          untrusted: upstream({ trust_domains: [{ name: 'a.test', bundle: 'a.pem' }], trust_domain: 'b.test' }),
        },
        routes: ['pinned', 'domain', 'wrongid', 'wrongdomain', 'untrusted'].map((name) => ({
          name,
          match: { prefix: `/${name}` },
          upstream: name,
        })),
      },
      { baseDir: dir },
    );
    try {
      for (let i = 0; i < 3; i++) {
        const r = await httpRequest(`${gw.url}/pinned`);
        assert.equal(r.status, 200);
        assert.equal(r.body, 'backend');
      }
      assert.equal(seen.filter((s) => s.path === '/pinned').length, 3);
      assert.match(seen[0]!.client ?? '', /URI:spiffe:\/\/a\.test\/gateway$/, 'the gateway presented its SVID');
      assert.ok(
        connections.some((c) => c.reused),
        'later connections resumed their TLS session',
      );
      assert.equal((await httpRequest(`${gw.url}/domain`)).status, 200);

      for (const name of ['wrongid', 'wrongdomain', 'untrusted']) {
        const r = await httpRequest(`${gw.url}/${name}`);
        assert.equal(r.status, 502, name);
        assert.equal(
          seen.filter((s) => s.path === `/${name}`).length,
          0,
          `${name}: no request reached the wrong upstream`,
        );
      }

      // The upstream's CA leaves the bundle: a resumable session must not keep it trusted.
      const before = connections.length;
      writeFileSync(bBundle, caB2.certPem);
      let status = 200;
      for (let i = 0; i < 400 && status === 200; i++) {
        status = (await httpRequest(`${gw.url}/pinned`)).status;
        if (status === 200) await new Promise((r) => setTimeout(r, 25));
      }
      assert.equal(status, 502, 'refused once the bundle no longer holds the upstream CA');
      assert.ok(
        connections.slice(before).some((c) => c.reused),
        'the refused connection was a resumed session',
      );
    } finally {
      await gw.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await api.close();
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
