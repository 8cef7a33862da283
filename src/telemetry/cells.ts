/**
 * The recorder's own aggregation of its counters and histograms: one cell per attribute set, updated in
 * place (no attribute hashing, no SDK call per measurement), read by the SDK's metric reader through a
 * MetricProducer (its `metricProducers` option) at each export.
 *
 * The points are the ones the SDK's own instruments made with the catalogue's views (telemetry/views.ts):
 * cumulative temporality; a monotonic sum for a counter (a negative value dropped, NaN kept, as the SDK
 * does); an explicit bucket histogram for a histogram (a value goes to the first bucket whose upper
 * boundary is >= it; negative values dropped; NaN makes the series but is not counted), with sum, count,
 * min and max; and at most `cardinalityLimit - 1` attribute sets per metric, the sets beyond going to one
 * overflow series `otel.metric.overflow: true`. Unlike the SDK, whose limit counts the sets seen since the
 * previous collection (its cumulative store keeps every set it ever saw), the limit here counts every set
 * over the process's life: every structure stays bounded. test/telemetry/cells.test.ts compares the two.
 */
import { ValueType, type Attributes, type HrTime } from '@opentelemetry/api';
import { millisToHrTime, type InstrumentationScope } from '@opentelemetry/core';
import { emptyResource } from '@opentelemetry/resources';
import {
  AggregationTemporality, DataPointType, InstrumentType,
  type CollectionResult, type MetricData, type MetricDescriptor, type MetricProducer,
} from '@opentelemetry/sdk-metrics';

/** The attribute set of the overflow series, as the SDK names it. */
export const OVERFLOW_ATTRIBUTES: Attributes = Object.freeze({ 'otel.metric.overflow': true });

/**
 * Whether a value makes (or finds) a series at all: the SDK's counters and histograms drop negative values
 * and values that are not numbers before they reach a series; NaN passes (see the cells for what it does).
 */
export function admissible(value: unknown): value is number {
  return typeof value === 'number' && !(value < 0);
}

/**
 * A counter's running sum for one attribute set. The sum since the previous collection is kept apart and
 * added at collection, as the SDK adds each interval's delta to the cumulative value: the same floating
 * point sums, to the last bit.
 */
export class CounterCell {
  readonly attributes: Attributes;
  readonly startTime: HrTime = millisToHrTime(Date.now());
  #pending = 0;
  #total = 0;
  constructor(attributes: Attributes) {
    this.attributes = attributes;
  }

  add(value: number): void {
    if (typeof value !== 'number' || value < 0) return;
    this.#pending += value;
  }

  /** The cumulative value (folds what was added since the previous read). */
  read(): number {
    this.#total += this.#pending;
    this.#pending = 0;
    return this.#total;
  }
}

/** A histogram's state for one attribute set: counts per bucket, sum (see CounterCell), count, min, max. */
export class HistogramCell {
  readonly attributes: Attributes;
  readonly startTime: HrTime = millisToHrTime(Date.now());
  readonly #boundaries: readonly number[];
  /** One count per boundary, and the last for values above every boundary. */
  readonly #counts: number[];
  #pendingSum = 0;
  #sum = 0;
  #count = 0;
  #min = Infinity;
  #max = -Infinity;
  constructor(attributes: Attributes, boundaries: readonly number[]) {
    this.attributes = attributes;
    this.#boundaries = boundaries;
    this.#counts = new Array<number>(boundaries.length + 1).fill(0);
  }

  record(value: number): void {
    if (typeof value !== 'number' || value < 0 || value !== value) return;
    const boundaries = this.#boundaries;
    let bucket = 0;
    while (bucket < boundaries.length && boundaries[bucket]! < value) bucket++;
    this.#counts[bucket]!++;
    this.#count++;
    this.#pendingSum += value;
    this.#min = Math.min(value, this.#min);
    this.#max = Math.max(value, this.#max);
  }

  /** The cumulative histogram, a copy (folds the sum since the previous read). */
  read(): { buckets: { boundaries: number[]; counts: number[] }; sum: number; count: number; min: number | undefined; max: number | undefined } {
    this.#sum += this.#pendingSum;
    this.#pendingSum = 0;
    const seen = this.#count > 0;
    return {
      buckets: { boundaries: this.#boundaries as number[], counts: this.#counts.slice() },
      sum: this.#sum, count: this.#count, min: seen ? this.#min : undefined, max: seen ? this.#max : undefined,
    };
  }
}

export interface InstrumentSpec {
  readonly name: string;
  readonly description: string;
  readonly unit: string;
  readonly cardinalityLimit: number;
}

/** One metric's cells by attribute set, at most cardinalityLimit of them with the overflow cell. */
abstract class CellTable<C extends CounterCell | HistogramCell> {
  readonly #cells = new Map<string, C>();
  readonly #limit: number;
  protected readonly descriptor: MetricDescriptor;
  constructor(spec: InstrumentSpec, type: InstrumentType) {
    this.#limit = spec.cardinalityLimit;
    // As the SDK describes its instruments (the type is what readers' selectors and tests look at).
    const descriptor = { name: spec.name, description: spec.description, unit: spec.unit, type, valueType: ValueType.DOUBLE, advice: {} };
    this.descriptor = descriptor;
  }

