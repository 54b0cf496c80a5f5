import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { freePort, startProcess, waitForPort } from './processes.js';
import { issueCertificate } from '../src/workload-identity/certificates.js';

const here = path.dirname(fileURLToPath(import.meta.url));

test('bench: the floor peer is a correct minimal proxy: hop-by-hop headers removed both ways, X-Forwarded-For added, bodies streamed', async (t) => {
  let seen: IncomingHttpHeaders = {};
  const upstream = createServer((req, res) => {
    seen = req.headers;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      res.writeHead(201, {
        connection: 'keep-alive, x-upstream-hop',
        'x-upstream-hop': '1',
        'keep-alive': 'timeout=5',
        'x-kept': 'yes',
      });
      res.end(`got ${Buffer.concat(chunks).length} bytes`);
    });
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  t.after(() => upstream.close());
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kycgate-floor-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const issued = await issueCertificate({ subject: 'CN=localhost', dns: ['localhost'], ips: ['127.0.0.1'] });
  writeFileSync(path.join(dir, 'c.pem'), issued.certPem);
  writeFileSync(path.join(dir, 'k.pem'), issued.keyPem);
  const httpPort = await freePort();
  const httpsPort = await freePort();
  const options = {
    upstream: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`,
    httpPort,
    httpsPort,
    cert: path.join(dir, 'c.pem'),
    key: path.join(dir, 'k.pem'),
  };
  const proc = startProcess(
    'floor',
    [],
    [process.execPath, path.join(here, 'minimal-proxy.js'), JSON.stringify(options)],
  );
  t.after(() => proc.stop());
  await waitForPort(httpPort, { failed: proc.failed });

  const body = Buffer.alloc(256 * 1024, 7);
  const answer = await new Promise<{ status: number; headers: IncomingHttpHeaders; text: string }>(
    (resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: httpPort,
          method: 'POST',
          path: '/p?q=1',
          headers: {
            connection: 'x-client-hop',
            'x-client-hop': 'secret',
            te: 'trailers',
            'x-forwarded-for': '203.0.113.9',
            'x-kept': 'too',
          },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (text += c));
          res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, text }));
        },
      );
      req.on('error', reject);
      req.end(body);
    },
  );
  assert.equal(answer.status, 201);
  assert.equal(answer.text, `got ${body.length} bytes`);
  assert.equal(answer.headers['x-kept'], 'yes');
  assert.equal(
    answer.headers['x-upstream-hop'],
    undefined,
    'a header the upstream named in Connection is not passed on',
  );
  assert.equal(seen['x-client-hop'], undefined, 'a header the client named in Connection is not passed on');
  assert.equal(seen.te, undefined);
  assert.equal(seen['x-kept'], 'too');
  assert.equal(seen['x-forwarded-for'], '203.0.113.9, 127.0.0.1');
});
