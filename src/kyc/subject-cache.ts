/**
 * In-memory verification state per subject, so an approved subject costs a map lookup on the hot path: no store
 * query, no JSON, no signing. Entries expire after a TTL (short while unverified, never past a verification's own
 * expiry) and are dropped at once when a webhook changes the subject's state, here or (through Redis) on another
 * instance. Loads are single-flight per subject.
 *
 * An entry past its TTL is kept for the stale period (store.stale_period_seconds), never past a verification's own
 * expiry: while the store cannot be reached it is served as it was, at once when the store is known to be down,
 * else when the re-read gets no answer. The gate sees it is past `freshUntil` and marks the request stale.
 */
import type { VerificationState } from '../providers/provider.js';
import type { StalePolicy } from '../store/outage.js';
import type { VerificationRow } from './verification-store.js';

export interface WorkflowStatus {
  readonly workflow: string;
  readonly provider: string;
  /** Normalised state; `expired` also when an approval outlived max_age_days. */
  readonly state: VerificationState;
  readonly providerStatus: string;
  /** Claims granted by this workflow and still valid. */
  readonly claims: readonly string[];
  readonly verifiedAt: number | null;
  readonly sessionId: string | null;
  /** Sealed link of the unfinished session, if any. */
  readonly sealedSessionUrl: string | null;
  readonly sessionStartedAt: number | null;
}

interface SignedAssertion {
  token: string;
  renewAt: number;
  /** The upstream header carrying it, made once per token. */
  header: readonly [string, string];
}

export class SubjectEntry {
  readonly claims: ReadonlySet<string>;
  /** Claims the subject held that have lapsed (their own max_age, document expiry, or the verification's). */
  readonly expiredClaims: ReadonlySet<string>;
  /** Value of x-kyc-claims: granted claims, sorted, comma-separated. */
  readonly claimsHeader: string;
  readonly claimList: readonly string[];
  /**
   * Value of x-kyc-status: `verified` when any claim is held, else the most advanced state of any workflow
   * (in_review, pending, declined, expired, unverified).
   */
  readonly status: string;
  readonly workflows: ReadonlyMap<string, WorkflowStatus>;
  /** Until when (ms) this entry may be served without reloading. */
  readonly freshUntil: number;
  /** When the earliest approval it holds expires (ms), or Infinity: never served past it, not even stale. */
  readonly validUntil: number;
  /** x-kyc-status, x-kyc-claims and x-subject-id for the upstream, made once per entry. */
  readonly upstreamHeaders: ReadonlyArray<readonly [string, string]>;
  private assertions: Map<string, SignedAssertion> | undefined;

  constructor(
    readonly subject: string,
    rows: readonly VerificationRow[],
    now: number,
    ttl: { verifiedMs: number; unverifiedMs: number },
  ) {
    const workflows = new Map<string, WorkflowStatus>();
    const claims = new Set<string>();
    const expiredClaims = new Set<string>();
    let claimsUntil = Infinity;
    let freshUntil = now + ttl.unverifiedMs;
    let anyVerified = false;
    for (const row of rows) {
      const expiresAt = row.expires_at === null ? null : Number(row.expires_at);
      let state = row.state;
      const granted: string[] = [];
      if (state === 'approved') {
        const lapsed = expiresAt !== null && expiresAt <= now;
        if (lapsed) state = 'expired';
        else anyVerified = true;
        // A claim with a lifetime of its own is stored as `name@<expiry ms>`.
        for (const stored of row.claims === '' ? [] : row.claims.split(' ')) {
          const at = stored.indexOf('@');
          const name = at === -1 ? stored : stored.slice(0, at);
          const until = at === -1 ? Infinity : Number(stored.slice(at + 1));
          if (lapsed || until <= now) {
            expiredClaims.add(name);
            continue;
          }
          granted.push(name);
          claims.add(name);
          if (until < claimsUntil) claimsUntil = until;
        }
      }
      // With fallback providers one workflow may have a row per provider: the approved one speaks for it, else the
      // one with the latest session.
      const seen = workflows.get(row.workflow);
      if (
        seen !== undefined &&
        (seen.state === 'approved' ||
          (state !== 'approved' && (seen.sessionStartedAt ?? 0) >= Number(row.session_started_at ?? 0)))
      )
        continue;
      workflows.set(row.workflow, {
        workflow: row.workflow,
        provider: row.provider,
        state,
        providerStatus: row.provider_status,
        claims: granted,
        verifiedAt: row.verified_at === null ? null : Number(row.verified_at),
        sessionId: row.session_id,
        sealedSessionUrl: row.session_url,
        sessionStartedAt: row.session_started_at === null ? null : Number(row.session_started_at),
      });
    }
    let validUntil = Infinity;
    if (anyVerified) {
      for (const row of rows) {
        if (row.state === 'approved' && row.expires_at !== null && Number(row.expires_at) > now)
          validUntil = Math.min(validUntil, Number(row.expires_at));
      }
      validUntil = Math.min(validUntil, claimsUntil);
      freshUntil = Math.min(now + ttl.verifiedMs, validUntil);
    }
    for (const c of claims) expiredClaims.delete(c);
    this.expiredClaims = expiredClaims;
    this.validUntil = validUntil;
    this.workflows = workflows;
    this.claims = claims;
    this.claimList = [...claims].sort();
    this.claimsHeader = this.claimList.join(',');
    this.freshUntil = freshUntil;
    this.status = claims.size > 0 ? 'verified' : summaryState(workflows);
    this.upstreamHeaders = [
      ['x-kyc-status', this.status],
      ['x-kyc-claims', this.claimsHeader],
      ['x-subject-id', subject],
    ];
  }

