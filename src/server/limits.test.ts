/** Client-side limits: oversized heads get 431, slow clients get 408, both as problem+json. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startTestGateway, rawRequest, statusOf } from '../../testing/harness.js';

test('limits: a request head over max_header_bytes gets 431; a client too slow to send its head gets 408', async (t) => {
  const gw = await startTestGateway({
    server: { max_header_bytes: 2048, headers_timeout_ms: 300, request_timeout_ms: 600 },
    routes: [{ name: 'r', match: { prefix: '/' }, policies: [{ 'static-response': {} }] }],
  });
  t.after(() => gw.close());
  const big = await rawRequest(gw.port, `GET / HTTP/1.1\r\nHost: a\r\nX-Big: ${'a'.repeat(4096)}\r\n\r\n`);
  assert.equal(statusOf(big), 431);
  assert.match(big, /application\/problem\+json/);

  // Send half a head and stop: the gateway answers 408 and closes instead of holding the connection.
  const started = Date.now();
  const slow = await new Promise<string>((resolve) => {
    const socket = net.connect(gw.port, '127.0.0.1', () => socket.write('GET / HTTP/1.1\r\nHost: a\r\n'));
    let data = '';
    socket.on('data', (c) => (data += c));
    socket.on('close', () => resolve(data));
    socket.on('error', () => undefined);
  });
  assert.equal(statusOf(slow), 408);
  assert.ok(Date.now() - started < 5000);
});
