/** The admin API as the dashboard calls it: the admin key from sessionStorage as `x-admin-key`, JSON in and out. */

const KEY = 'kycgate.adminKey';
export const API = '/admin/api/v1';

export interface Principal {
  actor: string;
  role: 'viewer' | 'operator' | 'admin';
  method: string;
}

/** A refusal of the API (problem+json), or a network failure (status 0). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The stored credential: an admin key, `''` when signed in with the browser's client certificate (an HTTPS admin
 * listener with `admin.api.mtls`) or through OIDC (the session cookie): the key header is then not sent; null when
 * signed out.
 */
export function storedKey(): string | null {
  return sessionStorage.getItem(KEY);
}

export function storeKey(key: string | null): void {
  if (key === null) sessionStorage.removeItem(KEY);
  else sessionStorage.setItem(KEY, key);
}

/** Called when the stored key stops being accepted (revoked, expired): the page goes back to the sign-in form. */
let onUnauthenticated: () => void = () => undefined;
export function whenUnauthenticated(fn: () => void): void {
  onUnauthenticated = fn;
}

export async function call<T>(
  path: string,
  query: Record<string, string | undefined> = {},
  key = storedKey(),
): Promise<T> {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== '') params.set(k, v);
  const url = (path.startsWith('/admin/') ? path : API + path) + (params.size > 0 ? `?${params}` : '');
  let res: Response;
  try {
    // x-kycgate-dashboard: the API accepts the OIDC session cookie only with it (no cross-site request can send it).
    const headers = { accept: 'application/json', 'x-kycgate-dashboard': '1', ...(key ? { 'x-admin-key': key } : {}) };
    res = await fetch(url, { headers });
  } catch {
    throw new ApiError(0, 'network', 'The gateway did not answer.');
  }
  const text = await res.text();
  let body: unknown;
  try {
    body = text.length > 0 ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  if (!res.ok) {
    const p = (body ?? {}) as { type?: string; title?: string; detail?: string };
    const error = new ApiError(res.status, p.type ?? '', p.detail ?? p.title ?? `HTTP ${res.status}`);
    if (res.status === 401 && key === storedKey()) onUnauthenticated();
    throw error;
  }
  return body as T;
}

/** Ends the OIDC session (clears its cookie); nothing to do for a key or a client certificate. */
export async function signOut(): Promise<void> {
  if (storedKey() === '')
    await fetch('/admin/api/oidc/logout', { method: 'POST', headers: { 'x-kycgate-dashboard': '1' } }).catch(
      () => undefined,
    );
  storeKey(null);
}

/** Whether the gateway offers OIDC sign-in, and the issuer's name. */
export async function oidcOffer(): Promise<{ name: string; login: string } | undefined> {
  try {
    const r = await fetch('/admin/api/oidc/config', { headers: { accept: 'application/json' } });
    const body = r.ok ? ((await r.json()) as { enabled?: boolean; name?: string; login?: string }) : {};
    return body.enabled && body.name && body.login ? { name: body.name, login: body.login } : undefined;
  } catch {
    return undefined;
  }
}

export const RANK = { viewer: 0, operator: 1, admin: 2 } as const;
