/**
 * The recorder's own aggregation (src/telemetry/cells.ts) makes the points the SDK's instruments made: the
 * same calls go through the SDK (a MeterProvider with the catalogue's views, as the recorder used it
 * before) and through the cells, and both collections must be equal, point for point: attributes, sums,
 * bucket counts, sum/count/min/max, order, descriptors; values on bucket boundaries, negative, NaN and
 * infinite values, and sets past the cardinality limit (the overflow series) included, over two collections.
 */
import { trace, type Attributes, type Counter, type Histogram } from '@opentelemetry/api';
import {
  AggregationType, MeterProvider, type CollectionResult, type MetricData, type ViewOptions,
} from '@opentelemetry/sdk-metrics';
import { afterEach, expect, it, vi } from 'vitest';
import { ID_LABEL, METRICS, MODEL_LABEL, RECORDED_METRIC_KEYS, type MetricSpec, type RecordedMetricKey } from '../../src/telemetry/catalog.ts';
import { admissible, MetricCells } from '../../src/telemetry/cells.ts';
import { enumeratedLabelSets, Telemetry, type CounterKey, type HistogramKey } from '../../src/telemetry/recorder.ts';
import { buildViews } from '../../src/telemetry/views.ts';
import { createTestTelemetry, OnDemandMetricReader } from '../support/telemetry.ts';

afterEach(() => {
  vi.restoreAllMocks();
});

/** A reference SDK: a meter provider with `views` and an on-demand cumulative reader. */
function referenceSdk(views: ViewOptions[]) {
  const reader = new OnDemandMetricReader();
  const provider = new MeterProvider({ views, readers: [reader] });
  return { meter: provider.getMeter('reference'), collect: () => reader.collect(), shutdown: () => provider.shutdown() };
}

/** The metrics of a collection by name, without times (the two sides run at different instants). */
function comparable(result: CollectionResult, names: ReadonlySet<string>): Record<string, unknown> {
  expect(result.errors).toEqual([]);
  const out: Record<string, unknown> = {};
  for (const scope of result.resourceMetrics.scopeMetrics) {
    for (const metric of scope.metrics as MetricData[]) {
      if (!names.has(metric.descriptor.name)) continue;
      const { name, description, unit, valueType, type } = metric.descriptor as MetricData['descriptor'] & { type: string };
      out[name] = {
        descriptor: { name, description, unit, valueType, type },
        temporality: metric.aggregationTemporality,
        dataPointType: metric.dataPointType,
        isMonotonic: 'isMonotonic' in metric ? metric.isMonotonic : undefined,
        points: (metric.dataPoints as MetricData['dataPoints']).map((point) => {
          expect(point.startTime, 'a start time').toHaveLength(2);
          expect(point.endTime, 'an end time').toHaveLength(2);
          return { attributes: point.attributes, value: point.value };
        }),
      };
    }
  }
  return out;
}

/** Values that test the edges: bucket boundaries and just around them, zero, negative, NaN, infinite, huge. */
function valuesFor(buckets: readonly number[] | undefined): number[] {
  const around = (buckets ?? [1, 10]).flatMap((b) => [b, b * (1 - Number.EPSILON), b + Number.EPSILON * Math.max(1, b), b * 1.5]);
  return [...around, 0, -0, 0.1, 0.2, 0.3, -1, -Infinity, Number.NaN, Infinity, 1e300, 1e-300, 7, 0.30000000000000004];
}

