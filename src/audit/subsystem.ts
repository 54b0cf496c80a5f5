/**
 * The `audit` subsystem: subscribes to the gateway event bus and feeds the journal (records for every request and
 * security event), the sinks that ship it, the Prometheus metrics and, when enabled, tracing. It starts once per
 * process; header capture settings apply on reload, the rest on restart.
 */
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import type { Logger } from 'pino';
import type { Subsystem, RunningSubsystem } from '../subsystems.js';
import type { GatewayConfig } from '../config/types.js';
import { RequestField, type RequestContext } from '../pipeline/context.js';
import type { ResponseHead } from '../pipeline/policy.js';
import type { EventListener, GatewayEvent, RefusedRequest } from '../pipeline/events.js';
import { ConfigError } from '../config/load.js';
import { problem } from '../pipeline/problem.js';
import { auditSchema, type AuditConfig } from './schema.js';
import { Journal } from './journal.js';
import { workerChainDir } from './segments.js';
import { HeaderCapture, eventEntry, refusedEntry, requestEntry } from './record.js';
import { SinkRunner, transportFor } from './sinks.js';
import { RequestMetrics } from '../observe/metrics.js';
import { registerAuditMetrics } from './metrics.js';
import { RequestTracer } from '../observe/tracing.js';
import type { ClusterChannel } from '../pipeline/cluster.js';

/** The `audit` service other subsystems may look up. */
export interface AuditService {
  readonly journal: Journal | undefined;
  /** The recorder, when the journal is enabled (the `audit` policy uses it). */
  readonly recorder: AuditRecorder | undefined;
  readonly durability: 'group' | 'sync';
  readonly sinks: readonly SinkRunner[];
  /** The chain this process writes (a worker's own under `workers/<n>/` with `server.workers` > 1). */
  readonly auditDir: string;
  /** The audit directory: the signing key and every chain (`kycgate audit verify` reads them all). */
  readonly trailDir: string;
}

export function auditDirectory(dataDir: string): string {
  return path.join(dataDir, 'audit');
}

