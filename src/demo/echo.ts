/**
 * The demo upstream: an HTTP service started in-process that answers with the method, path, query, headers and
 * body it received, so a user can see exactly what the gateway forwarded (injected headers included).
 */
import http from 'node:http';
import { createHash } from 'node:crypto';

/** Bodies up to this size are echoed back; larger ones are reported by size and SHA-256 only. */
const ECHO_BODY_LIMIT = 64 * 1024;

export interface EchoServer {
  url: string;
  close(): Promise<void>;
}

export function startEchoServer(host = '127.0.0.1', port = 0): Promise<EchoServer> {
  const server = http.createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
    const hash = createHash('sha256');
    const kept: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      if (size < ECHO_BODY_LIMIT) kept.push(chunk);
      size += chunk.length;
    });
    req.on('end', () => {
      const url = req.url ?? '/';
      const q = url.indexOf('?');
      const body = Buffer.concat(kept).subarray(0, ECHO_BODY_LIMIT);
      const payload = JSON.stringify(
        {
          method: req.method,
          path: q === -1 ? url : url.slice(0, q),
          query: q === -1 ? '' : url.slice(q + 1),
          headers: req.headers,
          body: size <= ECHO_BODY_LIMIT ? body.toString('utf8') : undefined,
          body_bytes: size,
          body_sha256: hash.digest('hex'),
        },
        null,
        2,
      );
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) });
      res.end(payload);
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const address = server.address() as { port: number };
      resolve({
        url: `http://${host}:${address.port}`,
        close: () =>
          new Promise((r) => {
            server.closeAllConnections();
            server.close(() => r());
          }),
      });
    });
  });
}
