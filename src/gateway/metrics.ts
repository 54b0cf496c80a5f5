/**
 * Metrics of the gateway's own parts: the certificate each TLS listener serves (expiry, identity, rotations) and
 * whether each upstream target takes traffic.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Services } from '../pipeline/services.js';
import type { ListenerCertificateInfo, UpstreamTargetInfo } from '../subsystems.js';

export function registerGatewayMetrics(
  services: Services,
  certificates: () => readonly ListenerCertificateInfo[],
  upstreams: () => readonly UpstreamTargetInfo[],
): void {
  const m = services.metrics;
  const gauge = (name: string, help: string, labelNames: string[], collect: (this: Gauge) => void) =>
    m.get(name, (r: Registry) => new Gauge({ name, help, labelNames, registers: [r], collect }));
  gauge(
    'kycgate_tls_certificate_not_after_seconds',
    'Expiry (Unix seconds) of the certificate each TLS listener serves.',
    ['listener'],
    function () {
      this.reset();
      for (const c of certificates())
        if (c.notAfter) this.set({ listener: c.listener }, Math.floor(c.notAfter.getTime() / 1000));
    },
  );
  gauge(
    'kycgate_tls_certificate_info',
    'Always 1: the certificate each TLS listener serves (serial, SPIFFE ID when it is an SVID, source file or workload_api).',
    ['listener', 'serial', 'spiffe_id', 'source'],
    function () {
      this.reset();
      for (const c of certificates()) {
        if (c.served)
          this.set(
            {
              listener: c.listener,
              serial: c.served.serial,
              spiffe_id: c.served.spiffeId ?? '',
              source: c.served.source,
            },
            1,
          );
      }
    },
  );
  gauge(
    'kycgate_tls_certificate_last_rotation_seconds',
    'When (Unix seconds) each TLS listener last put a different certificate in service; absent until the first rotation.',
    ['listener'],
    function () {
      this.reset();
      for (const c of certificates())
        if (c.rotatedAt) this.set({ listener: c.listener }, Math.floor(c.rotatedAt.getTime() / 1000));
    },
  );
  gauge(
    'kycgate_upstream_target_up',
    'Whether each upstream target takes traffic: 1 in rotation, 0 out (passive ejection or failed health probes).',
    ['upstream', 'target'],
    function () {
      this.reset();
      for (const t of upstreams()) this.set({ upstream: t.upstream, target: t.target }, t.inRotation ? 1 : 0);
    },
  );
  m.get(
    'kycgate_tls_certificate_rotations_total',
    (r: Registry) =>
      new Counter({
        name: 'kycgate_tls_certificate_rotations_total',
        help: 'Certificates put in service by each TLS listener since start (file changes or Workload API updates).',
        labelNames: ['listener'],
        registers: [r],
        collect() {
          this.reset();
          for (const c of certificates()) this.inc({ listener: c.listener }, c.rotations ?? 0);
        },
      }),
  );
}

/** HTTP/2 connections a listener closed for abuse (rapid reset), by listener and reason. */
export function http2ClosedCounter(services: Services): Counter<'listener' | 'reason'> {
  const name = 'kycgate_http2_connections_closed_total';
  return services.metrics.counter(
    name,
    'HTTP/2 connections closed with GOAWAY for abuse (reason: rapid_reset), by the gateway or nghttp2, by listener.',
    ['listener', 'reason'],
  );
}
