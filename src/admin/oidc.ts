/**
 * Dashboard sign-in through an OpenID Connect issuer (`admin.api.oidc`): the authorization code flow with PKCE
 * (S256), state and nonce, under `/admin/api/oidc/`:
 * - `GET config`: whether OIDC sign-in is offered and the issuer's name (public: the sign-in form asks);
 * - `GET login`: a fresh state, nonce and code verifier kept in the store, the flow cookie naming them (HttpOnly,
 *   SameSite=Lax so that it comes back with the issuer's redirect, 10 minutes), then a redirect to the issuer's
 *   authorization endpoint;
 * - `GET callback`: the flow of the cookie taken from the store (once: a replayed callback finds none), the state
 *   checked against it, the code exchanged at the token endpoint
 *   (client_secret_basic, the verifier), the id_token verified with jose (signature from the issuer's JWKS, issuer,
 *   audience, expiry, nonce), the subject and its role claim mapped to a role; then a session cookie (HttpOnly,
 *   SameSite=Strict, Secure over TLS, `session_ttl_s`) and a redirect to the dashboard. Any refusal is a page saying
 *   why, and audited (`admin.auth.failure`, `method: oidc`); a sign-in is audited as `admin.login`;
 * - `POST logout`: the session ended and its cookie cleared (204 also when there is none).
 * The session cookie is opaque: a random id of a session kept in the store (oidc-sessions.ts: its SHA-256, the
 * subject, role and expiry), so every instance sharing the store accepts it, a sign-out on one holds on all at the
 * next call, and a restart keeps it. The API accepts it only on a request that also carries `x-kycgate-dashboard: 1`,
 * a header no cross-site form or link can send. A store that cannot be reached during the sign-in or a session
 * lookup fails the call with StoreUnavailable: 503 with Retry-After, as anywhere in the API (call.ts, problemOf).
 */
import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRemoteJWKSet, type JWTPayload, jwtVerify } from 'jose';
import type { AdminOidcConfig, AdminRole } from '../config/admin-api-schema.js';
import { problem, sendProblem } from '../pipeline/problem.js';
import { constantTimeEqual } from '../shared/credential-memo.js';
import { isStoreUnavailable } from '../store/store.js';
import { ADMIN_FORBIDDEN } from './problems.js';
import type { ApiContext, Principal } from './call.js';
import type { Flow, OidcSessions } from './oidc-sessions.js';

export const OIDC_PREFIX = '/admin/api/oidc/';
export const DASHBOARD_HEADER = 'x-kycgate-dashboard';
const SESSION = 'kg_admin_session';
const FLOW = 'kg_admin_oidc';
const FLOW_TTL_S = 600;
const RANK = { viewer: 0, operator: 1, admin: 2 } as const;

interface Discovery {
  issuer: string;
  authorization_endpoint: string;
  token_endpoint: string;
  jwks_uri: string;
}

function parseCookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (header === undefined) return out;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i > 0) out.set(part.slice(0, i).trim(), part.slice(i + 1).trim());
  }
  return out;
}

class RefusedLogin extends Error {
  constructor(
    readonly outcome: string,
    readonly page: string,
    readonly subject?: string,
  ) {
    super(page);
  }
}

export class OidcLogin {
  private discovery: Promise<Discovery> | undefined;
  private jwks: ReturnType<typeof createRemoteJWKSet> | undefined;
  private discoveredFor: AdminOidcConfig | undefined;

  constructor(
    private readonly ctx: ApiContext,
    private readonly sessions: OidcSessions,
  ) {}

  private get config(): AdminOidcConfig | undefined {
    return this.ctx.config().oidc;
  }

  /** The principal of a dashboard session: the dashboard's header, and the cookie of an unexpired stored session. */
  async principal(req: IncomingMessage): Promise<Principal | undefined> {
    if (this.config === undefined || req.headers[DASHBOARD_HEADER] !== '1') return undefined;
    const s = await this.sessions.find(parseCookies(req.headers.cookie).get(SESSION));
    return s ? { actor: `oidc:${s.sub}`, role: s.role, method: 'oidc' } : undefined;
  }

