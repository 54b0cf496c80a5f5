/**
 * Counters and histograms for the request path. prom-client's label children hash and validate their labels on
 * every `inc()` / `observe()` (a few microseconds per request for the request counter and the latency histogram);
 * here a series is a plain cell, looked up once and cached by the caller, and updating it is an increment. The
 * registry reads the cells when /metrics is scraped, in prom-client's export format, so the exposition (names,
 * label order, cumulative buckets, `_sum` and `_count`) is the same as prom-client's own metrics.
 */
import type { Metric, Registry } from 'prom-client';

export interface CounterCell {
  readonly labels: Readonly<Record<string, string>>;
  value: number;
}

export interface HistogramCell {
  readonly labels: Readonly<Record<string, string>>;
  /** Observations per bucket, not cumulative; the last slot counts those above every bound. */
  readonly counts: Float64Array;
  sum: number;
  count: number;
}

interface ExportedValue {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

abstract class CellMetric<C extends { labels: Readonly<Record<string, string>> }> {
  readonly aggregator = 'sum';
  protected readonly cells = new Map<string, C>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
  ) {}

  /**
   * The series for these label values (created on first use); keep it, updating it costs no lookup. A label whose
   * value is undefined is left out of the series (a series may carry fewer labels than the metric names).
   */
  cell(...values: Array<string | undefined>): C {
    const key = values.map((v) => (v === undefined ? '\u0001' : v)).join('\u0000');
    let c = this.cells.get(key);
    if (c === undefined) {
      const labels: Record<string, string> = {};
      for (let i = 0; i < this.labelNames.length; i++) {
        const value = values[i];
        if (value !== undefined) labels[this.labelNames[i]!] = value;
      }
      c = this.create(labels);
      this.cells.set(key, c);
    }
    return c;
  }

  protected abstract create(labels: Record<string, string>): C;

  /** Zeroes every series in place: callers keep the cells they cached. */
  abstract reset(): void;

  register(registry: Registry): this {
    registry.registerMetric(this as unknown as Metric);
    return this;
  }
}

export class FastCounter extends CellMetric<CounterCell> {
  readonly type = 'counter';

  protected create(labels: Record<string, string>): CounterCell {
    return { labels, value: 0 };
  }

  reset(): void {
    for (const c of this.cells.values()) c.value = 0;
  }

  /** prom-client's MetricObject: series that were never incremented are left out, as prom-client does. */
  get(): { name: string; help: string; type: string; aggregator: string; values: ExportedValue[] } {
    const values: ExportedValue[] = [];
    for (const c of this.cells.values()) if (c.value > 0) values.push({ labels: { ...c.labels }, value: c.value });
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}

export class FastHistogram extends CellMetric<HistogramCell> {
  readonly type = 'histogram';

  constructor(
    name: string,
    help: string,
    labelNames: readonly string[],
    readonly bounds: readonly number[],
  ) {
    super(name, help, labelNames);
  }

  protected create(labels: Record<string, string>): HistogramCell {
    return { labels, counts: new Float64Array(this.bounds.length + 1), sum: 0, count: 0 };
  }

  reset(): void {
    for (const c of this.cells.values()) {
      c.counts.fill(0);
      c.sum = 0;
      c.count = 0;
    }
  }

  observe(cell: HistogramCell, value: number): void {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    cell.counts[i]!++;
    cell.sum += value;
    cell.count++;
  }

  get(): { name: string; help: string; type: string; aggregator: string; values: ExportedValue[] } {
    const values: ExportedValue[] = [];
    const bucket = `${this.name}_bucket`;
    for (const c of this.cells.values()) {
      if (c.count === 0) continue;
      let acc = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        acc += c.counts[i]!;
        values.push({ labels: { le: this.bounds[i]!, ...c.labels }, value: acc, metricName: bucket });
      }
      values.push({ labels: { le: '+Inf', ...c.labels }, value: c.count, metricName: bucket });
      values.push({ labels: { ...c.labels }, value: c.sum, metricName: `${this.name}_sum` });
      values.push({ labels: { ...c.labels }, value: c.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}