it('cells equal the SDK, point for point, for a small limit: boundaries, negative/NaN/infinite values, overflow, two collections', async () => {
  const buckets = [0, 0.5, 1, 2.5, 10];
  const limit = 5;
  const spec = (name: string) => ({ name, description: `${name} description`, unit: 's', cardinalityLimit: limit });
  const sdk = referenceSdk([
    { instrumentName: 'c', aggregationCardinalityLimit: limit },
    { instrumentName: 'h', aggregationCardinalityLimit: limit, aggregation: { type: AggregationType.EXPLICIT_BUCKET_HISTOGRAM, options: { boundaries: buckets } } },
    { instrumentName: 'h.unsorted', aggregationCardinalityLimit: limit, aggregation: { type: AggregationType.EXPLICIT_BUCKET_HISTOGRAM, options: { boundaries: [10, 1, Infinity, 0.5] } } },
  ]);
  const counter = sdk.meter.createCounter('c', { description: 'c description', unit: 's' });
  const histogram = sdk.meter.createHistogram('h', { description: 'h description', unit: 's' });
  const unsorted = sdk.meter.createHistogram('h.unsorted', { description: 'h.unsorted description', unit: 's' });
  const cells = new MetricCells({ name: 'cells' });
  const reader = new OnDemandMetricReader([cells]);
  const provider = new MeterProvider({ readers: [reader] });
  const counterCells = cells.counter(spec('c'));
  const histogramCells = cells.histogram({ ...spec('h'), buckets });
  const unsortedCells = cells.histogram({ ...spec('h.unsorted'), buckets: [10, 1, Infinity, 0.5] });

  const values = valuesFor(buckets);
  // Sets a..e: past the limit (4 sets and the overflow series), the later ones overflow; `n` only ever sees a
  // NaN (the SDK makes its series without counting it), `neg` only negative values (no series at all).
  const sets: Attributes[] = ['a', 'b', 'c', 'd', 'e', 'f'].map((set) => ({ set, n: 1 }));
  const run = (from: number, to: number) => {
    for (let i = from; i < to; i++) {
      const value = values[i % values.length]!;
      const second = i >= 60;
      const attributes = i === 3 || (second && i % 17 === 0) ? { set: 'n' } : !second && i % 11 === 5 ? { set: 'neg' } : { ...sets[(i * 7) % (i < 40 || second ? 3 : sets.length)]! };
      const recorded = attributes.set === 'neg' ? -value - 1 : attributes.set === 'n' ? Number.NaN : value;
      // Counters: NaN only on one set, so the other sums stay readable.
      const counted = Number.isNaN(recorded) && attributes.set !== 'b' ? 1 : recorded;
      counter.add(counted, attributes);
      histogram.record(recorded, attributes);
      unsorted.record(recorded, attributes);
      if (admissible(counted)) counterCells.cell(attributes).add(counted);
      if (admissible(recorded)) {
        histogramCells.cell(attributes).record(recorded);
        unsortedCells.cell(attributes).record(recorded);
      }
    }
  };
  const names = new Set(['c', 'h', 'h.unsorted']);
  run(0, 60);
  const first = comparable(await reader.collect(), names);
  expect(first).toEqual(comparable(await sdk.collect(), names));
  // Each side really saw points (an empty comparison proves nothing): the overflow series, the NaN-only one.
  const h = first['h'] as { points: { attributes: Attributes; value: { count: number } }[] };
  expect(h.points.map((p) => p.attributes)).toEqual([{ set: 'a', n: 1 }, { set: 'b', n: 1 }, { set: 'c', n: 1 }, { set: 'n' }, { 'otel.metric.overflow': true }]);
  expect(h.points[3]!.value).toMatchObject({ count: 0, min: undefined, max: undefined });

  // The second interval: only the sets that have a series of their own. The SDK's limit counts the sets
  // seen since the previous collection (an overflowed set may get a series of its own later, a set with a
  // series may overflow in a later interval), ours every set of the process's life; on these both agree.
  // The sums are folded per interval as the SDK folds them.
  run(60, 60 + 3 * values.length);
  expect(comparable(await reader.collect(), names)).toEqual(comparable(await sdk.collect(), names));
  await provider.shutdown();
  await sdk.shutdown();
});

/** Labels (valid, so the guards keep them as they are) and the attributes the recorder makes of them. */
function labelSets(spec: MetricSpec, count: number): { labels: Record<string, string | undefined>; attributes: Attributes }[] {
  return Array.from({ length: count }, (_, i) => {
    const labels: Record<string, string | undefined> = {};
    const attributes: Attributes = {};
    let stride = 1;
    for (const [label, allowed] of Object.entries(spec.labels)) {
      // Every combination in turn: the first label varies fastest; an optional one is sometimes left out.
      const optional = spec.attributes?.[label]?.optional === true;
      const choices = (allowed === ID_LABEL ? 15 : allowed === MODEL_LABEL ? 6 : allowed.length) + (optional ? 1 : 0);
      const pick = Math.floor(i / stride) % choices;
      stride *= choices;
      const value = optional && pick === choices - 1 ? undefined
        : allowed === ID_LABEL ? `id_${pick}` : allowed === MODEL_LABEL ? `org/model:${pick}` : allowed[pick]!;
      labels[label] = value;
      if (value !== undefined) attributes[spec.attributes?.[label]?.name ?? label] = value;
    }
    return { labels, attributes };
  });
}

