/**
 * A small HashiCorp Vault HTTP client: KV reads (v2 envelope `{data: {data, metadata}}`, or v1 `{data}`) with a
 * token, an AppRole login, or a login with the gateway's own SPIFFE identity (a JWT-SVID through Vault's JWT auth
 * method). Errors name the path and Vault's status, never a value or a token.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Agent, request, type Dispatcher } from 'undici';
import type { LocalSecretRef, VaultConfig } from '../config/types.js';
import { resolveSecret } from '../config/secrets.js';
import { ConfigError } from '../config/load.js';
import { pino } from 'pino';
import { WorkloadJwtSvidClient } from '../workload-identity/workload-api/jwt-svid.js';
import { WorkloadX509Source } from '../workload-identity/workload-api/x509-source.js';

export class VaultError extends Error {
  constructor(
    message: string,
    /** HTTP status from Vault, or undefined when Vault could not be reached. */
    readonly status?: number,
  ) {
    super(message);
    this.name = 'VaultError';
  }
}

export interface KvSecret {
  /** The secret's keys; non-string values are kept as their JSON text. */
  data: Record<string, string>;
  /** Vault's lease hint in seconds (0: none). */
  leaseSeconds: number;
  /** KV v2 version, when given. */
  version?: number;
}

/** Leaves this share of an AppRole token's lease unused: the token is replaced before Vault expires it. */
const TOKEN_RENEW_SHARE = 2 / 3;

export class VaultClient {
  private readonly dispatcher: Dispatcher;
  private readonly base: string;
  /** Vault's CA (vault.ca_file), for the X509-SVID login's own connection. */
  private ca: string | undefined;
  private token: { value: string; renewAt: number } | undefined;
  /** The AppRole login under way: concurrent reads wait for it instead of logging in each. */
  private login: Promise<string> | undefined;

