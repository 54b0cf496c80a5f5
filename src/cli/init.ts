/**
 * `kycgate init`: writes a production-shaped configuration from flags, or by asking (on a terminal with no flags, or
 * with --interactive): HTTPS listener with a plain one redirecting to it, SQLite or PostgreSQL, Redis, API keys or
 * JWTs, a route gated on KYC with the chosen provider, the admin API, audit and access log on. Secrets are references
 * ({env}, {file}); keys the gateway needs as files (KYC keys with PostgreSQL, a self-signed certificate when the
 * named one does not exist) are generated next to the file, mode 0600. The file starts as written.
 */
import { randomBytes, generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import { stringify } from 'yaml';
import { issueCertificate } from '../workload-identity/certificates.js';

export interface InitOptions {
  output: string;
  force?: boolean;
  address: string;
  port: number;
  httpPort: number;
  adminPort: number;
  domain: string;
  tlsCert: string;
  tlsKey: string;
  dataDir: string;
  store: 'sqlite' | 'postgres';
  postgresUrlEnv: string;
  postgresSchema?: string;
  redis: boolean;
  redisUrlEnv: string;
  auth: 'api-key' | 'jwt';
  consumer: string;
  jwtIssuer?: string;
  jwtAudience: string;
  provider: 'didit' | 'sandbox';
  workflowId: string;
  sandboxPort: number;
  upstream: string;
}

export const INIT_DEFAULTS: InitOptions = {
  output: 'kycgate.yaml',
  address: '0.0.0.0',
  port: 8443,
  httpPort: 8080,
  adminPort: 9901,
  domain: 'localhost',
  tlsCert: 'tls/cert.pem',
  tlsKey: 'tls/key.pem',
  dataDir: 'data',
  store: 'sqlite',
  postgresUrlEnv: 'KYCGATE_POSTGRES_URL',
  redis: true,
  redisUrlEnv: 'KYCGATE_REDIS_URL',
  auth: 'api-key',
  consumer: 'app',
  jwtAudience: 'api',
  provider: 'didit',
  workflowId: '00000000-0000-4000-8000-000000000000',
  sandboxPort: 8090,
  upstream: 'http://127.0.0.1:3000',
};

/** The configuration document `init` writes for these options. */
export function initConfig(o: InitOptions): Record<string, unknown> {
  const pg = o.store === 'postgres';
  const authenticate =
    o.auth === 'api-key'
      ? { methods: [{ 'api-key': {} }] }
      : { methods: [{ jwt: { issuers: [{ issuer: o.jwtIssuer, discovery: true, audiences: [o.jwtAudience] }] } }] };
  // Who the verified person is: a JWT's subject, or the user id an authenticated backend sends.
  const subject =
    o.auth === 'jwt'
      ? { from: 'jwt_claim', claim: 'sub' }
      : { from: 'header', header: 'x-user-id', consumers: [o.consumer] };
  const provider =
    o.provider === 'didit'
      ? { type: 'didit', api_key: { env: 'DIDIT_API_KEY' }, webhook_secret: { env: 'DIDIT_WEBHOOK_SECRET' } }
      : { type: 'sandbox', port: o.sandboxPort };
  return {
    data_dir: o.dataDir,
    listeners: [
      {
        name: 'https',
        address: o.address,
        port: o.port,
        tls: { cert: o.tlsCert, key: o.tlsKey, min_version: 'TLSv1.2' },
      },
      { name: 'http', address: o.address, port: o.httpPort, plain: 'redirect', https_port: o.port },
    ],
    admin: { address: '127.0.0.1', port: o.adminPort, api: { enabled: true, key_file: { path: 'admin-key' } } },
    log: { level: 'info', access: true },
    store: pg
      ? {
          driver: 'postgres',
          postgres: { url: { env: o.postgresUrlEnv }, ...(o.postgresSchema ? { schema: o.postgresSchema } : {}) },
        }
      : { driver: 'sqlite' },
    ...(o.redis ? { redis: { url: { env: o.redisUrlEnv } } } : {}),
    ...(o.auth === 'api-key' ? { consumers: { [o.consumer]: { scopes: ['api'] } } } : {}),
    kyc: {
      ...(pg
        ? {
            subject_key: { file: 'secrets/kyc-subject.key' },
            encryption_keys: [{ id: 'k1', key: { file: 'secrets/kyc-data.key' } }],
            assertion: { signing_key: { file: 'secrets/kyc-assertion-key.pem' } },
          }
        : {}),
      providers: { [o.provider]: provider },
      workflows: {
        identity: {
          provider: o.provider,
          workflow_id: o.workflowId,
          claims: { kyc_full: 'facts.status == "Approved"' },
        },
      },
    },
    audit: { enabled: true },
    upstreams: { app: { targets: [{ url: o.upstream }] } },
    routes: [
      {
        name: 'api',
        match: { prefix: '/api' },
        upstream: 'app',
        policies: [{ authenticate }, { 'kyc-gate': { subject, required_claims: ['kyc_full'] } }],
      },
    ],
  };
}

function header(o: InitOptions): string {
  const env = [
    ...(o.store === 'postgres' ? [`${o.postgresUrlEnv} (postgres://user@host:5432/db)`] : []),
    ...(o.redis ? [`${o.redisUrlEnv} (redis://host:6379)`] : []),
    ...(o.provider === 'didit' ? ['DIDIT_API_KEY', 'DIDIT_WEBHOOK_SECRET'] : []),
  ];
  return [
    '# kycgate configuration written by `kycgate init`. Check it: kycgate validate <file>; run it: kycgate start -c <file>.',
    '# Every key is documented in docs/CONFIG.md and by `kycgate schema`.',
    ...(env.length > 0 ? [`# Environment it reads: ${env.join(', ')}.`] : []),
    ...(o.provider === 'didit' && o.workflowId === INIT_DEFAULTS.workflowId
      ? ['# Set kyc.workflows.identity.workflow_id to the workflow id of your Didit console.']
      : []),
    '',
  ].join('\n');
}

function writeSecret(file: string, content: string): boolean {
  if (existsSync(file)) return false;
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  writeFileSync(file, content, { mode: 0o600 });
  return true;
}

/** Writes the file and what it needs next to it; returns lines telling what was written. */
export async function writeInit(o: InitOptions): Promise<string[]> {
  const file = path.resolve(o.output);
  if (existsSync(file) && !o.force) throw new Error(`${o.output} exists; pass --force to replace it`);
  if (o.auth === 'jwt' && !o.jwtIssuer) throw new Error('--auth jwt needs --jwt-issuer <url>');
  const dir = path.dirname(file);
  const notes: string[] = [];
  const cert = path.resolve(dir, o.tlsCert);
  const key = path.resolve(dir, o.tlsKey);
  if (!existsSync(cert) && !existsSync(key)) {
    const issued = await issueCertificate({ subject: `CN=${o.domain}`, dns: [o.domain], ips: ['127.0.0.1', '::1'] });
    writeSecret(key, issued.keyPem);
    mkdirSync(path.dirname(cert), { recursive: true });
    writeFileSync(cert, issued.certPem);
    notes.push(
      `wrote a self-signed certificate for ${o.domain} to ${cert}: replace it with a real one (reloaded on change)`,
    );
  }
  if (o.store === 'postgres') {
    const secrets = path.join(dir, 'secrets');
    const made = [
      writeSecret(path.join(secrets, 'kyc-subject.key'), randomBytes(32).toString('hex')),
      writeSecret(path.join(secrets, 'kyc-data.key'), randomBytes(32).toString('hex')),
      writeSecret(
        path.join(secrets, 'kyc-assertion-key.pem'),
        generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({
          type: 'pkcs8',
          format: 'pem',
        }) as string,
      ),
    ];
    if (made.some(Boolean))
      notes.push(`wrote the KYC keys every instance must share to ${secrets} (mode 0600): keep them, back them up`);
  }
  mkdirSync(dir, { recursive: true });
  writeFileSync(file, header(o) + stringify(initConfig(o), { lineWidth: 0 }));
  notes.unshift(`wrote ${file}`);
  return notes;
}

const CHOICES: Partial<Record<keyof InitOptions, readonly string[]>> = {
  store: ['sqlite', 'postgres'],
  auth: ['api-key', 'jwt'],
  provider: ['didit', 'sandbox'],
};

/** Asks for each option, the current value as the default (Enter keeps it). */
async function ask(o: InitOptions): Promise<InitOptions> {
  // Lines are read through the iterator, which buffers them: answers typed (or piped) ahead are not lost.
  const rl = createInterface({ input: process.stdin, terminal: false });
  const lines = rl[Symbol.asyncIterator]();
  const out = { ...o } as Record<string, unknown>;
  const question = async (key: keyof InitOptions, text: string) => {
    const choices = CHOICES[key];
    for (;;) {
      process.stderr.write(`${text}${choices ? ` (${choices.join('/')})` : ''} [${String(out[key] ?? '')}]: `);
      const next = await lines.next();
      const answer = next.done ? '' : String(next.value).trim();
      if (answer === '') return;
      if (choices && !choices.includes(answer)) continue;
      out[key] =
        typeof out[key] === 'number' ? Number(answer) : typeof out[key] === 'boolean' ? /^y/i.test(answer) : answer;
      return;
    }
  };
  try {
    await question('output', 'Write the configuration to');
    await question('domain', 'Host name clients use');
    await question('port', 'HTTPS port');
    await question('store', 'Store');
    await question('redis', 'Use Redis (counters and caches shared by instances, y/n)');
    await question('auth', 'How clients authenticate');
    if (out.auth === 'jwt') {
      await question('jwtIssuer', 'JWT issuer URL (OIDC discovery)');
      await question('jwtAudience', 'JWT audience');
    }
    await question('provider', 'Verification provider');
    if (out.provider === 'didit') await question('workflowId', 'Didit workflow id');
    await question('upstream', 'URL of the API to protect');
  } finally {
    rl.close();
  }
  return out as unknown as InitOptions;
}

export function registerInitCommand(program: Command): void {
  const d = INIT_DEFAULTS;
  program
    .command('init')
    .description(
      'Write a production-shaped configuration (TLS, store, Redis, authentication, a KYC-gated route, admin API, audit ' +
        'and access log) from flags, or by asking on a terminal when no flag is given.',
    )
    .option('-o, --output <file>', 'configuration file to write', d.output)
    .option('--force', 'replace an existing file')
    .option('--interactive', 'ask for each setting (the default on a terminal without flags)')
    .option('--domain <host>', 'host name clients use (the self-signed certificate names it)', d.domain)
    .option('--address <address>', 'address the listeners bind', d.address)
    .option('--port <port>', 'HTTPS port', Number, d.port)
    .option('--http-port <port>', 'plain HTTP port, redirecting to HTTPS', Number, d.httpPort)
    .option('--admin-port <port>', 'admin listener port (bound to 127.0.0.1)', Number, d.adminPort)
    .option('--tls-cert <file>', 'certificate chain (PEM); a self-signed one is made when it does not exist', d.tlsCert)
    .option('--tls-key <file>', 'private key (PEM)', d.tlsKey)
    .option('--data-dir <dir>', 'data directory, relative to the file', d.dataDir)
    .option('--store <driver>', 'sqlite or postgres', d.store)
    .option('--postgres-url-env <name>', 'environment variable holding the PostgreSQL URL', d.postgresUrlEnv)
    .option('--postgres-schema <name>', 'PostgreSQL schema holding kycgate tables (default: the search_path)')
    .option('--no-redis', 'no Redis (one instance)')
    .option('--redis-url-env <name>', 'environment variable holding the Redis URL', d.redisUrlEnv)
    .option('--auth <method>', 'api-key or jwt', d.auth)
    .option('--consumer <name>', 'the client application API keys are issued to (api-key)', d.consumer)
    .option('--jwt-issuer <url>', 'OIDC issuer of the access tokens (jwt)')
    .option('--jwt-audience <aud>', 'audience the tokens must carry (jwt)', d.jwtAudience)
    .option('--provider <type>', 'verification provider: didit or sandbox (the embedded stand-in)', d.provider)
    .option('--workflow-id <id>', 'the provider workflow that verifies people', d.workflowId)
    .option('--sandbox-port <port>', 'port of the sandbox provider hosted page', Number, d.sandboxPort)
    .option('--upstream <url>', 'URL of the API to protect', d.upstream)
    .action(async (opts: InitOptions & { interactive?: boolean }, command: Command) => {
      try {
        for (const [key, choices] of Object.entries(CHOICES))
          if (!choices!.includes(String(opts[key as keyof InitOptions])))
            throw new Error(`--${key} must be one of ${choices!.join(', ')}`);
        const flagsGiven = command.options.some((o) => command.getOptionValueSource(o.attributeName()) === 'cli');
        const interactive = opts.interactive === true || (!flagsGiven && process.stdin.isTTY === true);
        const options = interactive ? await ask(opts) : opts;
        for (const line of await writeInit(options)) process.stderr.write(`kycgate init: ${line}\n`);
      } catch (err) {
        process.stderr.write(`kycgate init: ${(err as Error).message}\n`);
        process.exitCode = 1;
      }
    });
}
