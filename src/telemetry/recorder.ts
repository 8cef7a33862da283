import {
  INVALID_SPAN_CONTEXT,
  ROOT_CONTEXT,
  context,
  isSpanContextValid,
  SpanStatusCode,
  trace,
  type Attributes,
  type Counter,
  type Histogram,
  type Meter,
  type ObservableGauge,
  type Link,
  type Span,
  type SpanContext,
  type Tracer,
} from '@opentelemetry/api';
import { METRICS, RECORDED_METRIC_KEYS, SPANS, type LabelSpec, type MetricSpec, type LabelsOf, type MetricKey, type RecordedMetricKey, type SpanKey, type TelemetryStage } from './catalog.ts';
import { ATTR_ERROR_TYPE } from '@opentelemetry/semantic-conventions';
import { errorTypeOf } from './error-type.ts';
import { EventLoopDelay } from './event-loop.ts';
import { LabelGuard } from './labels.ts';

const MAX_CACHED_LABEL_SETS = 4096;
type KeyOfKind<Kind> = { [K in RecordedMetricKey]: (typeof METRICS)[K]['kind'] extends Kind ? K : never }[RecordedMetricKey];
export type CounterKey = KeyOfKind<'counter'>;
export type HistogramKey = KeyOfKind<'histogram'>;
export type GaugeKey = KeyOfKind<'gauge'>;

export interface GaugeReading<K extends GaugeKey> {
  readonly labels: LabelsOf<K>;
  readonly value: number;
}
type ProcessGaugeKey = 'eventLoopDelayP50' | 'eventLoopDelayP99' | 'eventLoopDelayMax';
/** Gauges that report a configured value as it is (setConfiguredGauges), not live state. */
export type ConfiguredGaugeKey = 'agentModelBudget';
/** Reads the engine's live state behind its observable gauges; called by the SDK at each collection. */
export type GaugeSource = () => { [K in Exclude<GaugeKey, ProcessGaugeKey | ConfiguredGaugeKey>]: ReadonlyArray<GaugeReading<K>> };
export type ConfiguredGauges = { [K in ConfiguredGaugeKey]: ReadonlyArray<GaugeReading<K>> };

export interface TelemetryOptions {
  readonly tracer: Tracer;
  /** The SDK's meter: counters, histograms and observable gauges of the catalogue (views: telemetry/views.ts). */
  readonly meter: Meter;
  /** Told about each telemetry failure; must not throw (it is guarded anyway). */
  readonly onFailure?: (stage: TelemetryStage, error: unknown) => void;
}

/**
 * The engine's only handle on telemetry: typed recorders for the metrics of the catalogue and a span
 * helper. Every call is guarded: a throwing meter, instrument or span processor is counted in
 * telemetry_failures_total and never reaches the execution that was being measured.
 */
export class Telemetry {
  readonly tracer: Tracer;
  /** Per metric: its label guards, the attribute sets admitted so far, its instrument (none for a gauge). */
  readonly #metrics = new Map<MetricKey, RecordedMetric>();
  readonly #gauges = new Map<MetricKey, ObservableGauge>();
  #admittedSets = 0;
  readonly #onFailure: TelemetryOptions['onFailure'];
  #gaugeSource: GaugeSource | undefined;
  #configured: Partial<ConfiguredGauges> = {};
  readonly #eventLoop = new EventLoopDelay();

