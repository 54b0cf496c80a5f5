/**
 * Messages between workers and the supervisor over Node's IPC channel (one JSON object per message). Each carries
 * `kg` so that the supervisor and workers can tell them from other IPC traffic (prom-client's metric requests).
 */

/** Worker → supervisor. */
export type ToPrimary =
  | { kg: 'req'; id: number; t: string; b: unknown }
  | { kg: 'send'; t: string; b: unknown }
  | { kg: 'bcast'; t: string; b: unknown }
  | { kg: 'share'; k: string; v: unknown }
  | { kg: 'ready'; urls: Record<string, string>; admin?: string };

/** Supervisor → worker. */
export type ToWorker = { kg: 'res'; id: number; b?: unknown; e?: string } | { kg: 'msg'; t: string; b: unknown };

/** Environment variables through which the supervisor tells a worker who it is. */
export const WORKER_ENV = {
  slot: 'KYCGATE_WORKER_SLOT',
  workers: 'KYCGATE_WORKERS',
  shared: 'KYCGATE_WORKER_SHARED',
} as const;

export function isMessage(m: unknown): m is { kg: string } {
  return typeof m === 'object' && m !== null && typeof (m as { kg?: unknown }).kg === 'string';
}
