/**
 * Benchmark scenarios: what kycgate is configured with and what each request carries. A scenario is data: adding a
 * capability to the benchmark (an authentication method, a KYC-gated route, a rate limit, audit) is one entry here
 * with the policies its route needs and the headers a client would send.
 *
 * The harness builds the rest of the config around it: one HTTP and one HTTPS listener, the upstream group `bench`
 * pointing at the benchmark upstream, and a route `bench` on prefix `/` forwarding to it.
 */

import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { SignJWT, exportSPKI, generateKeyPair } from 'jose';
import { issueCertificate } from '../src/workload-identity/certificates.js';
import { request } from 'undici';

const run = promisify(execFile);

export interface Scenario {
  /** Short name used on the command line (`--scenarios`) and in the results table. */
  name: string;
  /** What the scenario measures, printed with the results. */
  description: string;
  /** Keys merged into the `bench` route (policies, timeouts ...). */
  route?: Record<string, unknown>;
  /** Top-level config keys merged into the gateway config (log, server, defaults, module sections ...). */
  config?: Record<string, unknown>;
  /** Headers every benchmark request carries (credentials, tokens ...). */
  headers?: Record<string, string>;
  /** Keys merged into the HTTPS listener's `tls` (client authentication ...). */
  httpsTls?: Record<string, unknown>;
  /**
   * Measured over HTTPS only, with autocannon presenting the client certificate `prepare` returns (wrk cannot), and
   * costed against the bare route driven the same way.
   */
  mtls?: boolean;
  /** Included in the default run (the others run when named with `--scenarios`). */
  byDefault: boolean;
  /** The most this scenario may cost against the bare route (fraction of its requests per CPU-second), and why. */
  budget?: { max: number; source: string };
  /**
   * Runs before the gateway starts, with its data directory and config file: creates credentials the requests
   * will carry (an API key through the CLI, a signed token ...). Returned headers are added to every request.
   */
  prepare?(ctx: {
    dataDir: string;
    configFile: string;
    cli: string;
  }): Promise<{ headers?: Record<string, string>; clientCert?: { cert: string; key: string } }>;
  /** Runs once the gateway listens, before measuring (e.g. completes a KYC verification so the subject is cached). */
  warm?(baseUrl: string, headers: Record<string, string>): Promise<void>;
}

/** The sandbox provider and a workflow whose claim `kyc_full` is an approved verification: the KYC scenarios' setup. */
const SANDBOX_KYC = {
  providers: { sandbox: { type: 'sandbox', port: 0 } },
  workflows: {
    kyc: {
      provider: 'sandbox',
      workflow_id: '2f9e4c1a-5b6d-4e7f-8a9b-0c1d2e3f4a5b',
      claims: { kyc_full: 'facts.status == "Approved"' },
    },
  },
};

/** Creates the API key of consumer `bench` through the CLI, as an operator would; requests carry it. */
async function createApiKey({ dataDir, configFile, cli }: { dataDir: string; configFile: string; cli: string }) {
  const created = await run(
    process.execPath,
    [cli, 'keys', 'create', '--consumer', 'bench', '--json', '--config', configFile],
    { env: { ...process.env, KYCGATE_DATA_DIR: dataDir } },
  );
  const { key } = JSON.parse(created.stdout) as { key: string };
  return { headers: { 'x-api-key': key } };
}

/** Completes the sandbox verification of the requests' subject, then waits until the route lets it through. */
async function approveSubject(baseUrl: string, headers: Record<string, string>): Promise<void> {
  const first = await request(baseUrl, { headers: { ...headers, accept: 'application/json' } });
  if (first.statusCode === 200) {
    // Approved already: a restarted gateway (--restarts) reads the subject's state from its store.
    await first.body.dump();
    return;
  }
  const { verification_url: url } = (await first.body.json()) as { verification_url: string };
  await (
    await request(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'decision=approved',
    })
  ).body.dump();
  for (let i = 0; i < 200; i++) {
    const r = await request(baseUrl, { headers });
    await r.body.dump();
    if (r.statusCode === 200) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error('the KYC scenario did not reach an approved subject');
}

