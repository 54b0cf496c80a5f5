/**
 * Metrics of the audit trail: the journal (size, disk alarm, records, commits, drops, write errors, last seq) and
 * each sink (backlog, whether it delivers, deliveries and failures). Counts since start that the journal and sinks
 * keep are exported as counters read at scrape time, so rate() and increase() treat a restart as a reset.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Services } from '../pipeline/services.js';
import type { Journal } from './journal.js';
import type { SinkRunner } from './sinks.js';

export function registerAuditMetrics(
  services: Services,
  journal: () => Journal | undefined,
  sinks: () => readonly SinkRunner[],
): void {
  const m = services.metrics;
  const gauge = (name: string, help: string, labelNames: string[], collect: (this: Gauge) => void) =>
    m.get(name, (r: Registry) => new Gauge({ name, help, labelNames, registers: [r], collect }));
  // prom-client counters only go up: each scrape resets and re-adds what the component counted since start.
  const countSinceStart = (
    name: string,
    help: string,
    labelNames: string[],
    read: () => Iterable<[Record<string, string>, number]> | undefined,
  ) =>
    m.get(
      name,
      (r: Registry) =>
        new Counter({
          name,
          help,
          labelNames,
          registers: [r],
          collect() {
            const values = read();
            if (values === undefined) return;
            this.reset();
            for (const [labels, value] of values) this.inc(labels, value);
          },
        }),
    );
  gauge('kycgate_audit_backlog_records', 'Journal records not yet delivered, per sink.', ['sink'], function () {
    this.reset();
    for (const s of sinks()) this.set({ sink: s.config.name }, s.backlog);
  });
  gauge(
    'kycgate_audit_sink_up',
    "1 when the sink's last delivery succeeded, 0 while it is failing.",
    ['sink'],
    function () {
      this.reset();
      for (const s of sinks()) this.set({ sink: s.config.name }, s.down ? 0 : 1);
    },
  );
  const perSink = (read: (s: SinkRunner) => number) => () =>
    Array.from(sinks(), (s): [Record<string, string>, number] => [{ sink: s.config.name }, read(s)]);
  countSinceStart(
    'kycgate_audit_sink_delivered_records_total',
    'Records delivered by each sink since start.',
    ['sink'],
    perSink((s) => s.delivered),
  );
  countSinceStart(
    'kycgate_audit_sink_failures_total',
    'Failed delivery attempts of each sink since start.',
    ['sink'],
    perSink((s) => s.failures),
  );
  const journalGauge = (name: string, help: string, read: (j: Journal) => number) =>
    gauge(name, help, [], function () {
      const j = journal();
      if (j) this.set(read(j));
    });
  const journalCounter = (name: string, help: string, read: (j: Journal) => number) =>
    countSinceStart(name, help, [], () => {
      const j = journal();
      return j ? [[{}, read(j)]] : undefined;
    });
  journalGauge('kycgate_audit_journal_bytes', 'Bytes in journal segments on disk.', (j) => j.stats.bytes);
  journalGauge('kycgate_audit_disk_alarm', '1 when the journal is over audit.disk_alarm_bytes.', (j) =>
    j.stats.alarm ? 1 : 0,
  );
  journalCounter(
    'kycgate_audit_records_written_total',
    'Records written and fsynced since start.',
    (j) => j.stats.records,
  );
  journalCounter(
    'kycgate_audit_commits_total',
    'Group commits (one journal write and fsync each) since start: about one per audit.group_commit_ms under load.',
    (j) => j.stats.batches,
  );
  journalGauge('kycgate_audit_records_pending', 'Records waiting for the next group commit.', (j) => j.pendingCount);
  journalCounter(
    'kycgate_audit_records_dropped_total',
    'Records dropped because the journal could not be written and memory was full (should stay 0).',
    (j) => j.stats.dropped,
  );
  journalCounter(
    'kycgate_audit_journal_write_errors_total',
    'Failed journal writes since start.',
    (j) => j.stats.writeErrors,
  );
  journalGauge('kycgate_audit_last_seq', 'Seq of the last committed record.', (j) => j.committed.seq);
}
