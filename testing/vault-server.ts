import http from 'node:http';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import { jwtVerify, type CryptoKey, type KeyObject } from 'jose';
import type { VaultConfig } from '../src/config/types.js';

/**
 * A Vault stand-in that follows Vault's documented HTTP API: KV v2 reads at GET /v1/<mount>/data/<path> with
 * X-Vault-Token and the {data: {data, metadata}} envelope, AppRole login at POST /v1/auth/approle/login,
 * 403 {"errors":["permission denied"]} for a bad token and 404 {"errors":[]} for a missing secret. With `jwt`, the
 * JWT auth method at POST /v1/auth/<mount>/login {role, jwt}: the token is verified with the trust domain's JWT
 * signing key, and the role's bound_audiences and bound_subject are enforced, as Vault does for JWT-SVIDs
 * (400 {"errors":["error validating token: ..."]} otherwise).
 */
export async function startVault(opts: {
  roleId: string;
  secretId: string;
  leaseSeconds?: number;
  /** `clientCa`: CA client certificates are verified against (the cert auth method's trusted certificates). */
  tls?: { cert: string; key: string; clientCa?: string };
  /** The cert auth method at POST /v1/auth/<mount>/login {name}: a verified client certificate whose URI SAN is allowed. */
  cert?: { mount?: string; role: string; allowedUriSans: string[] };
  jwt?: { mount?: string; role: string; boundAudiences: string[]; boundSubject: string; key: CryptoKey | KeyObject };
}) {
  const secrets = new Map<string, { data: Record<string, string>; version: number }>();
  const tokens = new Set<string>();
  const state = { down: false, logins: 0, reads: 0 };
  let nextToken = 0;
  const handler: http.RequestListener = (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const send = (status: number, body: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      if (state.down) return send(503, { errors: ['Vault is sealed'] });
      const issue = () => {
        state.logins++;
        const token = `hvs.test-${++nextToken}`;
        tokens.add(token);
        return send(200, {
          auth: { client_token: token, policies: ['default', 'kycgate'], lease_duration: 3600, renewable: true },
        });
      };
      if (opts.cert && req.method === 'POST' && req.url === `/v1/auth/${opts.cert.mount ?? 'cert'}/login`) {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { name?: string };
        const socket = req.socket as TLSSocket;
        if (body.name !== opts.cert.role || !socket.authorized)
          return send(400, { errors: ['invalid certificate or no client certificate supplied'] });
        const sans = String(socket.getPeerCertificate().subjectaltname ?? '')
          .split(', ')
          .filter((s) => s.startsWith('URI:'))
          .map((s) => s.slice(4));
        if (!sans.some((u) => opts.cert!.allowedUriSans.includes(u)))
          return send(400, { errors: ['invalid certificate or no client certificate supplied'] });
        return issue();
      }
      if (opts.jwt && req.method === 'POST' && req.url === `/v1/auth/${opts.jwt.mount ?? 'jwt'}/login`) {
        const jwtAuth = opts.jwt;
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { role?: string; jwt?: string };
        if (body.role !== jwtAuth.role)
          return send(400, { errors: [`role "${String(body.role)}" could not be found`] });
        jwtVerify(String(body.jwt), jwtAuth.key, { audience: jwtAuth.boundAudiences }).then(
          ({ payload }) =>
            payload.sub === jwtAuth.boundSubject
              ? issue()
              : send(400, { errors: ['error validating claims: sub claim does not match bound subject'] }),
          (err: Error) => send(400, { errors: [`error validating token: ${err.message}`] }),
        );
        return;
      }
      if (req.method === 'POST' && req.url === '/v1/auth/approle/login') {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { role_id?: string; secret_id?: string };
        if (body.role_id !== opts.roleId || body.secret_id !== opts.secretId)
          return send(400, { errors: ['invalid role or secret ID'] });
        state.logins++;
        const token = `hvs.test-${++nextToken}`;
        tokens.add(token);
        return send(200, {
          request_id: 'r',
          lease_id: '',
          renewable: false,
          lease_duration: 0,
          data: null,
          auth: {
            client_token: token,
            accessor: 'a',
            policies: ['default', 'kycgate'],
            token_policies: ['default', 'kycgate'],
            metadata: { role_name: 'kycgate' },
            lease_duration: 3600,
            renewable: true,
            entity_id: 'e',
            token_type: 'service',
            orphan: true,
          },
        });
      }
      const token = req.headers['x-vault-token'];
      if (typeof token !== 'string' || !tokens.has(token)) return send(403, { errors: ['permission denied'] });
      const m = /^\/v1\/secret\/data\/(.+)$/.exec(req.url ?? '');
      const secret = m ? secrets.get(m[1]!) : undefined;
      if (req.method !== 'GET' || !secret) return send(404, { errors: [] });
      state.reads++;
      send(200, {
        request_id: 'r',
        lease_id: '',
        renewable: false,
        lease_duration: opts.leaseSeconds ?? 0,
        data: {
          data: secret.data,
          metadata: {
            created_time: new Date().toISOString(),
            custom_metadata: null,
            deletion_time: '',
            destroyed: false,
            version: secret.version,
          },
        },
        wrap_info: null,
        warnings: null,
        auth: null,
      });
    });
  };
  const server = opts.tls
    ? https.createServer(
        {
          cert: opts.tls.cert,
          key: opts.tls.key,
          ...(opts.tls.clientCa ? { ca: opts.tls.clientCa, requestCert: true, rejectUnauthorized: false } : {}),
        },
        handler,
      )
    : http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    address: `${opts.tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as { port: number }).port}`,
    state,
    tokens,
    put(p: string, data: Record<string, string>) {
      secrets.set(p, { data, version: (secrets.get(p)?.version ?? 0) + 1 });
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** A Vault client config for the stand-in at `address`. */
export function clientConfig(address: string, auth: VaultConfig['auth']): VaultConfig {
  return { address, timeout_ms: 2000, refresh_interval_s: 300, retry_interval_s: 10, auth };
}
