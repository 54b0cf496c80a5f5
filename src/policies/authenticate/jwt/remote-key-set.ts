/**
 * A JWKS fetched from an identity provider, kept in memory and refreshed safely:
 * - an unknown `kid` triggers a refetch (the IdP rotated its keys), at most once per cooldown;
 * - a set older than `maxAgeMs` is refreshed in the background while the old one keeps serving;
 * - a failed fetch (IdP down, timeout, bad JSON) never throws out of a request and never drops the last good set.
 * jose's createRemoteJWKSet throws when a stale set cannot be refreshed; this wrapper keeps serving instead.
 */
import { createLocalJWKSet, errors, type JSONWebKeySet, type JWSHeaderParameters, type FlattenedJWSInput } from 'jose';
import type { Logger } from 'pino';
import type { EventBus } from '../../../pipeline/events.js';
import { readBounded, ResponseTooLarge } from '../../../shared/bounded-body.js';

type KeyGetter = ReturnType<typeof createLocalJWKSet>;
type Key = Awaited<ReturnType<KeyGetter>>;

/** No key set could be obtained yet (the IdP has been unreachable since start). */
export class KeySetUnavailable extends Error {
  constructor() {
    super('no JWKS available');
    this.name = 'KeySetUnavailable';
  }
}

/** Only loopback addresses may be reached over plain HTTP (tests, sidecars); everything else needs https. */
export function checkFetchUrl(url: string, what: string): void {
  const u = new URL(url);
  if (u.protocol === 'https:') return;
  if (u.protocol === 'http:' && (u.hostname === '127.0.0.1' || u.hostname === 'localhost' || u.hostname === '[::1]'))
    return;
  throw new Error(`${what} must use https (plain http only for loopback addresses): ${url}`);
}

export async function fetchJson(url: string, timeoutMs: number): Promise<unknown> {
  const response = await fetch(url, {
    headers: { accept: 'application/json' },
    signal: AbortSignal.timeout(timeoutMs),
    redirect: 'error',
  });
  if (response.status !== 200) throw new Error(`${url} answered ${response.status}`);
  const text = await readBounded(response.body, 1_048_576).catch((err: unknown) => {
    throw err instanceof ResponseTooLarge ? new Error(`${url} answered more than 1 MiB`) : err;
  });
  return JSON.parse(text);
}

export interface RemoteKeySetOptions {
  cooldownMs: number;
  maxAgeMs: number;
  timeoutMs: number;
}

export class RemoteKeySet {
  private local: KeyGetter | undefined;
  private fetchedAt = 0;
  private lastAttempt = Number.NEGATIVE_INFINITY;
  private pending: Promise<void> | undefined;
  /** JWKS fetches attempted (for metrics and tests). */
  fetches = 0;

  constructor(
    /** Resolves the JWKS URL (directly, or through OIDC discovery). */
    private readonly jwksUrl: () => Promise<string>,
    private readonly options: RemoteKeySetOptions,
    private readonly logger: Logger,
    private readonly issuer: string,
    private readonly events?: EventBus,
  ) {}

  /** Key resolver for jose's jwtVerify. */
  readonly getKey = async (header: JWSHeaderParameters, token: FlattenedJWSInput): Promise<Key> => {
    if (this.local === undefined) {
      await this.refresh();
      if (this.local === undefined) throw new KeySetUnavailable();
    } else if (performance.now() - this.fetchedAt > this.options.maxAgeMs) {
      void this.refresh();
    }
    try {
      return await this.local(header, token);
    } catch (err) {
      if (err instanceof errors.JWKSNoMatchingKey && this.mayFetch()) {
        await this.refresh();
        return this.local(header, token);
      }
      throw err;
    }
  };

  private mayFetch(): boolean {
    return performance.now() - this.lastAttempt >= this.options.cooldownMs;
  }

  /** Fetches the set unless a fetch is under way or the cooldown forbids it. Never rejects. */
  refresh(): Promise<void> {
    if (this.pending !== undefined) return this.pending;
    if (!this.mayFetch()) return Promise.resolve();
    this.lastAttempt = performance.now();
    this.fetches++;
    this.pending = this.fetchSet()
      .then((set) => {
        this.local = createLocalJWKSet(set);
        this.fetchedAt = performance.now();
      })
      .catch((err: unknown) => {
        this.logger.warn(
          { issuer: this.issuer, err: (err as Error).message, keeping_last_good_set: this.local !== undefined },
          'JWKS fetch failed',
        );
        this.events?.emit({
          type: 'jwks.fetch_failed',
          outcome: this.local === undefined ? 'no_keys' : 'kept_last_good_set',
          data: { issuer: this.issuer },
        });
      })
      .finally(() => {
        this.pending = undefined;
      });
    return this.pending;
  }

  private async fetchSet(): Promise<JSONWebKeySet> {
    const url = await this.jwksUrl();
    const body = (await fetchJson(url, this.options.timeoutMs)) as JSONWebKeySet;
    if (typeof body !== 'object' || body === null || !Array.isArray(body.keys)) throw new Error(`${url} is not a JWKS`);
    return body;
  }
}

/** Resolves an issuer's `jwks_uri` through OIDC discovery (cached once found; retried after a failure). */
export function discoveredJwksUrl(issuer: string, timeoutMs: number): () => Promise<string> {
  let found: string | undefined;
  return async () => {
    if (found !== undefined) return found;
    const url = `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
    checkFetchUrl(url, 'OIDC discovery');
    const doc = (await fetchJson(url, timeoutMs)) as { issuer?: unknown; jwks_uri?: unknown };
    // OIDC Discovery section 4.3: the document must name the very issuer it was fetched for.
    if (doc.issuer !== issuer) throw new Error(`discovery document of ${issuer} names issuer ${String(doc.issuer)}`);
    if (typeof doc.jwks_uri !== 'string') throw new Error(`discovery document of ${issuer} has no jwks_uri`);
    checkFetchUrl(doc.jwks_uri, 'jwks_uri');
    found = doc.jwks_uri;
    return found;
  };
}