  private discover(config: AdminOidcConfig): Promise<Discovery> {
    if (this.discoveredFor !== config || this.discovery === undefined) {
      this.discoveredFor = config;
      const url = `${config.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
      this.discovery = fetch(url, { signal: AbortSignal.timeout(5000) })
        .then(async (r) => {
          if (!r.ok) throw new Error(`discovery answered ${r.status}`);
          const d = (await r.json()) as Discovery;
          if (d.issuer !== config.issuer) throw new Error('discovery names another issuer');
          this.jwks = createRemoteJWKSet(new URL(d.jwks_uri));
          return d;
        })
        .catch((err: unknown) => {
          this.discovery = undefined;
          throw err;
        });
    }
    return this.discovery;
  }

  /** Serves `/admin/api/oidc/*`; false when the path is not one of them. */
  async serve(req: IncomingMessage, res: ServerResponse, path: string, requestId: string): Promise<boolean> {
    const action = path.slice(OIDC_PREFIX.length);
    const config = this.config;
    if (action === 'config' && req.method === 'GET') {
      const name = config ? (config.name ?? new URL(config.issuer).host) : undefined;
      json(res, 200, config ? { enabled: true, name, login: `${OIDC_PREFIX}login` } : { enabled: false });
      return true;
    }
    const secure = (req.socket as { encrypted?: boolean }).encrypted === true;
    // Sign-out answers whether or not OIDC is configured (the dashboard signs out the same way after a certificate).
    if (action === 'logout' && req.method === 'POST') {
      if (req.headers[DASHBOARD_HEADER] !== '1') {
        const detail = `Sign-out needs the header ${DASHBOARD_HEADER}: 1 (sent by the dashboard).`;
        sendProblem(res, problem(ADMIN_FORBIDDEN, { detail }), requestId);
        return true;
      }
      // Ended in the store (on every instance), whether or not OIDC is still configured here.
      const ended = await this.sessions.end(parseCookies(req.headers.cookie).get(SESSION));
      if (ended) this.audit('admin.logout', 'ok', requestId, { actor: `oidc:${ended.sub}`, method: 'oidc' });
      res.writeHead(204, { 'set-cookie': cookie(SESSION, '', 0, '/admin/api', 'Strict', secure) });
      res.end();
      return true;
    }
    if (config === undefined) return false;
    if (action === 'login' && req.method === 'GET') {
      let d: Discovery;
      try {
        d = await this.discover(config);
      } catch (err) {
        this.ctx.logger.warn({ err, issuer: config.issuer }, 'admin OIDC: discovery failed');
        page(res, 502, 'The identity provider cannot be reached', 'Try again shortly, or sign in with an admin key.');
        return true;
      }
      const flow: Flow = {
        state: randomBytes(16).toString('base64url'),
        nonce: randomBytes(16).toString('base64url'),
        verifier: randomBytes(32).toString('base64url'),
      };
      const flowId = await this.sessions.begin(flow, FLOW_TTL_S * 1000);
      const scopes = new Set(['openid', ...config.scopes]);
      const url = new URL(d.authorization_endpoint);
      url.search = new URLSearchParams({
        response_type: 'code',
        client_id: config.client_id,
        redirect_uri: config.redirect_url,
        scope: [...scopes].join(' '),
        state: flow.state,
        nonce: flow.nonce,
        code_challenge: createHash('sha256').update(flow.verifier).digest('base64url'),
        code_challenge_method: 'S256',
      }).toString();
      res.writeHead(303, {
        location: url.toString(),
        'set-cookie': cookie(FLOW, flowId, FLOW_TTL_S, `${OIDC_PREFIX}callback`, 'Lax', secure),
        'cache-control': 'no-store',
      });
      res.end();
      return true;
    }
    if (action === 'callback' && req.method === 'GET') {
      await this.callback(req, res, config, secure, requestId);
      return true;
    }
    return false;
  }

  private async callback(
    req: IncomingMessage,
    res: ServerResponse,
    config: AdminOidcConfig,
    secure: boolean,
    requestId: string,
  ): Promise<void> {
    const clearFlow = cookie(FLOW, '', 0, `${OIDC_PREFIX}callback`, 'Lax', secure);
    try {
      const query = new URL(req.url ?? '/', 'http://x').searchParams;
      const flow = await this.sessions.take(parseCookies(req.headers.cookie).get(FLOW), query.get('state') ?? '');
      if (flow === 'no_flow')
        throw new RefusedLogin('no_flow', 'The sign-in took too long or did not start here. Start it again.');
      if (flow === 'state_mismatch')
        throw new RefusedLogin('state_mismatch', 'The answer of the identity provider does not match this sign-in.');
      const error = query.get('error');
      if (error !== null)
        throw new RefusedLogin(
          `issuer_${error.replace(/[^a-z_]/g, '').slice(0, 40)}`,
          'The identity provider refused.',
        );
      const code = query.get('code');
      if (!code) throw new RefusedLogin('no_code', 'The identity provider gave no authorization code.');
      const claims = await this.exchange(config, code, flow);
      const sub = String(claims.sub ?? '');
      if (config.allowed_subjects.length > 0 && !config.allowed_subjects.includes(sub))
        throw new RefusedLogin('subject_not_allowed', 'This account may not sign in to the dashboard.', sub);
      const role = roleOf(config, claims[config.role_claim]);
      if (role === undefined)
        throw new RefusedLogin('no_role', 'This account has no role on this dashboard. Ask an administrator.', sub);
      const ttl = config.session_ttl_s;
      const id = await this.sessions.open(sub, role, ttl * 1000);
      this.audit('admin.login', 'ok', requestId, {
        actor: `oidc:${sub}`,
        actor_role: role,
        method: 'oidc',
        client_ip: req.socket.remoteAddress,
      });
      res.writeHead(303, {
        location: '/#signed-in',
        'set-cookie': [cookie(SESSION, id, ttl, '/admin/api', 'Strict', secure), clearFlow],
        'cache-control': 'no-store',
      });
      res.end();
    } catch (err) {
      // The store out of reach is no refusal of this user: the API answers it (503, Retry-After, admin.refused).
      if (isStoreUnavailable(err)) throw err;
      const refused =
        err instanceof RefusedLogin ? err : new RefusedLogin('invalid_token', 'The identity could not be verified.');
      const data = {
        method: 'oidc',
        client_ip: req.socket.remoteAddress,
        ...(refused.subject !== undefined ? { subject: refused.subject } : {}),
      };
      this.audit('admin.auth.failure', refused.outcome, requestId, data);
      // A refusal of ours is routine (info); anything else thrown is unexpected and logged with its error.
      if (err instanceof RefusedLogin)
        this.ctx.logger.info({ req_id: requestId, reason: refused.outcome, ...data }, 'admin OIDC: sign-in refused');
      else this.ctx.logger.warn({ err, req_id: requestId, ...data }, 'admin OIDC: sign-in refused');
      // A state that is not this sign-in's leaves the sign-in under way (its flow and cookie): the answer the
      // issuer sends for it can still complete it.
      page(res, 403, 'Sign-in refused', refused.page, refused.outcome === 'state_mismatch' ? undefined : clearFlow);
    }
  }

  /** The code for tokens at the token endpoint; the id_token verified; its claims. */
  private async exchange(config: AdminOidcConfig, code: string, flow: Flow): Promise<JWTPayload> {
    const d = await this.discover(config);
    const secret = this.ctx.sources.resolveSecret(config.client_secret);
    const basic = Buffer.from(`${encodeURIComponent(config.client_id)}:${encodeURIComponent(secret)}`, 'utf8').toString(
      'base64',
    );
    const r = await fetch(d.token_endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${basic}` },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code,
        redirect_uri: config.redirect_url,
        code_verifier: flow.verifier,
      }),
      signal: AbortSignal.timeout(10_000),
    });
    if (!r.ok) throw new RefusedLogin('token_refused', 'The identity provider did not accept the sign-in.');
    const tokens = (await r.json()) as { id_token?: unknown };
    if (typeof tokens.id_token !== 'string')
      throw new RefusedLogin('no_id_token', 'The identity provider gave no identity.');
    const { payload } = await jwtVerify(tokens.id_token, this.jwks!, {
      issuer: config.issuer,
      audience: config.client_id,
      requiredClaims: ['sub', 'exp', 'iat', 'nonce'],
      clockTolerance: 30,
    }).catch(() => {
      throw new RefusedLogin('invalid_token', 'The identity could not be verified.');
    });
    if (typeof payload.nonce !== 'string' || !constantTimeEqual(payload.nonce, flow.nonce))
      throw new RefusedLogin('nonce_mismatch', 'The identity was not issued for this sign-in.');
    return payload;
  }

  private audit(type: string, outcome: string, requestId: string, data: Record<string, unknown>): void {
    this.ctx.services.events.emit({ type, requestId, outcome, data });
  }
}

/** The highest role any value of the claim maps to. */
export function roleOf(config: AdminOidcConfig, claim: unknown): AdminRole | undefined {
  const values = Array.isArray(claim) ? claim : claim === undefined ? [] : [claim];
  let best: AdminRole | undefined;
  for (const v of values) {
    if (typeof v !== 'string') continue;
    for (const m of config.roles) if (m.value === v && (best === undefined || RANK[m.role] > RANK[best])) best = m.role;
  }
  return best;
}

function cookie(name: string, value: string, maxAge: number, path: string, sameSite: string, secure: boolean): string {
  return `${name}=${value}; Path=${path}; Max-Age=${maxAge}; HttpOnly; SameSite=${sameSite}${secure ? '; Secure' : ''}`;
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(text);
}

const escapeHtml = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** A small page that says what happened (the browser lands here, not on JSON). */
function page(res: ServerResponse, status: number, title: string, text: string, setCookie?: string): void {
  const body =
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)} · kycgate</title></head>` +
    `<body><main><h1>${escapeHtml(title)}</h1><p role="alert">${escapeHtml(text)}</p>` +
    '<p><a href="/">Back to the sign-in page</a></p></main></body></html>';
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'content-security-policy': "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    'cache-control': 'no-store',
    ...(setCookie ? { 'set-cookie': setCookie } : {}),
  });
  res.end(body);
}
