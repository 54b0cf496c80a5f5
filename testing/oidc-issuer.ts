/**
 * An OIDC issuer stand-in for tests: serves discovery (`/.well-known/openid-configuration`) and a JWKS (`/jwks`)
 * with the keys a test publishes, counts fetches, and can fail its JWKS on demand. For the authorization code flow
 * (OpenID Connect Core 1.0 §3.1, PKCE per RFC 7636) it has an authorization endpoint (`/authorize`) that approves
 * at once the user a test sets (`idp.user`; none: `error=access_denied`) and a token endpoint (`/token`) that
 * checks the client (client_secret_basic or client_secret_post), the code (once, within a minute, for the same
 * client and redirect_uri) and the code verifier (S256), and answers an id_token signed with a key of its JWKS
 * (RS256) carrying the nonce of the authorization request. `tamper` makes it misbehave for refusal tests.
 */
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestContext } from 'node:test';
import { exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';

export interface IdpUser {
  sub: string;
  claims?: Record<string, unknown>;
}

export interface IdP {
  url: string;
  /** Keys published in the JWKS. */
  published: JWK[];
  jwksFetches: number;
  discoveryFetches: number;
  failing: boolean;
  /** The registered client of the code flow (set by `enableCodeFlow`). */
  client?: { id: string; secret: string; redirectUri: string };
  /** Who the authorization endpoint approves; undefined: the user declines (access_denied). */
  user?: IdpUser;
  /** For refusal tests: another state in the redirect; an id_token with another nonce, audience, or expired. */
  tamper?: 'nonce' | 'state' | 'audience' | 'expired';
  /** Token requests answered. */
  tokens: number;
  /** Registers the client and makes the signing key (published in the JWKS). */
  enableCodeFlow(client: { id: string; secret: string; redirectUri: string }): Promise<void>;
  close(): Promise<void>;
}

interface Grant {
  clientId: string;
  redirectUri: string;
  challenge: string;
  nonce: string | null;
  user: IdpUser;
  at: number;
}

export async function startIdP(t: TestContext): Promise<IdP> {
  const idp = { published: [] as JWK[], jwksFetches: 0, discoveryFetches: 0, failing: false, tokens: 0 } as IdP;
  const grants = new Map<string, Grant>();
  let signingKey: Parameters<SignJWT['sign']>[0] | undefined;
  idp.enableCodeFlow = async (client) => {
    idp.client = client;
    const { publicKey, privateKey } = await generateKeyPair('RS256');
    signingKey = privateKey;
    idp.published.push({ ...(await exportJWK(publicKey)), kid: 'code-flow', alg: 'RS256', use: 'sig' });
  };
  const json = (res: http.ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(JSON.stringify(body));
  };
  const authorize = (url: URL, res: http.ServerResponse) => {
    const q = url.searchParams;
    const client = idp.client;
    // Without a valid client and redirect_uri the user is never sent back (OIDC Core §3.1.2.4).
    if (client === undefined || q.get('client_id') !== client.id || q.get('redirect_uri') !== client.redirectUri)
      return json(res, 400, { error: 'invalid_request' });
    const back = new URL(client.redirectUri);
    const state = q.get('state');
    if (state !== null) back.searchParams.set('state', idp.tamper === 'state' ? `${state}x` : state);
    const scopes = (q.get('scope') ?? '').split(' ');
    const challenge = q.get('code_challenge');
    if (q.get('response_type') !== 'code' || !scopes.includes('openid'))
      back.searchParams.set('error', 'invalid_request');
    else if (challenge === null || q.get('code_challenge_method') !== 'S256')
      back.searchParams.set('error', 'invalid_request');
    else if (idp.user === undefined) back.searchParams.set('error', 'access_denied');
    else {
      const code = randomBytes(16).toString('base64url');
      grants.set(code, {
        clientId: client.id,
        redirectUri: client.redirectUri,
        challenge,
        nonce: q.get('nonce'),
        user: idp.user,
        at: Date.now(),
      });
      back.searchParams.set('code', code);
    }
    res.writeHead(302, { location: back.toString(), 'cache-control': 'no-store' });
    res.end();
  };
  const token = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
    let id = form.get('client_id');
    let secret = form.get('client_secret');
    const auth = req.headers.authorization;
    if (auth?.startsWith('Basic ')) {
      const [u, p] = Buffer.from(auth.slice(6), 'base64').toString('utf8').split(':');
      id = decodeURIComponent(u ?? '');
      secret = decodeURIComponent(p ?? '');
    }
    const client = idp.client;
    if (client === undefined || id !== client.id || secret !== client.secret)
      return json(res, 401, { error: 'invalid_client' });
    if (form.get('grant_type') !== 'authorization_code') return json(res, 400, { error: 'unsupported_grant_type' });
    const code = form.get('code') ?? '';
    const grant = grants.get(code);
    grants.delete(code);
    const verifier = form.get('code_verifier') ?? '';
    if (
      grant === undefined ||
      Date.now() - grant.at > 60_000 ||
      grant.clientId !== id ||
      grant.redirectUri !== form.get('redirect_uri') ||
      createHash('sha256').update(verifier).digest('base64url') !== grant.challenge
    )
      return json(res, 400, { error: 'invalid_grant' });
    idp.tokens++;
    const nonce = idp.tamper === 'nonce' ? 'not-the-nonce' : grant.nonce;
    const idToken = await new SignJWT({ ...grant.user.claims, ...(nonce !== null ? { nonce } : {}) })
      .setProtectedHeader({ alg: 'RS256', kid: 'code-flow' })
      .setIssuer(idp.url)
      .setAudience(idp.tamper === 'audience' ? 'another-client' : client.id)
      .setSubject(grant.user.sub)
      .setIssuedAt(idp.tamper === 'expired' ? Math.floor(Date.now() / 1000) - 600 : undefined)
      .setExpirationTime(idp.tamper === 'expired' ? Math.floor(Date.now() / 1000) - 300 : '5m')
      .sign(signingKey!);
    json(res, 200, {
      access_token: randomBytes(16).toString('base64url'),
      token_type: 'Bearer',
      expires_in: 300,
      id_token: idToken,
    });
  };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', idp.url);
    if (url.pathname === '/.well-known/openid-configuration') {
      idp.discoveryFetches++;
      return json(res, 200, {
        issuer: idp.url,
        jwks_uri: `${idp.url}/jwks`,
        authorization_endpoint: `${idp.url}/authorize`,
        token_endpoint: `${idp.url}/token`,
        response_types_supported: ['code'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['RS256'],
        code_challenge_methods_supported: ['S256'],
        token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
      });
    }
    if (url.pathname === '/jwks') {
      idp.jwksFetches++;
      if (idp.failing) {
        res.statusCode = 500;
        res.end('down');
        return;
      }
      return json(res, 200, { keys: idp.published });
    }
    if (url.pathname === '/authorize' && req.method === 'GET') return authorize(url, res);
    if (url.pathname === '/token' && req.method === 'POST')
      return void token(req, res).catch(() => json(res, 500, { error: 'server_error' }));
    res.statusCode = 404;
    res.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  idp.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  idp.close = () =>
    new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  t.after(() => idp.close());
  return idp;
}
