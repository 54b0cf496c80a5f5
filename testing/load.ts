/**
 * Small load helpers for tests: fire requests with bounded concurrency over keep-alive connections and record each
 * status and latency. Not a benchmark tool; just enough to offer a known load to a gateway.
 */
import http from 'node:http';
import { performance } from 'node:perf_hooks';

export interface Sample {
  status: number;
  ms: number;
  /** Index of the target URL the request went to. */
  target: number;
}

/** One GET to `url` on `agent`, resolving with its status (0 on a connection error) and latency. */
export function timedGet(
  url: string,
  agent: http.Agent,
  headers: Record<string, string> = {},
): Promise<{ status: number; ms: number }> {
  const start = performance.now();
  return new Promise((resolve) => {
    const req = http.get(url, { agent, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode!, ms: performance.now() - start }));
      res.on('error', () => resolve({ status: 0, ms: performance.now() - start }));
    });
    req.on('error', () => resolve({ status: 0, ms: performance.now() - start }));
  });
}

/** Sends `total` GETs spread round-robin over `urls`, `concurrency` at a time. */
export async function burst(
  urls: readonly string[],
  total: number,
  concurrency: number,
  headers: Record<string, string> = {},
): Promise<Sample[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const samples: Sample[] = [];
  let next = 0;
  const worker = async () => {
    while (next < total) {
      const i = next++;
      const target = i % urls.length;
      const r = await timedGet(urls[target]!, agent, headers);
      samples.push({ ...r, target });
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  agent.destroy();
  return samples;
}

/**
 * Offers a steady rate: one GET every `1000 / perSecond` ms for `durationMs`, alternating over `urls`, without
 * waiting for answers (an open-loop load, as real clients produce).
 */
export async function steady(
  urls: readonly string[],
  perSecond: number,
  durationMs: number,
  headers: Record<string, string> = {},
): Promise<Sample[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const pending: Array<Promise<void>> = [];
  const samples: Sample[] = [];
  const start = performance.now();
  const count = Math.floor((perSecond * durationMs) / 1000);
  for (let i = 0; i < count; i++) {
    const due = start + (i * 1000) / perSecond;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const target = i % urls.length;
    pending.push(timedGet(urls[target]!, agent, headers).then((r) => void samples.push({ ...r, target })));
  }
  await Promise.all(pending);
  agent.destroy();
  return samples;
}

export function countStatus(samples: readonly Sample[], status: number): number {
  let n = 0;
  for (const s of samples) if (s.status === status) n++;
  return n;
}
