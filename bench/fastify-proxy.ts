/**
 * The @fastify/http-proxy peer: Fastify 5 with @fastify/http-proxy forwarding every path to the benchmark upstream,
 * on one HTTP and one HTTPS listener in one process (like kycgate). Logging off (Fastify's default).
 *
 *   node dist/bench/fastify-proxy.js '{"upstream":"http://127.0.0.1:9000","httpPort":9100,"httpsPort":9101,"cert":"...","key":"..."}'
 */
import { readFileSync } from 'node:fs';
import Fastify from 'fastify';
import proxy from '@fastify/http-proxy';

const o = JSON.parse(process.argv[2] ?? '{}') as {
  upstream: string;
  httpPort: number;
  httpsPort: number;
  cert: string;
  key: string;
};

async function start(port: number, tls: boolean): Promise<void> {
  if (tls) {
    const app = Fastify({ https: { cert: readFileSync(o.cert), key: readFileSync(o.key) } });
    await app.register(proxy, { upstream: o.upstream, prefix: '/' });
    await app.listen({ port, host: '127.0.0.1' });
  } else {
    const app = Fastify();
    await app.register(proxy, { upstream: o.upstream, prefix: '/' });
    await app.listen({ port, host: '127.0.0.1' });
  }
}

await start(o.httpPort, false);
await start(o.httpsPort, true);
process.stdout.write('ready\n');