export const SCENARIOS: readonly Scenario[] = [
  {
    name: 'bare',
    description:
      'Bare route with default settings: routing, framing and path checks, header rules, forwarding, request metrics.',
    byDefault: true,
  },
  {
    name: 'bare-access-log',
    description:
      'Bare route with the per-request access log on: the difference to `bare` is the cost of one log line per request.',
    config: { log: { access: true } },
    byDefault: true,
  },
  {
    name: 'request-headers',
    description: 'Bare route plus the request-headers policy setting one upstream and one response header.',
    route: {
      policies: [{ 'request-headers': { set: { 'x-bench': 'yes' }, response_set: { 'x-bench-response': 'yes' } } }],
    },
    byDefault: false,
  },
  {
    name: 'api-key',
    description:
      'API-key authentication (key created with `kycgate keys create`, cached after the first request) plus a scope check.',
    config: { log: { access: false }, consumers: { bench: { scopes: ['bench:read'] } } },
    route: {
      policies: [
        { authenticate: { methods: [{ 'api-key': {} }] } },
        { authorize: { scopes: { all_of: ['bench:read'] } } },
      ],
    },
    prepare: createApiKey,
    budget: { max: 0.05, source: 'API-key auth costs <= 5% of bare-route throughput' },
    byDefault: false,
  },
  {
    name: 'jwt-cached',
    description: 'JWT authentication (ES256, key from a file; the verified token is cached by its hash).',
    config: { log: { access: false } },
    route: {
      policies: [
        {
          authenticate: {
            methods: [
              {
                jwt: {
                  issuers: [
                    {
                      issuer: 'https://idp.bench',
                      audiences: ['bench'],
                      keys_file: 'jwt-public.pem',
                      algorithms: ['ES256'],
                    },
                  ],
                },
              },
            ],
          },
        },
      ],
    },
    async prepare({ configFile }) {
      const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
      writeFileSync(path.join(path.dirname(configFile), 'jwt-public.pem'), await exportSPKI(publicKey));
      const token = await new SignJWT({ scope: 'bench:read' })
        .setProtectedHeader({ alg: 'ES256' })
        .setIssuer('https://idp.bench')
        .setAudience('bench')
        .setSubject('bench-user')
        .setIssuedAt()
        .setExpirationTime('2h')
        .sign(privateKey);
      return { headers: { authorization: `Bearer ${token}` } };
    },
    budget: { max: 0.05, source: 'cached-JWT auth costs <= 5% of bare-route throughput' },
    byDefault: false,
  },
  {
    name: 'kyc-approved',
    description:
      'KYC-gated route for an approved, cached subject (verified once through the embedded sandbox before measuring).',
    config: {
      log: { access: false },
      kyc: SANDBOX_KYC,
    },
    route: {
      policies: [
        {
          'kyc-gate': {
            subject: { from: 'header', header: 'x-user-id', trust_unauthenticated_header: true },
            required_claims: ['kyc_full'],
          },
        },
      ],
    },
    headers: { 'x-user-id': 'bench-user' },
    warm: approveSubject,
    budget: {
      max: 0.05,
      source: 'a KYC-gated route for an approved, cached subject costs <= 5% of bare-route throughput',
    },
    byDefault: false,
  },
  {
    name: 'mtls-spiffe',
    description:
      'HTTPS with a client X509-SVID: the listener requests a certificate, the gateway validates it per ' +
      "the SPIFFE rules against the trust domain's bundle, and the route authenticates the SPIFFE ID as a " +
      'consumer (kept per connection).',
    config: { log: { access: false } },
    httpsTls: { client_auth: 'optional', trust_domains: [{ name: 'bench.test', bundle: 'bench-td.pem' }] },
    route: {
      policies: [
        {
          authenticate: {
            methods: [{ mtls: { consumers: [{ name: 'bench', spiffe_id: 'spiffe://bench.test/client' }] } }],
          },
        },
      ],
    },
    mtls: true,
    async prepare({ configFile }) {
      const dir = path.dirname(configFile);
      const ca = await issueCertificate({ subject: 'CN=bench.test CA', ca: true });
      const svid = await issueCertificate({
        subject: 'CN=bench client',
        uris: ['spiffe://bench.test/client'],
        issuer: ca,
      });
      const files = { cert: path.join(dir, 'bench-client.pem'), key: path.join(dir, 'bench-client-key.pem') };
      writeFileSync(path.join(dir, 'bench-td.pem'), ca.certPem);
      writeFileSync(files.cert, svid.certPem);
      writeFileSync(files.key, svid.keyPem, { mode: 0o600 });
      return { clientCert: files };
    },
    byDefault: false,
  },
  {
    name: 'rate-limit-local',
    description:
      'A local GCRA rate limit per client IP, high enough never to reject (measures the decision, not rejections).',
    config: { log: { access: false } },
    route: {
      policies: [
        { 'rate-limit': { limits: [{ name: 'bench', rate: 10000000, per: 'second', burst: 10000000, key: ['ip'] }] } },
      ],
    },
    byDefault: false,
  },
  {
    name: 'rate-limit-redis',
    description: 'The same limit shared through Redis on 127.0.0.1:6379: one atomic script call per request.',
    config: {
      log: { access: false },
      redis: { url: 'redis://127.0.0.1:6379', key_prefix: `kycgate-bench-${process.pid}:` },
    },
    route: {
      policies: [
        {
          'rate-limit': {
            store: 'redis',
            limits: [{ name: 'bench', rate: 10000000, per: 'second', burst: 10000000, key: ['ip'] }],
          },
        },
      ],
    },
    byDefault: false,
  },
  {
    name: 'audit',
    description:
      'Bare route with the audit journal on (hash-chained records, default group commit, one write and fsync every 50 ms).',
    config: { log: { access: false }, audit: { enabled: true } },
    budget: { max: 0.1, source: 'audit on costs <= 10% of bare-route throughput' },
    byDefault: false,
  },
  {
    name: 'incidents',
    description:
      'Bare route with incident detection on (docs/DORA.md), evaluated every second: the difference to `bare` is what ' +
      'detection costs the request path (a status comparison per request) plus its timer.',
    config: { incidents: { enabled: true, interval_ms: 1000 } },
    budget: { max: 0.03, source: 'incident detection costs nothing measurable on the request path (issue #20)' },
    byDefault: false,
  },
  {
    name: 'full-chain',
    description:
      'The chain a real deployment runs: API key + scope check + KYC gate for an approved, cached subject (named by ' +
      'the authenticated client) + a local rate limit per consumer + the audit journal (one record per request).',
    config: {
      log: { access: false },
      consumers: { bench: { scopes: ['bench:read'] } },
      kyc: SANDBOX_KYC,
      audit: { enabled: true },
    },
    route: {
      policies: [
        { authenticate: { methods: [{ 'api-key': {} }] } },
        { authorize: { scopes: { all_of: ['bench:read'] } } },
        { 'kyc-gate': { subject: { from: 'header', header: 'x-user-id' }, required_claims: ['kyc_full'] } },
        {
          'rate-limit': {
            limits: [{ name: 'bench', rate: 10000000, per: 'second', burst: 10000000, key: ['consumer'] }],
          },
        },
      ],
    },
    headers: { 'x-user-id': 'bench-user' },
    prepare: createApiKey,
    warm: approveSubject,
    budget: { max: 0.2, source: 'the full policy chain costs <= 20% of bare-route throughput (issue #22)' },
    byDefault: false,
  },
];

export function scenarioNamed(name: string): Scenario | undefined {
  return SCENARIOS.find((s) => s.name === name);
}