/** The checkpoint signing key: configured, or generated once under the audit directory. The public key is kept beside it. */
export function signingKey(auditDir: string, configured: string | undefined): KeyObject {
  fs.mkdirSync(auditDir, { recursive: true, mode: 0o700 });
  const keyFile = path.join(auditDir, 'signing-key.pem');
  let key: KeyObject;
  if (configured !== undefined) {
    try {
      key = createPrivateKey(configured);
    } catch {
      throw new ConfigError(['audit.signing_key: not a PEM private key']);
    }
  } else if (fs.existsSync(keyFile)) {
    key = createPrivateKey(fs.readFileSync(keyFile, 'utf8'));
  } else {
    const pair = generateKeyPairSync('ed25519');
    fs.writeFileSync(keyFile, pair.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    key = pair.privateKey;
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new ConfigError(['audit.signing_key: must be an Ed25519 key']);
  fs.writeFileSync(
    path.join(auditDir, 'signing-key.pub.pem'),
    createPublicKey(key).export({ type: 'spki', format: 'pem' }),
    { mode: 0o644 },
  );
  return key;
}

/** State the `audit` policy leaves on a request: its record was already written, or the response headers it saw. */
export type AuditRequestState = { written: true } | { responseHeaders: Record<string, string> | undefined };
const AUDIT_STATE = new RequestField<AuditRequestState>('audit.state');

/**
 * Events written and fsynced before emit() returns under durability `sync`: the ones that record a change of state
 * (keys, secrets, configuration, verification status, provider sessions, accepted webhooks). Every other event,
 * above all those one bad request can cause (auth.failure, authz.denied, ratelimit.rejected, network.refused,
 * validation.failed, webhook.refused, kyc.decision ...), is group-committed, so a flood of refused requests does
 * not cost one fsync each on the event loop. Keep docs/AUDIT.md and the `durability` description in step.
 */
const SYNC_EVENTS: ReadonlySet<string> = new Set([
  'secret.rotated',
  'config.reloaded',
  'config.refused',
  'kyc.status.changed',
  'kyc.session.created',
  'webhook.accepted',
  'fault.armed',
  'fault.disarmed',
]);

export function eventNeedsSync(type: string): boolean {
  return type.startsWith('key.') || type.startsWith('incident.') || SYNC_EVENTS.has(type);
}

/**
 * Events whose facts the request's own record carries (consumer, authentication method, credential id, SPIFFE ID;
 * the KYC gate's decision, rule, subject and missing claims): emitted for a request, they are not written as
 * records of their own unless `audit.separate_request_events` is on, so an authenticated, KYC-gated request costs
 * one record rather than three. Refusals that report an attack (`auth.failure`) keep their own record.
 */
const FOLDED_EVENTS: ReadonlySet<string> = new Set(['auth.success', 'kyc.decision']);

/** Copies what a record needs into a journal entry; serialising happens later, in the group commit. */
export class AuditRecorder implements EventListener {
  requestHeaders: HeaderCapture;
  responseHeaders: HeaderCapture;
  private readonly separateRequestEvents: boolean;

  constructor(
    private readonly journal: Journal,
    private readonly durableEvents: boolean,
    cfg: AuditConfig,
  ) {
    this.requestHeaders = new HeaderCapture(cfg.request_headers, cfg.redact_headers);
    this.responseHeaders = new HeaderCapture(cfg.response_headers, cfg.redact_headers);
    this.separateRequestEvents = cfg.separate_request_events;
  }

  onRequestComplete(ctx: RequestContext): void {
    const state = ctx.get(AUDIT_STATE);
    if (state === undefined) {
      this.journal.append(
        requestEntry(ctx, Date.now(), performance.now() - ctx.startedAt, this.requestHeaders, this.responseHeaders),
      );
      return;
    }
    if ('written' in state) return;
    const entry = requestEntry(
      ctx,
      Date.now(),
      performance.now() - ctx.startedAt,
      this.requestHeaders,
      this.responseHeaders,
    );
    entry.responseHeaders = state.responseHeaders;
    this.journal.append(entry);
  }

  /**
   * Called by the `audit` policy with the final response head (upstream headers included). Durable: when the
   * record cannot be written and fsynced, a success (2xx) is withheld and answered 503 instead, so no success goes
   * out without its record; the 503 is then recorded like any request (queued, retried when the disk is back).
   */
  onResponseHead(ctx: RequestContext, head: ResponseHead, durable: boolean): void {
    const responseHeaders = this.responseHeaders.fromHead(head.headers);
    if (!durable) {
      ctx.set(AUDIT_STATE, { responseHeaders });
      return;
    }
    // Durable: the record is written and fsynced now, before the head goes to the client.
    const entry = requestEntry(
      ctx,
      Date.now(),
      performance.now() - ctx.startedAt,
      this.requestHeaders,
      this.responseHeaders,
    );
    entry.status = head.status;
    entry.responseHeaders = responseHeaders;
    entry.data = { recorded_at: 'response_head' };
    if (this.journal.appendDurable(entry)) {
      ctx.set(AUDIT_STATE, { written: true });
      return;
    }
    // Not on disk. The queued entry would claim an answer that may not be the one sent: take it back, and let the
    // completion record the answer actually sent.
    this.journal.withdraw(entry);
    ctx.set(AUDIT_STATE, { responseHeaders });
    if (head.status >= 200 && head.status < 300) {
      head.withhold = problem('service-unavailable', {
        detail: 'The audit record of this answer could not be written; the answer was withheld. Retry later.',
        headers: { 'retry-after': 1 },
      });
    }
  }

  onRequestRefused(info: RefusedRequest): void {
    this.journal.append(refusedEntry(info, Date.now(), performance.now() - info.startedAt));
  }

  onEvent(event: GatewayEvent): void {
    if (event.requestId !== undefined && !this.separateRequestEvents && FOLDED_EVENTS.has(event.type)) return;
    const entry = eventEntry(event, Date.now());
    if (this.durableEvents && eventNeedsSync(event.type)) this.journal.appendDurable(entry);
    else this.journal.append(entry);
  }
}

export function applyRetention(journal: Journal, sinks: readonly SinkRunner[], days: number, logger: Logger): void {
  if (days <= 0) return;
  const delivered = sinks.length === 0 ? journal.committed.seq : Math.min(...sinks.map((s) => s.cursor.seq));
  const cutoff = Date.now() - days * 86_400_000;
  const segments = journal.segmentList();
  const removed = new Set<number>();
  let bytes = 0;
  for (let i = 0; i < segments.length - 1; i++) {
    const lastSeq = segments[i + 1]!.firstSeq - 1;
    if (lastSeq > delivered) break;
    const st = fs.statSync(segments[i]!.file);
    if (st.mtimeMs >= cutoff) break;
    fs.unlinkSync(segments[i]!.file);
    removed.add(segments[i]!.firstSeq);
    bytes += st.size;
  }
  if (removed.size > 0) {
    journal.forgetSegments(removed);
    journal.forgetBytes(bytes);
    logger.info({ segments: removed.size, bytes }, 'audit retention removed delivered journal segments');
  }
}

export const auditSubsystem: Subsystem = {
  name: 'audit',
  section: { key: 'audit', schema: auditSchema },
  async start(config: GatewayConfig, ctx): Promise<RunningSubsystem> {
    const cfg = config.audit as AuditConfig;
    const logger = ctx.services.logger;
    const trailDir = auditDirectory(ctx.services.dataDir);
    // With several workers each writes its own chain (one writer per file), signed with the trail's one key.
    const cluster = ctx.services.find<ClusterChannel>('cluster');
    const auditDir = cluster ? workerChainDir(trailDir, cluster.slot) : trailDir;
    const unsubscribe: Array<() => void> = [];
    let journal: Journal | undefined;
    let recorder: AuditRecorder | undefined;
    const sinks: SinkRunner[] = [];
    let retentionTimer: NodeJS.Timeout | undefined;

    const names = cfg.sinks.map((s) => s.name);
    const duplicate = names.find((n, i) => names.indexOf(n) !== i);
    if (duplicate !== undefined)
      throw new ConfigError([
        `audit.sinks: the name "${duplicate}" is used twice (each sink keeps its own cursor by name)`,
      ]);
    if (cfg.enabled) {
      const privateKey = signingKey(trailDir, cfg.signing_key ? ctx.resolveSecret(cfg.signing_key) : undefined);
      journal = new Journal({
        auditDir,
        durability: cfg.durability,
        groupCommitMs: cfg.group_commit_ms,
        segmentBytes: cfg.segment_bytes,
        checkpointRecords: cfg.checkpoint_records,
        checkpointSeconds: cfg.checkpoint_seconds,
        maxPending: cfg.max_pending_records,
        diskAlarmBytes: cfg.disk_alarm_bytes,
        privateKey,
        logger,
      });
      // Transports first: a sink config error refuses the start before any file is opened.
      const transports = cfg.sinks.map((sc) => {
        try {
          return transportFor(sc, ctx.services.dataDir, ctx.loaded.baseDir, ctx.resolveSecret);
        } catch (err) {
          throw err instanceof ConfigError ? err : new ConfigError([(err as Error).message]);
        }
      });
      const opened = journal.open();
      cfg.sinks.forEach((sc, i) => {
        sinks.push(new SinkRunner(sc, transports[i]!, journal!, auditDir, logger));
      });
      recorder = new AuditRecorder(journal, cfg.durability === 'sync', cfg);
      unsubscribe.push(ctx.services.events.subscribe(recorder));
      journal.append(
        eventEntry(
          {
            type: 'audit.started',
            outcome: opened.truncatedBytes > 0 ? 'recovered' : 'clean',
            data: {
              last_seq: opened.recovered,
              truncated_bytes: opened.truncatedBytes,
              durability: cfg.durability,
              pid: process.pid,
            },
          },
          Date.now(),
        ),
      );
      for (const s of sinks) s.start();
      applyRetention(journal, sinks, cfg.retention_days, logger);
      retentionTimer = setInterval(() => applyRetention(journal!, sinks, cfg.retention_days, logger), 3_600_000);
      retentionTimer.unref();
      logger.info(
        {
          dir: auditDir,
          durability: cfg.durability,
          sinks: sinks.map((s) => s.config.name),
          last_seq: opened.recovered,
        },
        'audit journal open',
      );
    }

    registerAuditMetrics(
      ctx.services,
      () => journal,
      () => sinks,
    );
    // The request metrics are the per-request cost of metrics: counted only when /metrics is served.
    const registry = cfg.metrics.enabled ? ctx.services.metrics.registry : undefined;
    if (registry !== undefined)
      unsubscribe.push(ctx.services.events.subscribe(new RequestMetrics(ctx.services.metrics)));

    let tracer: RequestTracer | undefined;
    if (cfg.tracing.enabled) {
      tracer = new RequestTracer({
        endpoint: cfg.tracing.endpoint,
        serviceName: cfg.tracing.service_name,
        sampleRatio: cfg.tracing.sample_ratio,
      });
      unsubscribe.push(ctx.services.events.subscribe(tracer));
    }

    ctx.services.register<AuditService>('audit', {
      journal,
      recorder,
      durability: cfg.durability,
      sinks,
      auditDir,
      trailDir,
    });
    let current = cfg;

    return {
      adminHandlers: registry
        ? {
            '/metrics': (_req, res) => {
              // With several workers, the supervisor sums every worker's registry (this one included).
              const cluster = ctx.services.find<ClusterChannel>('cluster');
              void (cluster ? cluster.request<string>('metrics', null) : registry.metrics()).then(
                (body) => {
                  res.writeHead(200, { 'content-type': registry.contentType, 'cache-control': 'no-store' });
                  res.end(body);
                },
                () => {
                  res.writeHead(500, { 'content-type': 'text/plain' });
                  res.end('metrics unavailable\n');
                },
              );
            },
          }
        : {},
      async reload(next: GatewayConfig) {
        const n = next.audit as AuditConfig;
        if (recorder) {
          recorder.requestHeaders = new HeaderCapture(n.request_headers, n.redact_headers);
          recorder.responseHeaders = new HeaderCapture(n.response_headers, n.redact_headers);
        }
        const restartOnly = [
          'enabled',
          'durability',
          'group_commit_ms',
          'segment_bytes',
          'sinks',
          'metrics',
          'tracing',
          'signing_key',
        ] as const;
        const changed = restartOnly.filter((k) => JSON.stringify(n[k]) !== JSON.stringify(current[k]));
        if (changed.length > 0)
          logger.warn(
            { keys: changed.map((k) => `audit.${k}`) },
            'audit settings changed: they take effect on restart',
          );
        current = n;
      },
      async ready() {
        if (!journal) return { ok: true, detail: { audit: 'disabled' } };
        return {
          ok: journal.writable,
          detail: {
            audit_last_seq: journal.committed.seq,
            pending: journal.pendingCount,
            sinks_down: sinks.filter((s) => s.down).map((s) => s.config.name),
          },
        };
      },
      async close() {
        for (const u of unsubscribe) u();
        clearInterval(retentionTimer);
        if (journal) {
          journal.append(eventEntry({ type: 'audit.stopped', outcome: 'clean' }, Date.now()));
          await journal.flush();
          await Promise.all(sinks.map((s) => s.stop()));
          await journal.close();
        }
        await tracer?.close();
      },
    };
  },
};
