/**
 * The benchmark upstream when nginx is not installed: a minimal node:http (and node:https, for direct HTTPS runs)
 * server answering every request with the same small JSON body. Prints "ready" once both listen.
 *
 *   node dist/bench/upstream-server.js '{"httpPort":9000,"httpsPort":9001,"cert":"/tmp/c.pem","key":"/tmp/k.pem"}' (HTTPS only with cert and key)
 */
import http from 'node:http';
import https from 'node:https';
import { readFileSync } from 'node:fs';

const o = JSON.parse(process.argv[2] ?? '{}') as { httpPort: number; httpsPort?: number; cert?: string; key?: string };
const BODY = Buffer.from('{"ok":true}');
const answer = (_req: http.IncomingMessage, res: http.ServerResponse) => {
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': BODY.length });
  res.end(BODY);
};
const plain = http.createServer({ keepAliveTimeout: 60_000 }, answer);
// HTTPS only when a certificate is given (the decision benchmark's application speaks plain HTTP).
const secure =
  o.cert && o.key && o.httpsPort
    ? https.createServer({ cert: readFileSync(o.cert), key: readFileSync(o.key), keepAliveTimeout: 60_000 }, answer)
    : undefined;
await Promise.all([
  new Promise<void>((r) => plain.listen(o.httpPort, '127.0.0.1', () => r())),
  secure ? new Promise<void>((r) => secure.listen(o.httpsPort, '127.0.0.1', () => r())) : undefined,
]);
process.stdout.write('ready\n');