  constructor(
    private readonly config: VaultConfig,
    private readonly baseDir: string,
  ) {
    this.base = config.address.replace(/\/+$/, '');
    let ca: string | undefined;
    this.ca = undefined;
    try {
      ca = config.ca_file ? readFileSync(path.resolve(baseDir, config.ca_file), 'utf8') : undefined;
      this.ca = ca;
    } catch (err) {
      throw new ConfigError([
        `vault.ca_file: ${config.ca_file} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      ]);
    }
    this.dispatcher = new Agent({
      connect: { timeout: config.timeout_ms, ...(ca ? { ca } : {}) },
      headersTimeout: config.timeout_ms,
      bodyTimeout: config.timeout_ms,
      connections: 4,
    });
  }

  /** Reads a KV secret at its API path (`secret/data/app` for KV v2). */
  async readKv(apiPath: string): Promise<KvSecret> {
    const token = await this.currentToken();
    let answer = await this.get(apiPath, token);
    // An AppRole token revoked or expired early: log in again once. Only the token this read used is dropped: a
    // concurrent read may already have replaced it, and then its new token is used without another login.
    if (
      answer.status === 403 &&
      (this.config.auth.approle || this.config.auth.jwt_svid || this.config.auth.x509_svid)
    ) {
      if (this.token?.value === token) this.token = undefined;
      answer = await this.get(apiPath, await this.currentToken());
    }
    if (answer.status === 404) throw new VaultError(`vault: ${apiPath}: not found`, 404);
    if (answer.status !== 200) throw new VaultError(`vault: ${apiPath}: ${describe(answer)}`, answer.status);
    const body = answer.body as { lease_duration?: unknown; data?: unknown };
    const envelope = body.data as { data?: unknown; metadata?: { version?: unknown } } | undefined;
    if (typeof envelope !== 'object' || envelope === null)
      throw new VaultError(`vault: ${apiPath}: answer without data`, 200);
    // KV v2 wraps the secret with its metadata; KV v1 returns it directly.
    const isV2 = typeof envelope.data === 'object' && envelope.data !== null && 'metadata' in envelope;
    const raw = (isV2 ? envelope.data : envelope) as Record<string, unknown>;
    const data: Record<string, string> = {};
    for (const [k, v] of Object.entries(raw)) data[k] = typeof v === 'string' ? v : JSON.stringify(v);
    const leaseSeconds = typeof body.lease_duration === 'number' && body.lease_duration > 0 ? body.lease_duration : 0;
    const version = isV2 && typeof envelope.metadata?.version === 'number' ? envelope.metadata.version : undefined;
    return { data, leaseSeconds, ...(version !== undefined ? { version } : {}) };
  }

  close(): Promise<void> {
    this.svids?.close();
    this.x509?.close();
    return this.dispatcher.close();
  }

  private async currentToken(): Promise<string> {
    const auth = this.config.auth;
    if (auth.token) return this.local(auth.token, 'vault.auth.token');
    if (this.token && Date.now() < this.token.renewAt) return this.token.value;
    return (this.login ??= this.logIn().finally(() => {
      this.login = undefined;
    }));
  }

  /** The gateway's JWT-SVIDs for Vault (created on the first login). */
  private svids: WorkloadJwtSvidClient | undefined;
  /** The gateway's X509-SVIDs (created on the first login). */
  private x509: WorkloadX509Source | undefined;

  /** One login (AppRole, or JWT-SVID); stores the token with the time it should be replaced. */
  private async logIn(): Promise<string> {
    const { approle, jwt_svid: spiffe, x509_svid: x509 } = this.config.auth;
    let label: string;
    let answer: { status: number; body: unknown };
    if (x509) {
      label = 'X509-SVID login';
      this.x509 ??= new WorkloadX509Source(pino({ enabled: false }), x509.socket ? { address: x509.socket } : {});
      let svid: { certPem: string; keyPem: string } | undefined;
      try {
        svid = (await this.x509.ready(this.config.timeout_ms)).svids[0];
      } catch (err) {
        throw new VaultError(`vault: ${label}: no X509-SVID from the Workload API (${(err as Error).message})`);
      }
      // The SVID is the client certificate of this one exchange; the token it buys serves the reads.
      const agent = new Agent({
        connect: {
          timeout: this.config.timeout_ms,
          cert: svid!.certPem,
          key: svid!.keyPem,
          ...(this.ca ? { ca: this.ca } : {}),
        },
      });
      try {
        answer = await this.send('POST', `auth/${x509.mount}/login`, undefined, { name: x509.role }, agent);
      } finally {
        await agent.close();
      }
    } else if (spiffe) {
      label = 'JWT-SVID login';
      this.svids ??= new WorkloadJwtSvidClient([spiffe.audience], undefined, pino({ enabled: false }), {
        ...(spiffe.socket ? { address: spiffe.socket } : {}),
        timeoutMs: this.config.timeout_ms,
      });
      let jwt: string;
      try {
        jwt = await this.svids.token();
      } catch (err) {
        throw new VaultError(`vault: ${label}: no JWT-SVID from the Workload API (${(err as Error).message})`);
      }
      answer = await this.send('POST', `auth/${spiffe.mount}/login`, undefined, { role: spiffe.role, jwt });
    } else {
      label = 'AppRole login';
      answer = await this.send('POST', `auth/${approle!.mount}/login`, undefined, {
        role_id: this.local(approle!.role_id, 'vault.auth.approle.role_id'),
        secret_id: this.local(approle!.secret_id, 'vault.auth.approle.secret_id'),
      });
    }
    if (answer.status !== 200) throw new VaultError(`vault: ${label}: ${describe(answer)}`, answer.status);
    const login = (answer.body as { auth?: { client_token?: unknown; lease_duration?: unknown } }).auth;
    if (typeof login?.client_token !== 'string' || login.client_token === '')
      throw new VaultError(`vault: ${label}: answer without a client token`, 200);
    const lease = typeof login.lease_duration === 'number' && login.lease_duration > 0 ? login.lease_duration : 0;
    this.token = {
      value: login.client_token,
      renewAt: lease > 0 ? Date.now() + lease * 1000 * TOKEN_RENEW_SHARE : Number.POSITIVE_INFINITY,
    };
    return login.client_token;
  }

  private local(ref: LocalSecretRef, where: string): string {
    try {
      return resolveSecret(ref, this.baseDir);
    } catch (err) {
      throw new VaultError(`${where}: ${(err as Error).message.replace(/^invalid configuration:\s*-\s*/, '')}`);
    }
  }

  private get(apiPath: string, token: string): Promise<{ status: number; body: unknown }> {
    return this.send('GET', apiPath, token);
  }

  private async send(
    method: 'GET' | 'POST',
    apiPath: string,
    token: string | undefined,
    json?: unknown,
    dispatcher: Dispatcher = this.dispatcher,
  ): Promise<{ status: number; body: unknown }> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (token !== undefined) headers['x-vault-token'] = token;
    if (this.config.namespace) headers['x-vault-namespace'] = this.config.namespace;
    if (json !== undefined) headers['content-type'] = 'application/json';
    let res: Dispatcher.ResponseData;
    try {
      res = await request(`${this.base}/v1/${apiPath}`, {
        method,
        headers,
        dispatcher,
        ...(json !== undefined ? { body: JSON.stringify(json) } : {}),
        signal: AbortSignal.timeout(this.config.timeout_ms),
      });
    } catch (err) {
      throw new VaultError(
        `vault: ${apiPath}: unreachable (${(err as NodeJS.ErrnoException).code ?? (err as Error).name})`,
      );
    }
    const text = await res.body.text().catch(() => '');
    let body: unknown;
    try {
      body = text === '' ? {} : JSON.parse(text);
    } catch {
      body = {};
    }
    return { status: res.statusCode, body };
  }
}

/** Vault's `errors` list is operator-facing text (never secret data); keep it short. */
function describe(answer: { status: number; body: unknown }): string {
  const errors = (answer.body as { errors?: unknown }).errors;
  const text = Array.isArray(errors)
    ? errors
        .filter((e) => typeof e === 'string')
        .join('; ')
        .slice(0, 200)
    : '';
  return `${text || 'refused'} (${answer.status})`;
}