  protected abstract create(attributes: Attributes): C;

  /**
   * The cell of an attribute set, made on its first use; past the limit, the overflow cell. Keyed as the SDK
   * keys its series (sorted attribute names and values), so sets that differ only in order share a cell.
   * For the callers' misses only: they keep the cell they get.
   */
  cell(attributes: Attributes): C {
    const key = keyOf(attributes);
    let cell = this.#cells.get(key);
    if (cell) return cell;
    if (this.#cells.size >= this.#limit - 1) {
      cell = this.#cells.get(OVERFLOW_KEY);
      if (cell) return cell;
      cell = this.create(OVERFLOW_ATTRIBUTES);
      this.#cells.set(OVERFLOW_KEY, cell);
      return cell;
    }
    cell = this.create(Object.isFrozen(attributes) ? attributes : Object.freeze({ ...attributes }));
    this.#cells.set(key, cell);
    return cell;
  }

  protected cells(): IterableIterator<C> {
    return this.#cells.values();
  }

  get size(): number {
    return this.#cells.size;
  }

  abstract read(endTime: HrTime): MetricData | undefined;
}

export class CounterTable extends CellTable<CounterCell> {
  constructor(spec: InstrumentSpec) {
    super(spec, InstrumentType.COUNTER);
  }
  protected create(attributes: Attributes): CounterCell {
    return new CounterCell(attributes);
  }
  read(endTime: HrTime): MetricData | undefined {
    if (this.size === 0) return undefined;
    const dataPoints = [...this.cells()].map((cell) => ({ attributes: cell.attributes, startTime: cell.startTime, endTime, value: cell.read() }));
    return { descriptor: this.descriptor, aggregationTemporality: AggregationTemporality.CUMULATIVE, dataPointType: DataPointType.SUM, dataPoints, isMonotonic: true };
  }
}

export class HistogramTable extends CellTable<HistogramCell> {
  readonly #boundaries: readonly number[];
  constructor(spec: InstrumentSpec & { readonly buckets: readonly number[] }) {
    super(spec, InstrumentType.HISTOGRAM);
    // As the SDK's explicit bucket aggregation takes them: sorted, without infinite bounds.
    const sorted = [...spec.buckets].sort((a, b) => a - b);
    const infinity = sorted.indexOf(Infinity);
    this.#boundaries = Object.freeze(sorted.slice(sorted.lastIndexOf(-Infinity) + 1, infinity === -1 ? undefined : infinity));
  }
  protected create(attributes: Attributes): HistogramCell {
    return new HistogramCell(attributes, this.#boundaries);
  }
  read(endTime: HrTime): MetricData | undefined {
    if (this.size === 0) return undefined;
    const dataPoints = [...this.cells()].map((cell) => ({ attributes: cell.attributes, startTime: cell.startTime, endTime, value: cell.read() }));
    return { descriptor: this.descriptor, aggregationTemporality: AggregationTemporality.CUMULATIVE, dataPointType: DataPointType.HISTOGRAM, dataPoints };
  }
}

/**
 * The recorder's metrics, under one instrumentation scope: tables made by the recorder, read by a metric
 * reader (pass it in the reader's `metricProducers`). A metric without any cell yet is left out, as the SDK
 * leaves out an instrument without points.
 */
export class MetricCells implements MetricProducer {
  readonly #scope: InstrumentationScope;
  readonly #tables: Array<CounterTable | HistogramTable> = [];
  constructor(scope: InstrumentationScope) {
    this.#scope = scope;
  }

  counter(spec: InstrumentSpec): CounterTable {
    const table = new CounterTable(spec);
    this.#tables.push(table);
    return table;
  }

  histogram(spec: InstrumentSpec & { readonly buckets: readonly number[] }): HistogramTable {
    const table = new HistogramTable(spec);
    this.#tables.push(table);
    return table;
  }

  async collect(): Promise<CollectionResult> {
    const endTime = millisToHrTime(Date.now());
    const metrics: MetricData[] = [];
    for (const table of this.#tables) {
      const data = table.read(endTime);
      if (data) metrics.push(data);
    }
    // The reader puts the SDK's resource on every producer's metrics.
    return { resourceMetrics: { resource: emptyResource(), scopeMetrics: metrics.length ? [{ scope: this.#scope, metrics }] : [] }, errors: [] };
  }
}

const OVERFLOW_KEY = keyOf(OVERFLOW_ATTRIBUTES);

/** The SDK's key of an attribute set (hashAttributes in sdk-metrics): its names sorted, with their values. */
function keyOf(attributes: Attributes): string {
  const names = Object.keys(attributes);
  if (names.length === 0) return '';
  return JSON.stringify(names.sort().map((name) => [name, attributes[name]]));
}