it('the recorder equals the SDK instruments it replaced, for every counter and histogram it records and the HTTP server histogram', async () => {
  // The recorder as before: SDK instruments with the catalogue's views, counters seeded with their enumerated sets.
  const sdk = referenceSdk(buildViews());
  const observed = createTestTelemetry();
  const { telemetry } = observed;
  const recorded = RECORDED_METRIC_KEYS.filter((key) => METRICS[key].kind !== 'gauge' && key !== 'httpServerRequestDuration');
  const instruments = new Map<RecordedMetricKey, Counter | Histogram>();
  for (const key of recorded) {
    const spec: MetricSpec = METRICS[key];
    const options = { description: spec.description, unit: spec.unit };
    if (spec.kind === 'counter') {
      const counter = sdk.meter.createCounter(spec.otelName, options);
      for (const labels of enumeratedLabelSets(spec)) counter.add(0, labels);
      instruments.set(key, counter);
    } else instruments.set(key, sdk.meter.createHistogram(spec.otelName, options));
  }
  const http = METRICS.httpServerRequestDuration;
  const httpHistogram = sdk.meter.createHistogram(http.otelName, { description: http.description, unit: http.unit });

  /** Per metric, the attribute sets that have a series of their own (after the first collection). */
  let owned: Map<string, Set<string>> | undefined;
  const keyOf = (attributes: Attributes) => JSON.stringify(Object.entries(attributes).sort());
  const run = (from: number, to: number) => {
    for (const key of recorded) {
      const spec: MetricSpec = METRICS[key];
      // bun.process.exits has 2 x 15 x 15 sets to offer: 300 of them reach past its limit of 200, into the overflow series.
      // The second interval only has the sets with a series of their own (see the small-limit test).
      const sets = labelSets(spec, key === 'bunProcessExits' ? 450 : 40).filter((set) => owned?.get(spec.otelName)?.has(keyOf(set.attributes)) ?? true);
      const values = valuesFor(spec.buckets);
      for (let i = from; i < to; i++) {
        const { labels, attributes } = sets[(i * 13) % sets.length]!;
        const value = values[(i * 5) % values.length]!;
        if (spec.kind === 'counter') {
          const counted = Number.isNaN(value) && i % 3 ? 2 : value;
          (instruments.get(key) as Counter).add(counted, attributes);
          telemetry.add(key as CounterKey, counted, labels as never);
        } else {
          (instruments.get(key) as Histogram).record(value, attributes);
          telemetry.record(key as HistogramKey, value, labels as never);
        }
      }
    }
    // The HTTP server histogram, with the request's duration set by the clock.
    const now = vi.spyOn(performance, 'now');
    const routes = ['/api/v1/workflows/:id/executions/sync', undefined, '/api/v1/agents/:id/executions/sync', ''];
    const values = valuesFor(http.buckets);
    for (let i = from; i < to; i++) {
      now.mockReturnValue(1_000_000);
      const served = telemetry.startHttpServerRequest(i % 7 === 0 ? 'BREW' : 'POST', '/x', {}, i % 2 ? 'http' : 'https', '1.1');
      const startedAt = 1_000_000 - values[i % values.length]! * 1000;
      const status = [200, 404, 500, 503, 201][i % 5]!;
      const route = routes[i % routes.length];
      const finished = i % 9 !== 0;
      telemetry.endHttpServerRequest({ ...served, startedAt }, status, route, finished);
      const errorType = status >= 500 ? String(status) : finished ? undefined : '_OTHER';
      httpHistogram.record((1_000_000 - startedAt) / 1000, {
        'http.request.method': served.method, 'url.scheme': served.scheme, 'network.protocol.version': '1.1',
        ...(route !== undefined && { 'http.route': route }), 'http.response.status_code': status, ...(errorType !== undefined && { 'error.type': errorType }),
      });
    }
    now.mockRestore();
  };

  const names = new Set([...recorded.map((key) => METRICS[key].otelName), http.otelName]);
  run(0, 300);
  const first = comparable(await observed.collectMetrics(), names);
  expect(first).toEqual(comparable(await sdk.collect(), names));
  // Every metric was compared, the overflow series was reached, nothing failed.
  expect(Object.keys(first).sort()).toEqual([...names].sort());
  const exits = first[METRICS.bunProcessExits.otelName] as { points: { attributes: Attributes }[] };
  expect(exits.points).toHaveLength(METRICS.bunProcessExits.cardinalityLimit);
  expect(exits.points.at(-1)!.attributes).toEqual({ 'otel.metric.overflow': true });
  expect(observed.failures).toEqual([]);

  owned = new Map(Object.entries(first).map(([name, metric]) => [name, new Set((metric as { points: { attributes: Attributes }[] }).points.map((p) => keyOf(p.attributes)))]));
  run(300, 500);
  expect(comparable(await observed.collectMetrics(), names)).toEqual(comparable(await sdk.collect(), names));
  await observed.shutdown();
  await sdk.shutdown();
});

it('without cells, the recorder aggregates nothing and exports no counter or histogram', async () => {
  const reference = referenceSdk(buildViews());
  const telemetry = new Telemetry({ tracer: trace.getTracer('t'), meter: reference.meter });
  telemetry.add('workflowExecutionsStarted', 1, { trigger: 'api_sync' });
  telemetry.record('executionQueueWait', 1, { kind: 'workflow' });
  const { resourceMetrics } = await reference.collect();
  const names = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics.map((m) => m.descriptor.name));
  expect(names).not.toContain(METRICS.workflowExecutionsStarted.otelName);
  expect(names).not.toContain(METRICS.executionQueueWait.otelName);
  await reference.shutdown();
});
