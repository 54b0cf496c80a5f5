/**
 * Hot-path cost of the KYC gate: a bare route versus the same route behind kyc-gate for an approved, cached
 * subject (assertion, headers and events included). Reports throughput and, less sensitive to a busy machine, the
 * gateway's CPU time per request (the upstream runs in its own process, so only the gateway is measured). Rounds
 * alternate so noise hits both alike. Run: `npm run build && node dist/bench/kyc-hot-path.js [seconds] [rounds]`.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { httpRequest, startTestGateway } from '../testing/harness.js';
import { RequestContext } from '../src/pipeline/context.js';
import { kycTestbed, postWebhook, eventually } from '../testing/kyc-testbed.js';

const seconds = Number(process.argv[2] ?? 5);
const rounds = Number(process.argv[3] ?? 3);

interface Run {
  rps: number;
  cpuMicrosPerRequest: number;
}

async function measure(url: string, headers: Record<string, string>): Promise<Run> {
  const before = process.cpuUsage();
  const { rps, total } = await autocannon(url, headers);
  const used = process.cpuUsage(before);
  return { rps, cpuMicrosPerRequest: Math.round(((used.user + used.system) / total) * 10) / 10 };
}

function autocannon(url: string, headers: Record<string, string>): Promise<{ rps: number; total: number }> {
  const args = [
    '-j',
    '-c',
    '32',
    '-d',
    String(seconds),
    ...Object.entries(headers).flatMap(([k, v]) => ['-H', `${k}=${v}`]),
    url,
  ];
  return new Promise((resolve, reject) => {
    const child = spawn(path.resolve('node_modules/.bin/autocannon'), args, { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.on('exit', () => {
      try {
        const r = JSON.parse(out) as { requests: { average: number; total: number }; non2xx: number };
        if (r.non2xx > 0) reject(new Error(`${r.non2xx} non-2xx answers from ${url}`));
        else resolve({ rps: r.requests.average, total: r.requests.total });
      } catch (err) {
        reject(err as Error);
      }
    });
  });
}

const cleanups: Array<() => unknown> = [];
const t = { after: (fn: () => unknown) => cleanups.push(fn) } as unknown as import('node:test').TestContext;
const bed = await kycTestbed(t);
const upstream = spawn(
  process.execPath,
  [
    '-e',
    "const s=require('http').createServer((q,r)=>{q.resume();q.on('end',()=>r.end('ok'))});s.listen(0,'127.0.0.1',()=>console.log(s.address().port))",
  ],
  { stdio: ['ignore', 'pipe', 'ignore'] },
);
cleanups.push(() => upstream.kill());
const upstreamPort = await new Promise<string>((resolve) =>
  upstream.stdout.once('data', (c: Buffer) => resolve(c.toString().trim())),
);
const config = bed.config({}, { routes: [{ name: 'bare', match: { prefix: '/bare' }, upstream: 'fast' }] });
(config.upstreams as Record<string, unknown>).fast = { targets: [{ url: `http://127.0.0.1:${upstreamPort}` }] };
(config.routes as Array<{ upstream?: string }>)[0]!.upstream = 'fast';
const gw = await startTestGateway(config);
const as = { 'x-user-id': 'bench-user', accept: 'application/json' };
const sessionId = (JSON.parse((await httpRequest(`${gw.url}/api/x`, { headers: as })).body) as { session_id: string })
  .session_id;
await postWebhook(gw.url, bed.provider.webhook(sessionId, 'Approved'));
if (!(await eventually(async () => (await httpRequest(`${gw.url}/api/x`, { headers: as })).status === 200, 2000)))
  throw new Error('subject not approved');

// The decision alone (policy chain of the gated route, no sockets): what kyc-gate adds per request.
const match = gw.gateway.current.router.find('GET', '/api/orders', '127.0.0.1')!;
const context = () =>
  new RequestContext({
    id: 'bench',
    startedAt: 0,
    listener: 'main',
    protocol: 'http',
    method: 'GET',
    path: '/api/orders',
    query: '',
    host: 'h',
    hostname: 'h',
    clientIp: '127.0.0.1',
    remoteAddress: '127.0.0.1',
    headers: { host: 'h', 'x-user-id': 'bench-user', accept: '*/*' },
    req: undefined,
    route: match.route,
    params: {},
  });
const N = 200_000;
for (let i = 0; i < 20_000; i++) match.route.chain.run(context());
let started = performance.now();
for (let i = 0; i < N; i++) context();
const contextOnly = performance.now() - started;
started = performance.now();
for (let i = 0; i < N; i++)
  if (match.route.chain.run(context()) !== undefined)
    throw new Error('the cached, approved subject was not decided synchronously');
const decisionNs = Math.round(((performance.now() - started - contextOnly) / N) * 1e6);

const bare: Run[] = [];
const gated: Run[] = [];
await autocannon(`${gw.url}/bare/warmup`, {});
await autocannon(`${gw.url}/api/warmup`, { 'x-user-id': 'bench-user' });
for (let i = 0; i < rounds; i++) {
  bare.push(await measure(`${gw.url}/bare/orders`, {}));
  gated.push(await measure(`${gw.url}/api/orders`, { 'x-user-id': 'bench-user' }));
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const bRps = median(bare.map((r) => r.rps));
const gRps = median(gated.map((r) => r.rps));
const bCpu = median(bare.map((r) => r.cpuMicrosPerRequest));
const gCpu = median(gated.map((r) => r.cpuMicrosPerRequest));
console.log(
  JSON.stringify({
    decision_ns_per_request: decisionNs,
    bare,
    kyc: gated,
    throughput_cost_percent: Math.round((1 - gRps / bRps) * 1000) / 10,
    cpu_us_per_request: { bare: bCpu, kyc: gCpu, cost_percent: Math.round((gCpu / bCpu - 1) * 1000) / 10 },
  }),
);
await gw.close();
for (const fn of cleanups.reverse()) await fn();
