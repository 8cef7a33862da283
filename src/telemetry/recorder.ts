import {
  INVALID_SPAN_CONTEXT,
  ROOT_CONTEXT,
  context,
  isSpanContextValid,
  propagation,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Meter,
  type ObservableGauge,
  type Link,
  type Span,
  type SpanContext,
  type Tracer,
} from '@opentelemetry/api';
import { METRICS, RECORDED_METRIC_KEYS, SPANS, type LabelSpec, type MetricSpec, type LabelsOf, type MetricKey, type RecordedMetricKey, type SpanKey, type TelemetryStage } from './catalog.ts';
import {
  ATTR_ERROR_TYPE, ATTR_HTTP_REQUEST_METHOD, ATTR_HTTP_RESPONSE_STATUS_CODE, ATTR_HTTP_ROUTE, ATTR_NETWORK_PROTOCOL_VERSION, ATTR_URL_PATH, ATTR_URL_SCHEME,
} from '@opentelemetry/semantic-conventions';
import { admissible, type CounterCell, type CounterTable, type HistogramCell, type HistogramTable, type MetricCells } from './cells.ts';
import { errorTypeOf } from './error-type.ts';
import { EventLoopDelay } from './event-loop.ts';
import { LabelGuard } from './labels.ts';

const MAX_CACHED_LABEL_SETS = 4096;
/** The methods the semantic conventions know; any other is reported as `_OTHER` (a bounded set). */
const HTTP_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH', 'QUERY']);