  constructor(options: TelemetryOptions) {
    this.tracer = options.tracer;
    this.#onFailure = options.onFailure;
    for (const key of RECORDED_METRIC_KEYS) {
      const spec: MetricSpec = METRICS[key];
      const described = { description: spec.description, unit: spec.unit };
      let instrument: Counter | Histogram | undefined;
      try {
        if (spec.kind === 'counter') {
          const counter = options.meter.createCounter(spec.otelName, described);
          // Seeded at 0 (see enumeratedLabelSets).
          for (const labels of enumeratedLabelSets(spec)) counter.add(0, labels);
          instrument = counter;
        } else if (spec.kind === 'histogram') {
          instrument = options.meter.createHistogram(spec.otelName, described);
        } else if (spec.kind === 'gauge') {
          this.#gauges.set(key, options.meter.createObservableGauge(spec.otelName, described));
        }
      } catch (error) {
        this.failure('instrument', error);
      }
      this.#metrics.set(key, { guards: guardedLabels(spec), admitted: new Map(), instrument });
    }
    try {
      options.meter.addBatchObservableCallback((observer) => {
        try {
          const delay = this.#eventLoop.read();
          const readings = {
            ...this.#gaugeSource?.(),
            ...this.#configured,
            ...(delay && { eventLoopDelayP50: [{ labels: {}, value: delay.p50 }], eventLoopDelayP99: [{ labels: {}, value: delay.p99 }], eventLoopDelayMax: [{ labels: {}, value: delay.max }] }),
          };
          for (const [key, points] of Object.entries(readings) as [GaugeKey, ReadonlyArray<GaugeReading<GaugeKey>>][]) {
            const gauge = this.#gauges.get(key);
            if (!gauge) continue;
            for (const point of points) observer.observe(gauge, point.value, this.#admit(this.#metrics.get(key)!, point.labels));
          }
        } catch (error) {
          this.failure('gauge_callback', error);
        }
      }, [...this.#gauges.values()]);
    } catch (error) {
      this.failure('instrument', error);
    }
  }

  add<K extends CounterKey>(key: K, value: number, labels: LabelsOf<K>): void {
    try {
      this.#count(key, value, labels);
    } catch (error) {
      this.failure('instrument', error);
    }
  }

  record<K extends HistogramKey>(key: K, value: number, labels: LabelsOf<K>): void {
    try {
      const metric = this.#metrics.get(key);
      if (metric?.instrument === undefined || !admissible(value)) return;
      (metric.instrument as Histogram).record(value, this.#admit(metric, labels));
    } catch (error) {
      this.failure('instrument', error);
    }
  }

  #count(key: CounterKey, value: number, labels: object): void {
    const metric = this.#metrics.get(key);
    if (metric?.instrument === undefined || !admissible(value)) return;
    (metric.instrument as Counter).add(value, this.#admit(metric, labels));
  }

  setGaugeSource(source: GaugeSource): void {
    this.#gaugeSource = source;
  }

  /** Configured values the gauges report from now on, as they are (an empty list: no series). */
  setConfiguredGauges(gauges: ConfiguredGauges): void {
    this.#configured = gauges;
  }

  /** Counts a failure of telemetry itself. Never throws. */
  failure(stage: TelemetryStage, error?: unknown): void {
    try {
      this.#count('telemetryFailures', 1, { stage });
    } catch {
      // The failure counter itself failed: nothing left to tell.
    }
    try {
      this.#onFailure?.(stage, error);
    } catch {
      // A failing failure-listener must not throw into the engine either.
    }
  }

  /**
   * Starts a span named by the catalogue, child of the active one; a failing tracer gives a no-op span.
   * With `continues` (a traceparent from `traceparentOf`), the span is a child of that earlier span
   * instead, so work resumed later stays in the same trace, and it links to the active span (what
   * caused the resumption).
   */
  startSpan(key: SpanKey, attributes: Attributes, continues?: string | null): Span {
    try {
      const parent = continues ? spanContextOf(continues) : undefined;
      if (!parent) return this.tracer.startSpan(SPANS[key].name, { attributes });
      const cause = trace.getSpanContext(context.active());
      const links: Link[] = cause && isSpanContextValid(cause) ? [{ context: cause }] : [];
      return this.tracer.startSpan(SPANS[key].name, { attributes, links }, trace.setSpanContext(ROOT_CONTEXT, parent));
    } catch (error) {
      this.failure('span', error);
      return NOOP_SPAN;
    }
  }

  /**
   * Runs `work` with `span` active; the span ends however `work` ends, and a thrown error marks it
   * failed (status, error.type, exception event) before propagating unchanged.
   */
  async runInSpan<T>(span: Span, work: (span: Span) => Promise<T>): Promise<T> {
    try {
      return await this.withActiveSpan(span, () => work(span));
    } catch (error) {
      this.markFailed(span, error);
      throw error;
    } finally {
      this.endSpan(span);
    }
  }

  /** Runs `work` with `span` active, and nothing else: the caller ends the span. */
  withActiveSpan<T>(span: Span, work: () => T): T {
    let active = context.active();
    try {
      active = trace.setSpan(active, span);
    } catch (error) {
      this.failure('span', error);
    }
    return context.with(active, work);
  }

  /** Runs `work` inside a new active span named by the catalogue (see runInSpan). */
  inSpan<T>(key: SpanKey, attributes: Attributes, work: (span: Span) => Promise<T>): Promise<T> {
    return this.runInSpan(this.startSpan(key, attributes), work);
  }

  /**
   * Marks a span failed: ERROR status, the exception, and error.type from the one vocabulary
   * (telemetry/error-type.ts): the type the error names itself, else `errorType` (what the caller knows
   * that the error does not say, such as why a call was aborted), else `_OTHER`. So a failure carries the
   * same error.type on every span it fails, whatever each caller passes.
   */
  markFailed(span: Span | undefined, error: unknown, errorType?: string): void {
    if (!span) return;
    try {
      span.setAttribute(ATTR_ERROR_TYPE, errorTypeOf(error, errorType));
      if (error instanceof Error) span.recordException(error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
    } catch (failure) {
      this.failure('span', failure);
    }
  }

  endSpan(span: Span | undefined): void {
    try {
      span?.end();
    } catch (error) {
      this.failure('span', error);
    }
  }

  /**
   * Guards the labels and returns the attributes for that label set, reused across calls: the guards run
   * once per set, and the frozen attributes are found again with a few map lookups (a tree of maps keyed by
   * the label values in the catalogue's order, no key string built per call). The tree is bounded; past the
   * bound, sets are guarded on every call instead (the SDK bounds the series by the view's cardinality limit).
   */
  #admit(metric: RecordedMetric, labels: object): Attributes {
    const values = labels as Record<string, unknown>;
    const { guards } = metric;
    let node: AdmittedNode | undefined = metric.admitted;
    const last = guards.length - 1;
    for (let i = 0; i < last && node; i++) {
      const labelValue = values[guards[i]!.label];
      let next = node.get(labelValue) as AdmittedNode | undefined;
      if (!next && this.#admittedSets < MAX_CACHED_LABEL_SETS) {
        next = new Map();
        node.set(labelValue, next);
      }
      node = next;
    }
    const leafValue = last < 0 ? undefined : values[guards[last]!.label];
    const cached = node?.get(leafValue) as Attributes | undefined;
    if (cached) return cached;
    const attributes: Attributes = {};
    for (const { label, guard, attribute, optional } of guards) {
      const labelValue = values[label];
      // An optional attribute without a value is left off, never confused with 'none'.
      if (labelValue === undefined && optional) continue;
      attributes[attribute] = guard.admit(String(labelValue ?? 'none'));
    }
    Object.freeze(attributes);
    if (node && this.#admittedSets < MAX_CACHED_LABEL_SETS) {
      node.set(leafValue, attributes);
      this.#admittedSets++;
    }
    return attributes;
  }
}

/**
 * Every label set of a metric whose labels are all enumerations (no id label), at most
 * MAX_SEEDED_LABEL_SETS of them. Counters start at 0 for these: a counter series that first appears
 * already holding its count (say, runs swept right after a restart under a new instance id) is a jump
 * that rate() and increase() cannot see, so alerts and ratios would miss it.
 */
export function enumeratedLabelSets(spec: Pick<MetricSpec, 'labels' | 'attributes'>): Attributes[] {
  let sets: Attributes[] = [{}];
  for (const [label, allowed] of Object.entries(spec.labels)) {
    if (!Array.isArray(allowed) || spec.attributes?.[label]?.optional) return [];
    const attribute = spec.attributes?.[label]?.name ?? label;
    sets = sets.flatMap((set) => (allowed as readonly string[]).map((value) => ({ ...set, [attribute]: value })));
    if (sets.length > MAX_SEEDED_LABEL_SETS) return [];
  }
  return sets.map((set) => Object.freeze(set));
}
const MAX_SEEDED_LABEL_SETS = 64;

/** A level of the admission cache: label value -> next level, or the set's frozen attributes at the last label. */
type AdmittedNode = Map<unknown, AdmittedNode | Attributes>;

interface RecordedMetric {
  readonly guards: readonly GuardedLabel[];
  readonly admitted: AdmittedNode;
  /** A counter or histogram of the SDK; undefined for a gauge. */
  readonly instrument: Counter | Histogram | undefined;
}

/**
 * A value the recorder passes on: a number, not negative (NaN passes, as the SDK takes it). Counters and
 * histograms take no negative value; the SDK would drop it with a diagnostic per call.
 */
export function admissible(value: unknown): value is number {
  return typeof value === 'number' && !(value < 0);
}

interface GuardedLabel {
  readonly label: string;
  readonly guard: LabelGuard;
  /** The OpenTelemetry attribute name the label is exported under (Prometheus turns its dots into underscores). */
  readonly attribute: string;
  readonly optional: boolean;
}

function guardedLabels(spec: MetricSpec): GuardedLabel[] {
  return Object.entries(spec.labels).map(([label, allowed]: [string, LabelSpec]) => {
    const attribute = spec.attributes?.[label];
    return { label, guard: new LabelGuard(allowed), attribute: attribute?.name ?? label, optional: attribute?.optional === true };
  });
}

/** The W3C traceparent of a span (to store and continue later with `startSpan`); null for a no-op span. */
export function traceparentOf(span: Span): string | null {
  const spanContext = span.spanContext();
  const { traceId, spanId, traceFlags } = spanContext;
  return isSpanContextValid(spanContext) ? `00-${traceId}-${spanId}-${traceFlags.toString(16).padStart(2, '0')}` : null;
}

function spanContextOf(traceparent: string): SpanContext | undefined {
  const match = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(traceparent);
  if (!match) return undefined;
  const parsed: SpanContext = { traceId: match[1]!, spanId: match[2]!, traceFlags: parseInt(match[3]!, 16), isRemote: true };
  return isSpanContextValid(parsed) ? parsed : undefined;
}

const NOOP_SPAN: Span = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);
