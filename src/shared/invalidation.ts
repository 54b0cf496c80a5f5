/**
 * Where cache invalidations travel between the processes that cache the same things: Redis pub/sub when Redis is
 * configured (every instance, and every worker of each, subscribes), else the supervisor's fan-out when the gateway
 * runs several workers (`server.workers`), else nowhere (one process: the change is applied where it is made).
 */
import type { ClusterChannel } from '../pipeline/cluster.js';
import type { Services } from '../pipeline/services.js';
import type { RedisService } from './redis.js';

export interface Invalidations {
  /** Sends `message` to every subscriber of `channel` (this process included); false when it could not be sent. */
  publish(channel: string, message: string): Promise<boolean>;
  subscribe(channel: string, handler: (message: string) => void): () => void;
}

export function invalidations(services: Services): Invalidations | undefined {
  const redis = services.find<RedisService>('redis');
  if (redis !== undefined) return redis;
  const cluster = services.find<ClusterChannel>('cluster');
  return cluster === undefined ? undefined : clusterInvalidations(cluster);
}

/** The supervisor's topic for `channel`: what it broadcasts there reaches `clusterInvalidations` subscribers. */
export const clusterTopic = (channel: string): string => 'invalidate:' + channel;

/** Invalidations fanned out by the supervisor to every worker. */
export function clusterInvalidations(cluster: ClusterChannel): Invalidations {
  return {
    publish(channel, message) {
      cluster.broadcast(clusterTopic(channel), message);
      return Promise.resolve(true);
    },
    subscribe(channel, handler) {
      return cluster.on(clusterTopic(channel), (body) => handler(String(body)));
    },
  };
}
