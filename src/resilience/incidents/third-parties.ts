/**
 * Monitoring of ICT third parties (DORA Art. 28-30): for each third party the configuration names (a verification
 * provider, or an upstream group run by a third party), every instance adds its calls, failures and latency
 * histogram per minute to the store on its evaluation timer; a report over any period sums the minutes of every
 * instance and sets availability, error share and p95 latency against the levels of the contract.
 */
import { LATENCY_BUCKETS } from '../../observe/metrics.js';
import type { Migration, Store } from '../../store/store.js';
import type { RouteInfo } from './conditions.js';
import type { ThirdPartyFigures } from './report.js';
import type { IncidentsConfig } from './schema.js';
import type { Reading } from './signals.js';

export const THIRD_PARTY_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'third-party samples per minute and instance',
    sql: `CREATE TABLE third_party_minutes (
  party TEXT NOT NULL,
  instance TEXT NOT NULL,
  minute BIGINT NOT NULL,
  requests BIGINT NOT NULL,
  failed BIGINT NOT NULL,
  latency TEXT NOT NULL,
  PRIMARY KEY (party, minute, instance)
)`,
  },
];

export interface Sample {
  requests: number;
  failed: number;
  /** Non-cumulative counts per LATENCY_BUCKETS bound, and one more for above the last. */
  latency: number[];
}

const MINUTE = 60_000;

/** What each third party did between two readings. */
export function thirdPartyDeltas(
  config: IncidentsConfig,
  routes: readonly RouteInfo[],
  prev: Reading,
  cur: Reading,
): Map<string, Sample> {
  const out = new Map<string, Sample>();
  for (const [name, party] of Object.entries(config.third_parties)) {
    const s: Sample = { requests: 0, failed: 0, latency: new Array<number>(LATENCY_BUCKETS.length + 1).fill(0) };
    const addLatency = (count: number, within: (le: number) => number) => {
      let below = 0;
      LATENCY_BUCKETS.forEach((le, i) => {
        const w = within(le);
        s.latency[i]! += w - below;
        below = w;
      });
      s.latency[LATENCY_BUCKETS.length]! += count - below;
    };
    if (party.provider !== undefined) {
      const now = cur.providerCalls.get(party.provider);
      const then = prev.providerCalls.get(party.provider);
      s.requests = (now?.total ?? 0) - (then?.total ?? 0);
      s.failed = (now?.failed ?? 0) - (then?.failed ?? 0);
      const ln = cur.providerLatency.get(party.provider);
      const lt = prev.providerLatency.get(party.provider);
      addLatency((ln?.count ?? 0) - (lt?.count ?? 0), (le) => (ln?.within.get(le) ?? 0) - (lt?.within.get(le) ?? 0));
    } else if (party.upstream !== undefined) {
      for (const r of routes) {
        if (r.upstream !== party.upstream) continue;
        const now = cur.routes.get(r.name);
        const then = prev.routes.get(r.name);
        s.requests += (now?.total ?? 0) - (then?.total ?? 0);
        s.failed += (now?.upstreamFailed ?? 0) - (then?.upstreamFailed ?? 0);
        const count = (now?.count ?? 0) - (then?.count ?? 0);
        addLatency(count, (le) => {
          const within = (x: typeof now) => (x === undefined ? 0 : x.count - (x.over.get(le) ?? 0));
          return within(now) - within(then);
        });
      }
    }
    if (s.requests > 0) out.set(name, s);
  }
  return out;
}

export class ThirdPartyStore {
  constructor(private readonly store: Store) {}

  migrate(): Promise<void> {
    return this.store.migrate('third-parties', THIRD_PARTY_MIGRATIONS);
  }

  /** Adds a delta to this instance's minute. */
  async add(party: string, instance: string, at: number, s: Sample): Promise<void> {
    const minute = Math.floor(at / MINUTE) * MINUTE;
    await this.store.transaction(async (tx) => {
      const rows = await tx.query<{ requests: number | string; failed: number | string; latency: string }>(
        'SELECT requests, failed, latency FROM third_party_minutes WHERE party = $1 AND minute = $2 AND instance = $3',
        [party, minute, instance],
      );
      const was = rows[0];
      const latency =
        was === undefined ? s.latency : (JSON.parse(was.latency) as number[]).map((n, i) => n + (s.latency[i] ?? 0));
      await tx.query(
        `INSERT INTO third_party_minutes (party, instance, minute, requests, failed, latency) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (party, minute, instance) DO UPDATE SET requests = excluded.requests, failed = excluded.failed, latency = excluded.latency`,
        [
          party,
          instance,
          minute,
          Number(was?.requests ?? 0) + s.requests,
          Number(was?.failed ?? 0) + s.failed,
          JSON.stringify(latency),
        ],
      );
    });
  }

  async period(party: string, from: number, to: number): Promise<Sample> {
    const rows = await this.store.query<{ requests: number | string; failed: number | string; latency: string }>(
      'SELECT requests, failed, latency FROM third_party_minutes WHERE party = $1 AND minute >= $2 AND minute < $3',
      [party, Math.floor(from / MINUTE) * MINUTE, to],
    );
    const total: Sample = { requests: 0, failed: 0, latency: new Array<number>(LATENCY_BUCKETS.length + 1).fill(0) };
    for (const r of rows) {
      total.requests += Number(r.requests);
      total.failed += Number(r.failed);
      (JSON.parse(r.latency) as number[]).forEach((n, i) => {
        total.latency[i] = (total.latency[i] ?? 0) + n;
      });
    }
    return total;
  }
}

/** The bound (ms) at or below which 95 % of the calls finished; null without calls or above the last bound. */
export function p95Ms(latency: readonly number[]): number | null {
  const count = latency.reduce((a, b) => a + b, 0);
  if (count === 0) return null;
  let acc = 0;
  for (let i = 0; i < LATENCY_BUCKETS.length; i++) {
    acc += latency[i] ?? 0;
    if (acc >= 0.95 * count) return LATENCY_BUCKETS[i]! * 1000;
  }
  return null;
}

const pct = (n: number) => Math.round(n * 1000) / 1000;

/** Each configured third party over [from, to), against its contract. */
export async function thirdPartyFigures(
  store: Store,
  config: IncidentsConfig,
  from: number,
  to: number,
): Promise<ThirdPartyFigures[]> {
  const parties = Object.entries(config.third_parties);
  if (parties.length === 0) return [];
  const tp = new ThirdPartyStore(store);
  await tp.migrate();
  const out: ThirdPartyFigures[] = [];
  for (const [name, party] of parties) {
    const s = await tp.period(name, from, to);
    const availability = s.requests === 0 ? null : pct(((s.requests - s.failed) / s.requests) * 100);
    const errors = s.requests === 0 ? null : pct((s.failed / s.requests) * 100);
    const p95 = p95Ms(s.latency);
    const slowest = s.requests > 0 && p95 === null;
    out.push({
      name,
      kind: party.provider !== undefined ? 'provider' : 'upstream',
      target: party.provider ?? party.upstream ?? '',
      period: { from: new Date(from).toISOString(), to: new Date(to).toISOString() },
      requests: s.requests,
      failed: s.failed,
      availability_percent: availability,
      error_percent: errors,
      p95_ms: p95,
      contract: {
        availability_percent: party.availability_percent,
        p95_ms: party.p95_ms,
        error_percent: party.error_percent,
      },
      met: {
        availability: availability === null ? null : availability >= party.availability_percent,
        p95: slowest ? false : p95 === null ? null : p95 <= party.p95_ms,
        errors: errors === null ? null : errors <= party.error_percent,
      },
    });
  }
  return out;
}
