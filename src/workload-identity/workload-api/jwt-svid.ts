/**
 * JWT-SVIDs for the gateway itself (FetchJWTSVID, a unary call): a token per audience, reused until half of its
 * lifetime has passed (SPIRE's default TTL is 5 minutes), fetched again before that by the next request. One
 * fetch at a time per audience set, however many requests are waiting.
 *
 * When a fetch fails and no still-valid token is held, requests are refused at once for a short backoff instead of
 * each calling the agent; the state (token fresh, an old token kept, no token) is logged when it changes, not per
 * request.
 */
import * as grpc from '@grpc/grpc-js';
import { decodeJwt } from 'jose';
import type { Logger } from 'pino';
import { grpcTargetOf, WORKLOAD_METADATA_KEY } from './stream.js';
import { decodeJwtSvidResponse, encodeJwtSvidRequest, type JwtSvid } from './protobuf.js';

export const FETCH_JWT_SVID = '/SpiffeWorkloadAPI/FetchJWTSVID';

export interface JwtSvidClientOptions {
  address?: string;
  /** Deadline of one call. */
  timeoutMs?: number;
  /** After a failed fetch without a valid token, how long requests are refused without calling the agent. */
  failureBackoffMs?: number;
}

const FAILURE_BACKOFF_MS = 1000;

interface CachedToken {
  token: string;
  spiffeId: string;
  /** Epoch ms after which a new token is fetched. */
  refreshAt: number;
  /** Epoch ms after which the token must not be sent. */
  expiresAt: number;
}

export class WorkloadJwtSvidClient {
  private readonly client: grpc.Client;
  private readonly timeoutMs: number;
  private cached: CachedToken | undefined;
  private inflight: Promise<CachedToken> | undefined;
  private readonly failureBackoffMs: number;
  /** The last fetch failure, and until when a request without a valid token is refused without a new fetch. */
  private lastFailure: Error | undefined;
  private failedUntil = 0;
  /** What was logged last: a token was fetched, an old token is kept after a failure, or there is no token. */
  private state: 'ok' | 'kept' | 'none' = 'ok';
  /** Calls made to the Workload API (for tests and metrics). */
  fetches = 0;

  constructor(
    private readonly audience: string[],
    private readonly spiffeId: string | undefined,
    private readonly logger: Logger,
    options: JwtSvidClientOptions = {},
  ) {
    const address = options.address ?? process.env.SPIFFE_ENDPOINT_SOCKET;
    if (!address) throw new Error('no Workload API address: set SPIFFE_ENDPOINT_SOCKET or configure the socket');
    this.timeoutMs = options.timeoutMs ?? 2000;
    this.failureBackoffMs = options.failureBackoffMs ?? FAILURE_BACKOFF_MS;
    this.client = new grpc.Client(grpcTargetOf(address), grpc.credentials.createInsecure());
  }

  /** The current token when one is fresh (no I/O), else undefined. */
  fresh(now = Date.now()): string | undefined {
    const c = this.cached;
    return c !== undefined && now < c.refreshAt ? c.token : undefined;
  }

  /** True while requests are refused without asking the agent: a fetch failed just now and no valid token is held. */
  backingOff(now = Date.now()): boolean {
    if (now >= this.failedUntil) return false;
    const c = this.cached;
    return c === undefined || now >= c.expiresAt;
  }

  /** A usable token: the fresh one, or a newly fetched one (a still-valid old one if fetching fails). */
  async token(now = Date.now()): Promise<string> {
    const fresh = this.fresh(now);
    if (fresh !== undefined) return fresh;
    if (this.lastFailure !== undefined && this.backingOff(now)) throw this.lastFailure;
    try {
      return (await (this.inflight ??= this.fetchOnce())).token;
    } catch (err) {
      const c = this.cached;
      if (c !== undefined && Date.now() < c.expiresAt) return c.token;
      throw err;
    }
  }

  /** One fetch, shared by every request waiting for it; its outcome is recorded (and logged on a change) once. */
  private fetchOnce(): Promise<CachedToken> {
    return this.fetch()
      .then(
        (token) => {
          this.lastFailure = undefined;
          this.failedUntil = 0;
          if (this.state !== 'ok')
            this.logger.info({ audience: this.audience }, 'JWT-SVID fetched again from the Workload API');
          this.state = 'ok';
          return token;
        },
        (err: Error) => {
          this.lastFailure = err;
          this.failedUntil = Date.now() + this.failureBackoffMs;
          const c = this.cached;
          const state = c !== undefined && Date.now() < c.expiresAt ? 'kept' : 'none';
          if (state !== this.state) {
            if (state === 'kept')
              this.logger.warn(
                { audience: this.audience, reason: err.message },
                'JWT-SVID refresh failed; the current token stays in use until it expires',
              );
            else
              this.logger.warn(
                { audience: this.audience, reason: err.message },
                'no JWT-SVID from the Workload API; requests that need one are answered 502 until it answers again',
              );
            this.state = state;
          }
          throw err;
        },
      )
      .finally(() => (this.inflight = undefined));
  }

  private fetch(): Promise<CachedToken> {
    this.fetches++;
    const metadata = new grpc.Metadata();
    metadata.set(WORKLOAD_METADATA_KEY, 'true');
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest<Buffer, JwtSvid[]>(
        FETCH_JWT_SVID,
        (b) => b,
        decodeJwtSvidResponse,
        encodeJwtSvidRequest({ audience: this.audience, ...(this.spiffeId ? { spiffeId: this.spiffeId } : {}) }),
        metadata,
        { deadline: Date.now() + this.timeoutMs },
        (err, svids) => {
          if (err) {
            if (err.code === grpc.status.PERMISSION_DENIED) this.cached = undefined;
            return reject(new Error(`FetchJWTSVID failed: ${grpc.status[err.code] ?? err.code}`));
          }
          const svid = this.spiffeId ? svids?.find((s) => s.spiffeId === this.spiffeId) : svids?.[0];
          if (!svid) return reject(new Error('FetchJWTSVID returned no token'));
          let claims: ReturnType<typeof decodeJwt>;
          try {
            claims = decodeJwt(svid.svid);
          } catch {
            return reject(new Error('FetchJWTSVID returned a malformed token'));
          }
          if (typeof claims.exp !== 'number') return reject(new Error('FetchJWTSVID returned a token without exp'));
          const now = Date.now();
          const expiresAt = claims.exp * 1000;
          const issuedAt = typeof claims.iat === 'number' ? claims.iat * 1000 : now;
          this.cached = {
            token: svid.svid,
            spiffeId: svid.spiffeId,
            expiresAt,
            refreshAt: issuedAt + (expiresAt - issuedAt) / 2,
          };
          resolve(this.cached);
        },
      );
    });
  }

  close(): void {
    this.client.close();
  }
}
