/**
 * A prom-client Histogram whose series come from counts summed elsewhere (the
 * workers' metrics files) rather than from observe(): prom-client offers no
 * way to set bucket counts, so this overrides the two methods its Registry
 * reads and renders the same series a Histogram would.
 */
import { Histogram, type Registry } from 'prom-client';

export interface HistogramSeries {
  labels: Record<string, string>;
  /** Non-cumulative counts per bucket of `buckets`, then the +Inf bucket. */
  counts: ArrayLike<number>;
  sum: number;
}

export class SharedHistogram<T extends string> extends Histogram<T> {
  private readonly bounds: readonly number[];
  private readonly metricName: string;
  private readonly metricHelp: string;

  constructor(
    config: { name: string; help: string; labelNames: readonly T[]; buckets: readonly number[]; registers: Registry[] },
    private readonly series: () => Iterable<HistogramSeries>,
  ) {
    super({ ...config, buckets: [...config.buckets], labelNames: [...config.labelNames] });
    this.bounds = [...config.buckets];
    this.metricName = config.name;
    this.metricHelp = config.help;
  }

  private render() {
    const values: Array<{ labels: Record<string, string | number>; value: number; metricName: string }> = [];
    for (const s of this.series()) {
      let acc = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        acc += s.counts[i];
        values.push({ labels: { ...s.labels, le: this.bounds[i] }, value: acc, metricName: `${this.metricName}_bucket` });
      }
      acc += s.counts[this.bounds.length];
      values.push({ labels: { ...s.labels, le: '+Inf' }, value: acc, metricName: `${this.metricName}_bucket` });
      values.push({ labels: { ...s.labels }, value: s.sum, metricName: `${this.metricName}_sum` });
      values.push({ labels: { ...s.labels }, value: acc, metricName: `${this.metricName}_count` });
    }
    return { name: this.metricName, help: this.metricHelp, type: 'histogram', values, aggregator: 'sum' };
  }

  /** Read by Registry.metrics(). */
  async getForPromString(): Promise<ReturnType<SharedHistogram<T>['render']>> {
    return this.render();
  }

  override async get(): Promise<Awaited<ReturnType<Histogram<T>['get']>>> {
    return this.render() as unknown as Awaited<ReturnType<Histogram<T>['get']>>;
  }
}
