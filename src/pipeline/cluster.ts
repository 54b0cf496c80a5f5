/**
 * The contract between gateway workers and their supervisor (`server.workers` > 1, src/cluster/). A worker reaches
 * the supervisor through a `ClusterChannel` (the service `cluster`, absent in a single process); the supervisor
 * answers through a `ClusterHub`. Features that keep state which must stay exact across workers (local rate-limit
 * counters) hold it in the supervisor and give it a hub handler (`PolicyDefinition.primary`); features with caches
 * send invalidations through the channel, which the supervisor fans out to every worker.
 */

/** A worker's side: its slot, requests to the supervisor and messages from it. */
export interface ClusterChannel {
  /** This worker's slot, 0..workers-1 (a replacement takes the slot of the worker it replaces). */
  readonly slot: number;
  readonly workers: number;
  /** Values the supervisor gives every worker at start (e.g. the embedded sandbox's address). */
  readonly shared: Readonly<Record<string, unknown>>;
  /** Asks the supervisor's handler for `topic`; rejects when the supervisor does not answer within the timeout. */
  request<T>(topic: string, body: unknown): Promise<T>;
  /** Sends without waiting for an answer. */
  send(topic: string, body: unknown): void;
  /** Messages the supervisor sends or fans out on `topic` (broadcasts reach the sender too). */
  on(topic: string, handler: (body: unknown) => void): () => void;
  /** Asks the supervisor to send `body` on `topic` to every worker. */
  broadcast(topic: string, body: unknown): void;
  /** Makes a value part of `shared` for workers started from now on (a replaced one included). */
  share(key: string, value: unknown): void;
}

/** The supervisor's side, given to `PolicyDefinition.primary`. */
export interface ClusterHub {
  readonly workers: number;
  /** Answers requests on `topic`; what the handler returns (or resolves to) is the answer. */
  handle(topic: string, handler: (body: unknown, slot: number) => unknown): void;
  /** Sends `body` on `topic` to every worker. */
  broadcast(topic: string, body: unknown): void;
}
