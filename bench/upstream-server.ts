/**
 * The benchmark upstream when nginx is not installed: a minimal node:http (and node:https, for direct HTTPS runs)
 * server answering every request with the same small JSON body. Prints "ready" once both listen.
 *
 *   node dist/bench/upstream-server.js '{"httpPort":9000,"httpsPort":9001,"cert":"/tmp/c.pem","key":"/tmp/k.pem"}'
 */
import http from 'node:http';
import https from 'node:https';
import { readFileSync } from 'node:fs';

const o = JSON.parse(process.argv[2] ?? '{}') as { httpPort: number; httpsPort: number; cert: string; key: string };
const BODY = Buffer.from('{"ok":true}');
const answer = (_req: http.IncomingMessage, res: http.ServerResponse) => {
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': BODY.length });
  res.end(BODY);
};
const plain = http.createServer({ keepAliveTimeout: 60_000 }, answer);
const secure = https.createServer({ cert: readFileSync(o.cert), key: readFileSync(o.key), keepAliveTimeout: 60_000 }, answer);
await Promise.all([
  new Promise<void>((r) => plain.listen(o.httpPort, '127.0.0.1', () => r())),
  new Promise<void>((r) => secure.listen(o.httpsPort, '127.0.0.1', () => r())),
]);
process.stdout.write('ready\n');
