/**
 * Decision-service measurements (short runs, not the full benchmark suite):
 *   1. decision latency of a simple allow at a fixed 1,000 decisions/s (autocannon -R 1000, one gateway process);
 *   2. requests/s through nginx (one worker) with kycgate deciding and nginx caching the answers, against the same
 *      nginx proxying without asking (wrk, or autocannon when wrk is missing).
 * Usage: npm run build && node dist/bench/decision.js [seconds]
 */
import { spawn } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { startTestGateway } from '../testing/harness.js';
import { findBinary, startNginx } from '../testing/front-proxies.js';

const seconds = Number(process.argv[2] ?? 10);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const autocannonBin = path.join(root, 'node_modules/.bin/autocannon');

/** Runs a load generator as a child process (asynchronously: the gateway under test lives in this process). */
function run(bin: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

async function autocannon(args: string[]): Promise<Record<string, any>> {
  const r = await run(autocannonBin, ['--json', ...args]);
  if (r.code !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout) as Record<string, any>;
}

async function wrk(url: string, connections: number, headers: Record<string, string>): Promise<number> {
  const wrkBin = findBinary('wrk');
  if (!wrkBin) {
    const headerArgs = Object.entries(headers).flatMap(([k, v]) => ['-H', `${k}: ${v}`]);
    return (await autocannon(['-c', String(connections), '-d', String(seconds), ...headerArgs, url])).requests.average as number;
  }
  const headerArgs = Object.entries(headers).flatMap(([k, v]) => ['-H', `${k}: ${v}`]);
  const r = await run(wrkBin, ['-t1', `-c${connections}`, `-d${seconds}s`, ...headerArgs, url]);
  const m = /Requests\/sec:\s+([\d.]+)/.exec(r.stdout);
  if (!m) throw new Error(r.stdout + r.stderr);
  return Number(m[1]);
}

const app = http.createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 2 });
  res.end('ok');
});
await new Promise<void>((r) => app.listen(0, '127.0.0.1', () => r()));
const appPort = (app.address() as { port: number }).port;

const gw = await startTestGateway({
  listeners: [{ name: 'decide', port: 0, decision: { front_proxies: ['127.0.0.1'], cache: { allow_max_age_s: 60 } } }],
  log: { level: 'warn', access: false },
  routes: [{ name: 'api', match: { prefix: '/api' }, policies: [{ 'request-headers': { set: { 'x-kyc-status': 'approved', 'x-subject-id': 'sub-1' } } }] }],
});
const decisionPort = gw.gateway.listeners[0]!.port;
// Time spent inside the gateway per decision (arrival to completion hook), free of the load generator's scheduling.
const serverMs: number[] = [];
gw.gateway.services.events.subscribe({ onRequestComplete: (ctx) => void serverMs.push(performance.now() - ctx.startedAt) });
const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return Math.round(sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! * 1000) / 1000;
};

const latency = await autocannon([
  '-R', '1000', '-c', '10', '-d', String(seconds),
  '-H', 'x-original-method: GET', '-H', 'x-original-uri: /api/accounts', '-H', 'x-original-host: api.example', '-H', 'x-real-ip: 203.0.113.7',
  `http://127.0.0.1:${decisionPort}/nginx`,
]);
console.log(JSON.stringify({
  measurement: 'decision latency, simple allow, -R 1000',
  requests_per_s: latency.requests.average,
  p50_ms: latency.latency.p50,
  p90_ms: latency.latency.p90,
  p99_ms: latency.latency.p99,
  max_ms: latency.latency.max,
  non2xx: latency.non2xx,
  in_gateway_p50_ms: percentile(serverMs, 50),
  in_gateway_p99_ms: percentile(serverMs, 99),
  in_gateway_p999_ms: percentile(serverMs, 99.9),
}));

const results: Record<string, number> = {};
if (findBinary('nginx')) {
  for (const decide of [false, true]) {
    const nginx = await startNginx({ decision: `127.0.0.1:${decisionPort}`, upstream: `127.0.0.1:${appPort}`, workers: 1, decide });
    const url = `${nginx.url}/api/accounts`;
    await wrk(url, 50, { authorization: 'Bearer warm' }); // warm-up: fills the decision cache and upstream connections
    results[decide ? 'nginx_with_kycgate_cached' : 'bare_nginx'] = await wrk(url, 50, { authorization: 'Bearer t' });
    await nginx.close();
  }
  console.log(JSON.stringify({
    measurement: 'nginx (1 worker) requests/s, 50 connections',
    ...results,
    ratio: Math.round((results.nginx_with_kycgate_cached! / results.bare_nginx!) * 100) / 100,
  }));
} else {
  console.log('# nginx not installed: throughput comparison skipped');
}
await gw.close();
app.close();
