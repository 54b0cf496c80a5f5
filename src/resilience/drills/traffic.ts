/**
 * Drives a drill's traffic: each stream sends requests at its rate (open loop: on time whether or not earlier ones
 * were answered, as real clients do), and every answer is kept with the phase it was sent in, its status (or the
 * transport error) and how long it took. Statistics per phase and the recovery time are computed from them.
 */
import { type Agent, request } from 'undici';
import { resolveSecret, isSecretRef } from '../../config/secrets.js';
import type { TrafficStream } from './scenario.js';

export type Phase = 'before' | 'fault' | 'after';

export interface Sample {
  /** Epoch ms the request was sent. */
  at: number;
  phase: Phase;
  /** HTTP status, or 0 when no answer came (reset, refused, timeout). */
  status: number;
  ms: number;
  error?: string;
}

export interface PhaseStats {
  requests: number;
  served: number;
  served_percent: number | null;
  statuses: Record<string, number>;
  errors: Record<string, number>;
  p50_ms: number | null;
  p95_ms: number | null;
  p99_ms: number | null;
  max_ms: number | null;
}

function quantile(sorted: number[], q: number): number | null {
  if (sorted.length === 0) return null;
  return Math.round(sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]! * 10) / 10;
}

export function isServed(stream: TrafficStream, status: number): boolean {
  if (status === 0) return false;
  return stream.expect === undefined ? status >= 200 && status < 400 : stream.expect.includes(status);
}

export function phaseStats(stream: TrafficStream, samples: readonly Sample[]): PhaseStats {
  const statuses: Record<string, number> = {};
  const errors: Record<string, number> = {};
  let served = 0;
  for (const s of samples) {
    if (s.status === 0) errors[s.error ?? 'error'] = (errors[s.error ?? 'error'] ?? 0) + 1;
    else statuses[String(s.status)] = (statuses[String(s.status)] ?? 0) + 1;
    if (isServed(stream, s.status)) served++;
  }
  const sorted = samples.map((s) => s.ms).sort((a, b) => a - b);
  return {
    requests: samples.length,
    served,
    served_percent: samples.length === 0 ? null : Math.round((served / samples.length) * 10000) / 100,
    statuses,
    errors,
    p50_ms: quantile(sorted, 0.5),
    p95_ms: quantile(sorted, 0.95),
    p99_ms: quantile(sorted, 0.99),
    max_ms: quantile(sorted, 1),
  };
}

/**
 * How long after the fault ended the stream was served again for good: from `faultEnd` to the first request from
 * which on every request was served. 0 when nothing after the fault failed; null when it never recovered.
 */
export function recoveryMs(stream: TrafficStream, samples: readonly Sample[], faultEnd: number): number | null {
  const after = samples.filter((s) => s.at >= faultEnd).sort((a, b) => a.at - b.at);
  let lastFailure = -1;
  after.forEach((s, i) => {
    if (!isServed(stream, s.status)) lastFailure = i;
  });
  if (lastFailure === -1) return 0;
  const recovered = after[lastFailure + 1];
  return recovered === undefined ? null : Math.max(0, recovered.at - faultEnd);
}

function errorName(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? code : (err as Error).name || 'error';
}

/** Sends a stream's requests until stopped; `phase()` names the phase each request is sent in. */
export class StreamDriver {
  readonly samples: Sample[] = [];
  private n = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly headers: Record<string, string>;

  constructor(
    readonly stream: TrafficStream,
    private readonly baseUrl: string,
    private readonly agent: Agent,
    private readonly phase: () => Phase,
    baseDir: string,
    private readonly timeoutMs: number,
  ) {
    this.headers = {};
    for (const [name, value] of Object.entries(stream.headers)) {
      this.headers[name.toLowerCase()] = isSecretRef(value) ? resolveSecret(value, baseDir) : String(value);
    }
  }

  start(): void {
    const interval = 1000 / this.stream.rate;
    const started = performance.now();
    const tick = () => {
      // Catch up on time rather than drift: send what the rate owes since the start.
      const due = Math.floor((performance.now() - started) / interval) + 1;
      while (this.n < due) this.send();
      this.timer = setTimeout(tick, Math.max(1, started + due * interval - performance.now()));
    };
    tick();
  }

  /** Stops sending and waits for the answers still due. */
  async stop(): Promise<void> {
    clearTimeout(this.timer);
    await Promise.all([...this.inFlight]);
  }

  private send(): void {
    const n = ++this.n;
    const fill = (text: string) => text.replaceAll('{n}', String(n));
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(this.headers)) headers[name] = fill(value);
    const phase = this.phase();
    const at = Date.now();
    const t0 = performance.now();
    const done = request(new URL(fill(this.stream.path), this.baseUrl), {
      method: this.stream.method as 'GET',
      headers,
      ...(this.stream.body !== undefined ? { body: fill(this.stream.body) } : {}),
      dispatcher: this.agent,
      headersTimeout: this.timeoutMs,
      bodyTimeout: this.timeoutMs,
    })
      .then(async (res) => {
        await res.body.dump();
        this.samples.push({ at, phase, status: res.statusCode, ms: performance.now() - t0 });
      })
      .catch((err: unknown) => {
        this.samples.push({ at, phase, status: 0, ms: performance.now() - t0, error: errorName(err) });
      })
      .finally(() => this.inFlight.delete(done));
    this.inFlight.add(done);
  }
}
