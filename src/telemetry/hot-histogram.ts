// A label-less Prometheus histogram for a per-request hot path, served by a prom-client Registry.
//
// prom-client's Histogram.observe() hashes its label object and looks the series up on every call,
// even without labels: with the bookkeeping around it, ~1% of a small admission's CPU
// (bench/README.md). This one counts into a fixed bucket array, and the Registry asks it for the
// same exposition (`_bucket{le}`, `_sum`, `_count`) at scrape time through prom-client's metric
// contract (name, help, type, aggregator, get(), reset()).

import type { Metric, MetricValueWithName, Registry } from 'prom-client';

/** The shape a Registry reads from a metric's get(). */
export interface HistogramSnapshot {
  name: string;
  help: string;
  type: 'histogram';
  aggregator: 'sum';
  values: MetricValueWithName<string>[];
}

export interface HotHistogramOptions {
  name: string;
  help: string;
  /** Upper bounds, strictly increasing; +Inf is implied. */
  buckets: readonly number[];
  registers: Registry[];
}

export class HotHistogram {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram' as const;
  readonly aggregator = 'sum' as const;
  readonly #bounds: readonly number[];
  /** counts[i]: observations in (bounds[i-1], bounds[i]]; the last slot is (last bound, +Inf). */
  readonly #counts: Float64Array;
  #sum = 0;
  #count = 0;

  constructor(opts: HotHistogramOptions) {
    if (
      opts.buckets.length === 0 ||
      opts.buckets.some((b, i) => !Number.isFinite(b) || (i > 0 && b <= opts.buckets[i - 1]!))
    )
      throw new Error(`histogram ${opts.name}: buckets must be finite and strictly increasing`);
    this.name = opts.name;
    this.help = opts.help;
    this.#bounds = [...opts.buckets];
    this.#counts = new Float64Array(opts.buckets.length + 1);
    for (const r of opts.registers) r.registerMetric(this as unknown as Metric);
  }

  /** Counts one observation (a value that is not a number is not one, and is ignored). */
  observe(value: number): void {
    if (Number.isNaN(value)) return;
    const bounds = this.#bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    this.#counts[i]!++;
    this.#sum += value;
    this.#count++;
  }

  /** What prom-client's Histogram#get() returns: cumulative buckets, then sum and count. */
  async get(): Promise<HistogramSnapshot> {
    const values: MetricValueWithName<string>[] = [];
    let cumulative = 0;
    for (let i = 0; i < this.#bounds.length; i++) {
      cumulative += this.#counts[i]!;
      values.push(bucket(this.name, this.#bounds[i]!, cumulative));
    }
    values.push(bucket(this.name, '+Inf', this.#count));
    values.push({ metricName: `${this.name}_sum`, labels: {}, value: this.#sum });
    values.push({ metricName: `${this.name}_count`, labels: {}, value: this.#count });
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    this.#counts.fill(0);
    this.#sum = 0;
    this.#count = 0;
  }
}

/** A bucket line as prom-client's Histogram gives it (exemplar null: none recorded). */
function bucket(name: string, le: number | string, value: number): MetricValueWithName<string> {
  return { value, metricName: `${name}_bucket`, exemplar: null, labels: { le } } as MetricValueWithName<string>;
}