/** One HTTP request being served: its SERVER span, the context to run its handlers in, when it started. */
export interface HttpServerRequest {
  readonly span: Span;
  readonly context: Context;
  readonly method: string;
  readonly scheme: 'http' | 'https';
  readonly protocolVersion: string;
  readonly startedAt: number;
}

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
  readonly meter: Meter;
  /**
   * Where the counters and histograms are aggregated (register it with the metric reader: its
   * `metricProducers`). Without it they are not recorded at all: no work per call (telemetry disabled).
   * The observable gauges are the meter's.
   */
  readonly cells?: MetricCells;
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
  /** Per metric: its label guards, the cells (or gauge attributes) admitted so far, its table (none for a gauge). */
  readonly #metrics = new Map<MetricKey, RecordedMetric>();
  readonly #gauges = new Map<MetricKey, ObservableGauge>();
  #httpServerDuration: HistogramTable | undefined;
  /** http.server.request.duration's cells by a key of their attributes (bounded). */
  readonly #httpCells = new Map<string, HistogramCell>();
  #admittedSets = 0;
  readonly #onFailure: TelemetryOptions['onFailure'];
  #gaugeSource: GaugeSource | undefined;
  #configured: Partial<ConfiguredGauges> = {};
  readonly #eventLoop = new EventLoopDelay();

  constructor(options: TelemetryOptions) {
    this.tracer = options.tracer;
    this.#onFailure = options.onFailure;
    const { cells } = options;
    for (const key of RECORDED_METRIC_KEYS) {
      const spec: MetricSpec = METRICS[key];
      const instrument = { name: spec.otelName, description: spec.description, unit: spec.unit, cardinalityLimit: spec.cardinalityLimit };
      let table: CounterTable | HistogramTable | undefined;
      try {
        if (spec.kind === 'counter' && cells) {
          const counter = cells.counter(instrument);
          // Seeded at 0 (see enumeratedLabelSets).
          for (const labels of enumeratedLabelSets(spec)) counter.cell(labels);
          table = counter;
        } else if (spec.kind === 'histogram' && cells) {
          table = cells.histogram({ ...instrument, buckets: spec.buckets ?? [] });
        } else if (spec.kind === 'gauge') {
          this.#gauges.set(key, options.meter.createObservableGauge(spec.otelName, { description: spec.description, unit: spec.unit }));
        }
      } catch (error) {
        this.failure('instrument', error);
      }
      this.#metrics.set(key, { guards: guardedLabels(spec), admitted: new Map(), table });
    }
    try {
      const http = METRICS.httpServerRequestDuration;
      this.#httpServerDuration = cells?.histogram({ name: http.otelName, description: http.description, unit: http.unit, cardinalityLimit: http.cardinalityLimit, buckets: http.buckets });
    } catch (error) {
      this.failure('instrument', error);
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
            for (const point of points) observer.observe(gauge, point.value, this.#admit(this.#metrics.get(key)!, point.labels, point.value)!.attributes);
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
      if (metric?.table === undefined) return;
      (this.#admit(metric, labels, value) as HistogramCell | undefined)?.record(value);
    } catch (error) {
      this.failure('instrument', error);
    }
  }

  #count(key: CounterKey, value: number, labels: object): void {
    const metric = this.#metrics.get(key);
    if (metric?.table === undefined) return;
    (this.#admit(metric, labels, value) as CounterCell | undefined)?.add(value);
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
    let active = context.active();
    try {
      active = trace.setSpan(active, span);
    } catch (error) {
      this.failure('span', error);
    }
    try {
      return await context.with(active, () => work(span));
    } catch (error) {
      this.markFailed(span, error);
      throw error;
    } finally {
      this.endSpan(span);
    }
  }

  /** Runs `work` inside a new active span named by the catalogue (see runInSpan). */
  inSpan<T>(key: SpanKey, attributes: Attributes, work: (span: Span) => Promise<T>): Promise<T> {
    return this.runInSpan(this.startSpan(key, attributes), work);
  }

  /**
   * Starts serving one HTTP request: a SERVER span (the conventions' name and attributes; named by the method
   * until the route is known), child of the caller's span when the headers carry a W3C traceparent (the
   * global propagator extracts it), else the root of a new trace. Run the request's handlers in `context`.
   */
  startHttpServerRequest(method: string, path: string, headers: Record<string, string | string[] | undefined>, scheme: 'http' | 'https', protocolVersion: string): HttpServerRequest {
    const known = HTTP_METHODS.has(method) ? method : '_OTHER';
    const startedAt = performance.now();
    try {
      const parent = headers['traceparent'] === undefined ? ROOT_CONTEXT : propagation.extract(ROOT_CONTEXT, headers);
      const span = this.tracer.startSpan(known === '_OTHER' ? 'HTTP' : known, {
        kind: SpanKind.SERVER,
        attributes: { [ATTR_HTTP_REQUEST_METHOD]: known, [ATTR_URL_PATH]: path, [ATTR_URL_SCHEME]: scheme, [ATTR_NETWORK_PROTOCOL_VERSION]: protocolVersion },
      }, parent);
      return { span, context: trace.setSpan(parent, span), method: known, scheme, protocolVersion, startedAt };
    } catch (error) {
      this.failure('span', error);
      return { span: NOOP_SPAN, context: ROOT_CONTEXT, method: known, scheme, protocolVersion, startedAt };
    }
  }

  /**
   * Ends an HTTP request: names its span by the route template (`POST /api/v1/workflows/:id/executions/sync`),
   * sets the status code (and error.type, ERROR status on a 5xx or a response that never finished), and
   * records http.server.request.duration with one cached attributes object per distinct set.
   */
  endHttpServerRequest(request: HttpServerRequest, statusCode: number, route: string | undefined, finished: boolean): void {
    const seconds = (performance.now() - request.startedAt) / 1000;
    const errorType = statusCode >= 500 ? String(statusCode) : finished ? undefined : '_OTHER';
    try {
      const { span } = request;
      if (route !== undefined) {
        span.updateName(`${request.method === '_OTHER' ? 'HTTP' : request.method} ${route}`);
        span.setAttribute(ATTR_HTTP_ROUTE, route);
      }
      span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, statusCode);
      if (errorType !== undefined) {
        span.setAttribute(ATTR_ERROR_TYPE, errorType);
        span.setStatus({ code: SpanStatusCode.ERROR });
      }
      span.end();
    } catch (error) {
      this.failure('span', error);
    }
    try {
      const duration = this.#httpServerDuration;
      if (duration === undefined || !admissible(seconds)) return;
      // One cell per distinct attribute set; an absent route is not an empty one.
      const key = `${request.method}\u0000${route ?? '\u0001'}\u0000${statusCode}\u0000${request.scheme}\u0000${request.protocolVersion}\u0000${errorType ?? ''}`;
      let cell = this.#httpCells.get(key);
      if (!cell) {
        cell = duration.cell(Object.freeze({
          [ATTR_HTTP_REQUEST_METHOD]: request.method, [ATTR_URL_SCHEME]: request.scheme, [ATTR_NETWORK_PROTOCOL_VERSION]: request.protocolVersion,
          ...(route !== undefined && { [ATTR_HTTP_ROUTE]: route }), [ATTR_HTTP_RESPONSE_STATUS_CODE]: statusCode,
          ...(errorType !== undefined && { [ATTR_ERROR_TYPE]: errorType }),
        }));
        if (this.#httpCells.size < MAX_CACHED_LABEL_SETS) this.#httpCells.set(key, cell);
      }
      cell.record(seconds);
    } catch (error) {
      this.failure('instrument', error);
    }
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
   * Guards the labels and returns the metric's cell for that label set (a gauge's: its frozen attributes),
   * reused across calls: the guards run once per set, and the cell is found again with a few map lookups (a
   * tree of maps keyed by the label values in the catalogue's order, no key string built per call). The
   * tree is bounded; past the bound, sets are guarded on every call instead, and find their cell by its
   * attributes (the cells themselves are bounded by the metric's cardinality limit). A value the metric
   * drops (see cells.ts, admissible) makes no cell: undefined.
   */
  #admit(metric: RecordedMetric, labels: object, value: number): Admitted | undefined {
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
    const cached = node?.get(leafValue) as Admitted | undefined;
    if (cached) return cached;
    const attributes: Attributes = {};
    for (const { label, guard, attribute, optional } of guards) {
      const labelValue = values[label];
      // An optional attribute without a value is left off, never confused with 'none'.
      if (labelValue === undefined && optional) continue;
      attributes[attribute] = guard.admit(String(labelValue ?? 'none'));
    }
    Object.freeze(attributes);
    if (metric.table && !admissible(value)) return undefined;
    const admitted: Admitted = metric.table ? metric.table.cell(attributes) : { attributes };
    if (node && this.#admittedSets < MAX_CACHED_LABEL_SETS) {
      node.set(leafValue, admitted);
      this.#admittedSets++;
    }
    return admitted;
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

/** What a label set is admitted as: a counter's or histogram's cell, or a gauge's attributes. */
type Admitted = CounterCell | HistogramCell | { readonly attributes: Attributes };
/** A level of the admission cache: label value -> next level, or what the set was admitted as at the last label. */
type AdmittedNode = Map<unknown, AdmittedNode | Admitted>;

interface RecordedMetric {
  readonly guards: readonly GuardedLabel[];
  readonly admitted: AdmittedNode;
  /** A counter's or histogram's cells; undefined for a gauge, and for every metric when nothing is recorded. */
  readonly table: CounterTable | HistogramTable | undefined;
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
