/**
 * `npm run bench:h2`: HTTP/2 side by side. h2load (Debian nghttp2-client) drives kycgate's bare route and nginx
 * (one worker, `listen ... ssl http2`) over TLS with ALPN h2, both proxying to the same static nginx upstream over
 * HTTP/1.1 keep-alive, in interleaved rounds (the order rotates each round). Proxies are pinned to core 0, the load
 * generator and the upstream to core 1, as in bench/run.ts; requests per CPU-second of the proxy is the measure
 * that survives other processes taking turns on the core.
 */
import { parseArgs } from 'node:util';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { issueCertificate } from '../src/workload-identity/certificates.js';
import { findBinary } from '../testing/front-proxies.js';
import { run } from './closed-loop.js';
import { cpuSeconds, freePort, startProcess, waitForPort, type Managed } from './processes.js';
import { upstreamConfig, type TlsFiles } from './nginx.js';
import { median, medianInterval } from './stats.js';

const { values: args } = parseArgs({
  options: {
    requests: { type: 'string', default: '20000' },
    warmup: { type: 'string', default: '5000' },
    rounds: { type: 'string', default: '5' },
    connections: { type: 'string', default: '20' },
    streams: { type: 'string', default: '10' },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  console.log(`npm run bench:h2 -- [options]
  --requests <n>      requests per target and round (default 20000)
  --warmup <n>        warm-up requests per target before the first round (default 5000)
  --rounds <n>        rounds (default 5)
  --connections <n>   h2load connections (default 20)
  --streams <n>       concurrent streams per connection, h2load -m (default 10)`);
  process.exit(0);
}

interface H2loadResult {
  requests: number;
  succeeded: number;
  failed: number;
  seconds: number;
  /** Mean time for request, milliseconds. */
  meanMs: number;
}

/** Parses h2load's summary. */
export function parseH2load(out: string): H2loadResult {
  const finished = /finished in ([\d.]+)(ms|s)/.exec(out);
  const requests = /requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed/.exec(out);
  const status = /status codes: (\d+) 2xx/.exec(out);
  const time = /time for request:\s+[\d.]+(?:us|ms|s)\s+[\d.]+(?:us|ms|s)\s+([\d.]+)(us|ms|s)/.exec(out);
  if (!finished || !requests || !status) throw new Error(`unexpected h2load output:\n${out.slice(-2000)}`);
  const unit = (v: string, u: string) => Number(v) * (u === 's' ? 1000 : u === 'us' ? 0.001 : 1);
  return {
    requests: Number(requests[2]),
    succeeded: Number(status[1]),
    failed: Number(requests[2]) - Number(status[1]),
    seconds: unit(finished[1]!, finished[2]!) / 1000,
    meanMs: time ? unit(time[1]!, time[2]!) : Number.NaN,
  };
}

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const nginx = findBinary('nginx');
const h2load = findBinary('h2load');
if (!nginx || !h2load) {
  console.error('bench:h2 needs nginx and h2load (apt-get install nginx nghttp2-client)');
  process.exit(1);
}
const canPin = os.availableParallelism() >= 2 && findBinary('taskset') !== undefined;
const PROXY_PIN = canPin ? ['taskset', '-c', '0'] : [];
const LOAD_PIN = canPin ? ['taskset', '-c', '1'] : [];
const work = mkdtempSync(path.join(os.tmpdir(), 'kycgate-bench-h2-'));
const managed: Managed[] = [];

function nginxH2Proxy(dir: string, upstreamPort: number, port: number, tls: TlsFiles): string {
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'nginx.conf');
  const t = (name: string) => path.join(dir, name);
  writeFileSync(
    file,
    `worker_processes 1;
daemon off;
pid ${t('nginx.pid')};
error_log ${t('error.log')} warn;
events { worker_connections 4096; multi_accept on; }
http {
  access_log off;
  client_body_temp_path ${t('body')};
  proxy_temp_path ${t('proxy')};
  fastcgi_temp_path ${t('fastcgi')};
  uwsgi_temp_path ${t('uwsgi')};
  scgi_temp_path ${t('scgi')};
  http2_max_requests 100000000;
  keepalive_timeout 120s;
  upstream bench { server 127.0.0.1:${upstreamPort}; keepalive 128; keepalive_requests 100000000; }
  server {
    listen 127.0.0.1:${port} ssl http2;
    ssl_certificate ${tls.cert};
    ssl_certificate_key ${tls.key};
    location / { proxy_pass http://bench; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
`,
  );
  return file;
}

interface Target {
  label: string;
  url: string;
  pid: number;
}

async function main(): Promise<void> {
  const issued = await issueCertificate({ subject: 'CN=localhost', dns: ['localhost'], ips: ['127.0.0.1'] });
  const tls = { cert: path.join(work, 'cert.pem'), key: path.join(work, 'key.pem') };
  writeFileSync(tls.cert, issued.certPem);
  writeFileSync(tls.key, issued.keyPem);

  const upstreamPort = await freePort();
  const upstreamConf = upstreamConfig(path.join(work, 'upstream'), upstreamPort, await freePort(), tls);
  const upstream = startProcess('upstream (nginx)', LOAD_PIN, [
    nginx!,
    '-p',
    path.dirname(upstreamConf),
    '-c',
    upstreamConf,
  ]);
  managed.push(upstream);
  await waitForPort(upstreamPort, { failed: upstream.failed });

  const targets: Target[] = [];
  const nginxPort = await freePort();
  const nginxConf = nginxH2Proxy(path.join(work, 'nginx-h2'), upstreamPort, nginxPort, tls);
  const proxy = startProcess('nginx h2', PROXY_PIN, [nginx!, '-p', path.dirname(nginxConf), '-c', nginxConf]);
  managed.push(proxy);
  await waitForPort(nginxPort, { failed: proxy.failed });
  targets.push({ label: 'nginx (1 worker)', url: `https://127.0.0.1:${nginxPort}/bench`, pid: proxy.child.pid! });

  const kycPort = await freePort();
  const config = {
    listeners: [{ name: 'https', port: kycPort, tls: { cert: tls.cert, key: tls.key } }],
    admin: { enabled: false },
    log: { level: 'warn', access: false },
    upstreams: { bench: { targets: [{ url: `http://127.0.0.1:${upstreamPort}` }] } },
    routes: [{ name: 'bench', match: { prefix: '/' }, upstream: 'bench' }],
  };
  const file = path.join(work, 'kycgate.yaml');
  writeFileSync(file, JSON.stringify(config));
  const kyc = startProcess(
    'kycgate h2',
    PROXY_PIN,
    [process.execPath, path.join(root, 'dist/src/cli/main.js'), 'start', '-c', file],
    {
      env: { ...process.env, KYCGATE_DATA_DIR: path.join(work, 'kycgate-data') },
    },
  );
  managed.push(kyc);
  await waitForPort(kycPort, { failed: kyc.failed, timeoutMs: 120_000 });
  targets.push({ label: 'kycgate bare', url: `https://127.0.0.1:${kycPort}/bench`, pid: kyc.child.pid! });

  const c = args.connections!;
  const m = args.streams!;
  // A request count, not a duration (-D): h2load's timed mode can wait forever for connections it stopped.
  const load = (url: string, requests: string) =>
    run(LOAD_PIN[0] ?? h2load!, [
      ...LOAD_PIN.slice(1),
      ...(LOAD_PIN.length ? [h2load!] : []),
      '-c',
      c,
      '-m',
      m,
      '-n',
      requests,
      url,
    ]);

  console.log(
    `HTTP/2 benchmark: node ${process.version}, h2load -c ${c} -m ${m}, ${args.rounds} rounds of ${args.requests} requests, ` +
      `${canPin ? 'proxies on core 0, load and upstream on core 1' : 'no pinning'}`,
  );
  for (const t of targets) {
    const warm = await load(t.url, args.warmup!);
    if (warm.code !== 0) throw new Error(`h2load failed against ${t.label}: ${warm.stderr.slice(-500)}`);
  }

  const rows = new Map<string, { rps: number[]; perCpu: number[]; meanMs: number[]; failed: number }>();
  for (const t of targets) rows.set(t.label, { rps: [], perCpu: [], meanMs: [], failed: 0 });
  const rounds = Number(args.rounds);
  for (let r = 0; r < rounds; r++) {
    const order = targets.map((_, i) => targets[(i + r) % targets.length]!);
    for (const t of order) {
      const before = cpuSeconds(t.pid) ?? Number.NaN;
      const out = await load(t.url, args.requests!);
      const cpu = (cpuSeconds(t.pid) ?? Number.NaN) - before;
      const res = parseH2load(out.stdout);
      process.stderr.write(`round ${r + 1} ${t.label}: ${(res.succeeded / res.seconds).toFixed(0)} req/s\n`);
      const row = rows.get(t.label)!;
      row.rps.push(res.succeeded / res.seconds);
      row.perCpu.push(res.succeeded / cpu);
      row.meanMs.push(res.meanMs);
      row.failed += res.failed;
    }
  }
  const pad = (s: string, n: number, right = false) => (right ? s.padStart(n) : s.padEnd(n));
  console.log(
    `${pad('target', 22)}${pad('req/s', 10, true)}${pad('req/cpu-s', 12, true)}${pad('mean ms', 10, true)}${pad('non-2xx', 9, true)}`,
  );
  for (const [label, row] of rows) {
    console.log(
      `${pad(label, 22)}${pad(median(row.rps).toFixed(0), 10, true)}${pad(median(row.perCpu).toFixed(0), 12, true)}` +
        `${pad(median(row.meanMs).toFixed(2), 10, true)}${pad(String(row.failed), 9, true)}`,
    );
  }
  const k = rows.get('kycgate bare')!;
  const n = rows.get('nginx (1 worker)')!;
  const ratios = k.perCpu.map((v, i) => v / n.perCpu[i]!);
  const interval = medianInterval(ratios);
  console.log(
    `kycgate/nginx req per CPU-second: median ${median(ratios).toFixed(2)}` +
      (Number.isFinite(interval.low) ? ` (95% interval ${interval.low.toFixed(2)}-${interval.high.toFixed(2)})` : ''),
  );
}

try {
  await main();
} finally {
  for (const p of managed.reverse()) await p.stop();
  rmSync(work, { recursive: true, force: true });
}