  assertionFor(audience: string, now: number): string | undefined {
    const a = this.assertions?.get(audience);
    return a !== undefined && now < a.renewAt ? a.token : undefined;
  }

  /** The `x-kycgate-assertion` header with the signed assertion for `audience`, while it need not be renewed. */
  assertionHeaderFor(audience: string, now: number): readonly [string, string] | undefined {
    const a = this.assertions?.get(audience);
    return a !== undefined && now < a.renewAt ? a.header : undefined;
  }

  keepAssertion(audience: string, token: string, renewAt: number): void {
    (this.assertions ??= new Map()).set(audience, { token, renewAt, header: ['x-kycgate-assertion', token] });
  }
}

const SUMMARY_ORDER: readonly VerificationState[] = [
  'in_review',
  'pending',
  'declined',
  'expired',
  'approved',
  'unverified',
];

function summaryState(workflows: ReadonlyMap<string, WorkflowStatus>): string {
  let best = SUMMARY_ORDER.length - 1;
  for (const w of workflows.values()) best = Math.min(best, SUMMARY_ORDER.indexOf(w.state));
  return SUMMARY_ORDER[best]!;
}

export class SubjectCache {
  private readonly entries = new Map<string, SubjectEntry>();
  /**
   * Loads in flight, one per subject. An invalidation removes the subject's load: a load that overlapped it is used
   * by its callers but not kept (and loads of other subjects are not affected).
   */
  private readonly loading = new Map<string, Promise<SubjectEntry>>();

  constructor(
    private readonly load: (subject: string) => Promise<readonly VerificationRow[]>,
    private ttl: { verifiedMs: number; unverifiedMs: number },
    private maxEntries: number,
    /** When entries past their TTL may be served during a store outage; without it they never are. */
    private readonly stale?: StalePolicy,
    /** Epoch milliseconds (tests pass their own clock). */
    private readonly clock: () => number = Date.now,
  ) {}

  configure(ttl: { verifiedMs: number; unverifiedMs: number }, maxEntries: number): void {
    this.ttl = ttl;
    this.maxEntries = maxEntries;
    this.entries.clear();
  }

  /** The cached entry when fresh, or past its TTL while the store is known to be down (synchronous: the hot path). */
  peek(subject: string, now: number): SubjectEntry | undefined {
    const entry = this.entries.get(subject);
    if (entry === undefined) return undefined;
    if (now < entry.freshUntil) return entry;
    return this.pastRefresh(entry, now);
  }

  /** An entry past its TTL: served while the store is known to be down, kept for the stale period, else dropped. */
  private pastRefresh(entry: SubjectEntry, now: number): SubjectEntry | undefined {
    const stale = this.stale;
    if (stale !== undefined && now < entry.validUntil) {
      if (stale.servesStale(entry.freshUntil, now)) {
        stale.servedStale('kyc_subject');
        return entry;
      }
      if (stale.keeps(entry.freshUntil, now)) return undefined;
    }
    this.entries.delete(entry.subject);
    return undefined;
  }

  /** The entry kept past its TTL that may stand in for a re-read that failed with `err`. */
  private standIn(subject: string, err: unknown): SubjectEntry | undefined {
    const entry = this.entries.get(subject);
    const stale = this.stale;
    if (entry === undefined || stale === undefined) return undefined;
    const now = this.clock();
    if (now < entry.freshUntil) return entry;
    if (now >= entry.validUntil || !stale.coversFailure(err, entry.freshUntil, now)) return undefined;
    stale.servedStale('kyc_subject');
    return entry;
  }

  get(subject: string, now: number): SubjectEntry | Promise<SubjectEntry> {
    return this.peek(subject, now) ?? this.fetch(subject);
  }

  fetch(subject: string): Promise<SubjectEntry> {
    const pending = this.loading.get(subject);
    if (pending) return pending;
    const load: Promise<SubjectEntry> = this.load(subject).then(
      (rows) => {
        const entry = new SubjectEntry(subject, rows, this.clock(), this.ttl);
        if (this.loading.get(subject) === load) {
          this.loading.delete(subject);
          this.keep(entry);
        }
        return entry;
      },
      (err: unknown) => {
        if (this.loading.get(subject) !== load) throw err; // invalidated meanwhile: nothing cached stands in
        this.loading.delete(subject);
        const kept = this.standIn(subject, err);
        if (kept === undefined) throw err;
        return kept;
      },
    );
    this.loading.set(subject, load);
    return load;
  }

  private keep(entry: SubjectEntry): void {
    const entries = this.entries;
    entries.delete(entry.subject);
    if (entries.size >= this.maxEntries) entries.delete(entries.keys().next().value!);
    entries.set(entry.subject, entry);
  }

  invalidate(subject: string): void {
    this.entries.delete(subject);
    this.loading.delete(subject);
  }

  get size(): number {
    return this.entries.size;
  }
}
