/**
 * OpenTelemetry tracing, off by default. When off nothing is registered and this listener is not subscribed, so a
 * request pays nothing. When on, a SERVER span per request is recorded at completion (start time = arrival,
 * parent = the incoming W3C traceparent, which the core forwards upstream unchanged), with one CLIENT child span per
 * verification-provider call reported through `provider.call` events carrying the request id. Spans leave through a
 * batch processor and the OTLP/HTTP exporter, off the request path. The provider is registered globally so code
 * using @opentelemetry/api directly is traced too.
 */
import {
  context,
  trace,
  SpanKind,
  SpanStatusCode,
  TraceFlags,
  ROOT_CONTEXT,
  type Context,
  type Tracer,
} from '@opentelemetry/api';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-base';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { performance } from 'node:perf_hooks';
import type { RequestContext } from '../pipeline/context.js';
import type { EventListener, GatewayEvent } from '../pipeline/events.js';

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const MAX_PENDING_REQUESTS = 10_000;

interface ProviderCall {
  provider: string;
  outcome: string;
  end: number;
  latencyMs: number;
}

export function parentContext(traceparent: string | undefined): Context {
  if (traceparent === undefined) return ROOT_CONTEXT;
  const m = TRACEPARENT.exec(traceparent.trim());
  if (!m || /^0+$/.test(m[1]!) || /^0+$/.test(m[2]!)) return ROOT_CONTEXT;
  return trace.setSpanContext(ROOT_CONTEXT, {
    traceId: m[1]!,
    spanId: m[2]!,
    traceFlags: parseInt(m[3]!, 16) & TraceFlags.SAMPLED,
    isRemote: true,
  });
}

export class RequestTracer implements EventListener {
  private readonly provider: BasicTracerProvider;
  private readonly tracer: Tracer;
  private readonly calls = new Map<string, ProviderCall[]>();

  constructor(o: { endpoint: string; serviceName: string; sampleRatio: number; exporter?: SpanExporter }) {
    this.provider = new BasicTracerProvider({
      resource: resourceFromAttributes({ 'service.name': o.serviceName }),
      sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(o.sampleRatio) }),
      spanProcessors: [new BatchSpanProcessor(o.exporter ?? new OTLPTraceExporter({ url: o.endpoint }))],
    });
    trace.setGlobalTracerProvider(this.provider);
    this.tracer = this.provider.getTracer('kycgate');
  }

  onEvent(event: GatewayEvent): void {
    if (event.type !== 'provider.call') return;
    const data = event.data ?? {};
    const call: ProviderCall = {
      provider: typeof data.provider === 'string' ? data.provider : 'unknown',
      outcome: event.outcome ?? 'unknown',
      end: Date.now(),
      latencyMs: typeof data.latency_ms === 'number' ? data.latency_ms : 0,
    };
    if (event.requestId === undefined) return this.providerSpan(call, ROOT_CONTEXT);
    if (this.calls.size >= MAX_PENDING_REQUESTS) this.calls.delete(this.calls.keys().next().value!);
    const list = this.calls.get(event.requestId);
    if (list) list.push(call);
    else this.calls.set(event.requestId, [call]);
  }

  private providerSpan(call: ProviderCall, parent: Context): void {
    const span = this.tracer.startSpan(
      `provider ${call.provider}`,
      {
        kind: SpanKind.CLIENT,
        startTime: call.end - call.latencyMs,
        attributes: { 'kycgate.provider': call.provider, 'kycgate.outcome': call.outcome },
      },
      parent,
    );
    if (call.outcome !== 'ok') span.setStatus({ code: SpanStatusCode.ERROR, message: call.outcome });
    span.end(call.end);
  }

  onRequestComplete(ctx: RequestContext): void {
    const start = performance.timeOrigin + ctx.startedAt;
    const span = this.tracer.startSpan(
      `${ctx.method} ${ctx.route.name}`,
      {
        kind: SpanKind.SERVER,
        startTime: start,
        attributes: {
          'http.request.method': ctx.method,
          'url.path': ctx.path,
          'http.route': ctx.route.name,
          'http.response.status_code': ctx.status,
          'client.address': ctx.clientIp,
          'kycgate.request_id': ctx.id,
          'kycgate.listener': ctx.listener,
          ...(ctx.identity?.consumer ? { 'kycgate.consumer': ctx.identity.consumer } : {}),
          ...(ctx.identity?.method ? { 'kycgate.auth_method': ctx.identity.method } : {}),
          ...(ctx.decision
            ? {
                'kycgate.decision': ctx.decision.outcome,
                ...(ctx.decision.rule ? { 'kycgate.rule': ctx.decision.rule } : {}),
              }
            : {}),
          ...(ctx.target ? { 'kycgate.upstream': ctx.target } : {}),
          ...(ctx.errorKind ? { 'kycgate.problem': ctx.errorKind } : {}),
        },
      },
      parentContext(ctx.header('traceparent')),
    );
    if (ctx.status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
    const calls = this.calls.get(ctx.id);
    if (calls) {
      this.calls.delete(ctx.id);
      const parent = trace.setSpan(context.active(), span);
      for (const c of calls) this.providerSpan(c, parent);
    }
    span.end(performance.timeOrigin + performance.now());
  }

  async close(): Promise<void> {
    await this.provider.shutdown().catch(() => undefined);
    trace.disable();
  }
}
