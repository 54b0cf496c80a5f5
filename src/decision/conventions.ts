/**
 * Front-proxy conventions: how each proxy tells a forward-auth service what the original request was. The
 * convention is chosen by the decision request's path (`/nginx`, `/traefik`, `/caddy`, `/kong`, `/envoy/...`), never
 * guessed from headers, so a header a client smuggled through cannot switch conventions.
 */
import { isIP } from 'node:net';
import type { AddressList } from '../shared/address-list.js';
import { clientFromForwardedFor } from '../shared/forwarded.js';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { FrontProxyConvention } from '../config/decision-listener.js';

/** The original request as described by the front proxy. */
export interface OriginalRequest {
  method: string;
  /** Request target as the client sent it (origin-form or absolute-form); normalised later like a proxied one. */
  target: string;
  host: string;
  protocol: 'http' | 'https';
  clientIp: string;
}

export type ConventionResult = OriginalRequest | { error: string };

/** Headers that describe the original request rather than belong to it: policies never see them. */
export const META_HEADERS: Record<FrontProxyConvention, readonly string[]> = {
  nginx: ['x-original-method', 'x-original-uri', 'x-original-host', 'x-original-proto'],
  traefik: ['x-forwarded-method', 'x-forwarded-uri'],
  caddy: ['x-forwarded-method', 'x-forwarded-uri'],
  kong: ['x-forwarded-method', 'x-forwarded-uri'],
  envoy: ['x-envoy-auth-partial-body', 'x-envoy-internal', 'x-envoy-expected-rq-timeout-ms'],
};

/** What the decision depends on in each convention, for Vary. */
export const VARY_HEADERS: Record<FrontProxyConvention, readonly string[]> = {
  nginx: ['x-original-method', 'x-original-uri', 'x-original-host'],
  traefik: ['x-forwarded-method', 'x-forwarded-uri', 'x-forwarded-host'],
  caddy: ['x-forwarded-method', 'x-forwarded-uri', 'x-forwarded-host'],
  kong: ['x-forwarded-method', 'x-forwarded-uri', 'x-forwarded-host'],
  envoy: ['host'],
};

const METHOD = /^[A-Z][A-Z0-9_-]{0,31}$/;

function single(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  // A repeated meta header is ambiguous: refuse rather than pick one.
  return Array.isArray(v) ? undefined : v;
}

function protocolOf(value: string | undefined): 'http' | 'https' {
  return value === 'https' ? 'https' : 'http';
}

/** The decision's client: the right-most hop that is not a front proxy, or the left-most when all of them are. */
function forwardedClient(xff: string | string[] | undefined, trusted: AddressList): string | undefined {
  const c = clientFromForwardedFor(xff, trusted);
  return c.kind === 'client' ? c.address : c.kind === 'all-trusted' ? c.leftmost : undefined;
}

function checked(
  method: string | undefined,
  target: string | undefined,
  host: string | undefined,
  clientIp: string | undefined,
  protocol: 'http' | 'https',
  names: string,
): ConventionResult {
  if (method === undefined || !METHOD.test(method))
    return { error: `The original method is missing or invalid (${names}).` };
  if (target === undefined || target === '') return { error: `The original URI is missing (${names}).` };
  if (host === undefined) return { error: `The original host is missing (${names}).` };
  if (clientIp === undefined || isIP(clientIp) === 0)
    return { error: `The client address is missing or invalid (${names}).` };
  return { method, target, host, protocol, clientIp };
}

/** nginx auth_request: X-Original-Method, X-Original-URI, X-Original-Host, X-Original-Proto and the client address header. */
export function nginxOriginal(req: IncomingMessage, clientAddressHeader: string): ConventionResult {
  const h = req.headers;
  return checked(
    single(h, 'x-original-method'),
    single(h, 'x-original-uri'),
    single(h, 'x-original-host'),
    single(h, clientAddressHeader)?.trim(),
    protocolOf(single(h, 'x-original-proto')),
    `X-Original-Method, X-Original-URI, X-Original-Host, ${clientAddressHeader}`,
  );
}

/** Traefik ForwardAuth, Caddy forward_auth, Kong: X-Forwarded-Method/-Uri/-Host/-Proto/-For. */
export function forwardedOriginal(req: IncomingMessage, trusted: AddressList): ConventionResult {
  const h = req.headers;
  return checked(
    single(h, 'x-forwarded-method'),
    single(h, 'x-forwarded-uri'),
    single(h, 'x-forwarded-host'),
    forwardedClient(h['x-forwarded-for'], trusted),
    protocolOf(single(h, 'x-forwarded-proto')),
    'X-Forwarded-Method, X-Forwarded-Uri, X-Forwarded-Host, X-Forwarded-For',
  );
}

/**
 * Envoy ext_authz HTTP service: the decision request has the original method and Host, and the original path after
 * the configured `path_prefix`; X-Forwarded-For carries the client (Envoy appends the peer with use_remote_address).
 */
export function envoyOriginal(
  req: IncomingMessage,
  url: string,
  prefixLength: number,
  trusted: AddressList,
): ConventionResult {
  const h = req.headers;
  return checked(
    req.method,
    url.slice(prefixLength),
    single(h, 'host'),
    forwardedClient(h['x-forwarded-for'], trusted),
    protocolOf(single(h, 'x-forwarded-proto')),
    'method, path after the prefix, Host, X-Forwarded-For',
  );
}
