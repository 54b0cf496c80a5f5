/** Handlers: runtime state (config, upstreams, providers, certificates, store and Redis, instances) and statistics. */
import type { KycService } from '../../kyc/service.js';
import type { RedisService } from '../../shared/redis.js';
import type { Store } from '../../store/store.js';
import { parseDuration } from '../../auth/api-keys/format.js';
import { iso, type Handler } from '../call.js';

const SECRET_NAME = /secret|password|passwd|token|private|credential|authorization|^api_key$|^key$/i;
const REFERENCE = (v: unknown) =>
  typeof v === 'object' && v !== null && ('env' in v || 'file' in v || 'vault' in v) && Object.keys(v).length === 1;

/** A deep copy with secret values and URL passwords replaced; secret references (env, file, vault) are shown. */
export function redact(value: unknown, name = ''): unknown {
  if (typeof value === 'string') {
    if (SECRET_NAME.test(name) && !/^(\.{0,2}\/|[A-Za-z0-9_.-]+\.(pem|crt|key)$)/.test(value)) return '[redacted]';
    return value.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@]*):[^@/]*@/i, '$1:[redacted]@');
  }
  if (Array.isArray(value)) return value.map((v) => redact(v, name));
  if (typeof value === 'object' && value !== null) {
    if (REFERENCE(value)) return value;
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redact(v, k)]));
  }
  return value;
}

function quantile(sorted: number[], q: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

export const RUNTIME_HANDLERS: Record<string, Handler> = {
  async getConfig(call) {
    const s = call.api.sources;
    return { body: { file: s.configFile() ?? null, config: redact(s.config()) } };
  },

  async getRuntimeState(call) {
    const store = call.api.services.get<Store>('store');
    const redis = call.api.services.find<RedisService>('redis');
    const down = store.availability.downSince;
    return {
      body: {
        store: { driver: store.dialect, up: down === undefined, down_since: iso(down) },
        redis: { configured: redis !== undefined, connected: redis?.connected === true },
        rate_limits: { counters: redis ? 'redis' : 'local', redis_connected: redis?.connected === true },
        incidents: { enabled: call.api.services.find('incidents') !== undefined },
        draining: call.api.sources.draining(),
        ready: await call.api.sources.ready(),
      },
    };
  },

  async listUpstreams(call) {
    return {
      body: {
        items: call.api.sources
          .upstreams()
          .map((t) => ({ upstream: t.upstream, target: t.target, in_rotation: t.inRotation })),
      },
    };
  },

  async listProviders(call) {
    const kyc = call.api.services.find<KycService>('kyc');
    const items = kyc
      ? [...kyc.setup.providers].map(([name, p]) => ({
          name,
          breaker: p.health.state,
          last_error: p.health.lastError ?? null,
        }))
      : [];
    return { body: { items } };
  },

  async listCertificates(call) {
    const now = Date.now();
    return {
      body: {
        items: call.api.sources.certificates().map((c) => ({
          listener: c.listener,
          not_after: iso(c.notAfter?.getTime()),
          expires_in_seconds: c.notAfter ? Math.floor((c.notAfter.getTime() - now) / 1000) : null,
          serial: c.served?.serial ?? null,
          spiffe_id: c.served?.spiffeId ?? null,
          source: c.served?.source ?? null,
          last_rotation: iso(c.rotatedAt?.getTime()),
          rotations: c.rotations ?? 0,
        })),
      },
    };
  },

  async listInstances(call) {
    return { body: { items: await call.api.instances.list() } };
  },

  async decisionStats(call) {
    const q = call.query;
    return {
      body: call.api.stats.decisions({
        windowMs: parseDuration(q.window as string),
        stepMs: parseDuration(q.step as string),
        ...(q.route !== undefined ? { route: String(q.route) } : {}),
        ...(q.consumer !== undefined ? { consumer: String(q.consumer) } : {}),
      }),
    };
  },

  async refusalStats(call) {
    const { challenged: _challenged, ...body } = call.api.stats.refusals(parseDuration(call.query.window as string));
    return { body };
  },

  async kycFunnel(call) {
    const windowMs = parseDuration(call.query.window as string);
    const to = Date.now();
    const from = to - windowMs;
    const counts = { approved: 0, declined: 0, expired: 0, in_review: 0, pending: 0 };
    const times: number[] = [];
    let started = 0;
    if (call.api.services.find<KycService>('kyc')) {
      const rows = await call.api.services.get<Store>('store').query<{
        state: string | null;
        created_at: unknown;
        verified_at: unknown;
      }>(
        'SELECT v.state, s.created_at, v.verified_at FROM kyc_sessions s LEFT JOIN kyc_verifications v ON ' +
          'v.subject = s.subject AND v.provider = s.provider AND v.workflow = s.workflow AND v.session_id = s.session_id ' +
          'WHERE s.created_at >= $1',
        [from],
      );
      for (const r of rows) {
        started++;
        // A session replaced by a newer one was abandoned: counted as expired.
        const state = r.state ?? 'expired';
        if (state === 'approved') {
          counts.approved++;
          if (r.verified_at !== null) times.push(Math.max(0, (Number(r.verified_at) - Number(r.created_at)) / 1000));
        } else if (state === 'declined' || state === 'expired' || state === 'in_review') counts[state]++;
        else counts.pending++;
      }
    }
    times.sort((a, b) => a - b);
    return {
      body: {
        from: new Date(from).toISOString(),
        to: new Date(to).toISOString(),
        challenged: call.api.stats.refusals(windowMs).challenged,
        sessions_started: started,
        ...counts,
        conversion: started === 0 ? 0 : counts.approved / started,
        time_to_verify_seconds: { count: times.length, p50: quantile(times, 0.5), p90: quantile(times, 0.9) },
      },
    };
  },
};
