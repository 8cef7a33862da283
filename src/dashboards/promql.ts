/**
 * PromQL built from the telemetry catalogue.
 *
 * Every engine metric name and every label a dashboard groups or filters by comes from
 * src/telemetry/catalog.ts through the types below, so renaming a metric or a label there breaks the
 * typecheck of the dashboards instead of leaving a panel that says "No data".
 *
 * The shapes here fix the mistakes the original monitoring plan's queries made:
 * - `histogram_quantile(q, rate(x_bucket[5m])) by (l)` is not PromQL; the grouping goes inside, on a
 *   `sum by (le, l)` of the bucket rates (which also merges engine instances and other labels);
 * - `rate(a[5m]) / rate(b[5m])` between series with different label sets (timeouts carry tool_id,
 *   the latency count carries tool_id and outcome) matches nothing; both sides are summed by the same
 *   labels first.
 */
import { METRICS, type MetricKey } from '../telemetry/catalog.ts';

type Spec<K extends MetricKey> = (typeof METRICS)[K];

export type HistogramKey = { [K in MetricKey]: Spec<K>['kind'] extends 'histogram' ? K : never }[MetricKey];
export type CounterKey = { [K in MetricKey]: Spec<K>['kind'] extends 'counter' ? K : never }[MetricKey];
export type GaugeKey = { [K in MetricKey]: Spec<K>['kind'] extends 'gauge' ? K : never }[MetricKey];

/** Labels Prometheus puts on every engine series from promoted resource attributes. */
export type ResourceLabel = 'job' | 'instance' | 'service_name' | 'service_namespace' | 'service_version';

/** Labels a query may use on metric K: the catalogue's labels plus the promoted resource labels. */
export type LabelOf<K extends MetricKey> = (keyof Spec<K>['labels'] & string) | ResourceLabel;

/** Label matchers, as `label: '=~"$var"'` (operator and quoted value). */
export type Matchers<K extends MetricKey> = Partial<Record<LabelOf<K>, string>>;

/** The rate window every query uses: Grafana sizes it from the scrape interval and the step. */
export const RATE_INTERVAL = '$__rate_interval';

/** Engine series are filtered by the dashboard's job and instance variables. */
const ENGINE_MATCHERS = ['job=~"$job"', 'instance=~"$instance"'];

/** The Prometheus name of a catalogue metric: `m('toolExecuteSeconds')` -> 'runtime_tool_execute_seconds'. */
export function m<K extends MetricKey>(key: K): Spec<K>['name'] {
  return METRICS[key].name;
}

/** The `_bucket`, `_sum` or `_count` series of a catalogue histogram. */
export function series<K extends HistogramKey>(key: K, part: 'bucket' | 'sum' | 'count'): string {
  return `${m(key)}_${part}`;
}

function selector<K extends MetricKey>(name: string, where: Matchers<K> | undefined): string {
  const extra = Object.entries(where ?? {}).map(([label, rhs]) => `${label}${rhs as string}`);
  return `${name}{${[...ENGINE_MATCHERS, ...extra].join(', ')}}`;
}

function sumBy(by: readonly string[], inner: string): string {
  return by.length === 0 ? `sum(${inner})` : `sum by (${by.join(', ')}) (${inner})`;
}

/** Per-second rate of a catalogue counter, summed by labels. */
export function counterRate<K extends CounterKey>(key: K, by: readonly LabelOf<K>[] = [], where?: Matchers<K>): string {
  return sumBy(by, `rate(${selector(m(key), where)}[${RATE_INTERVAL}])`);
}

/** Increase of a catalogue counter over one rate window, summed by labels (for rare events). */
export function counterIncrease<K extends CounterKey>(key: K, by: readonly LabelOf<K>[] = [], where?: Matchers<K>): string {
  return sumBy(by, `increase(${selector(m(key), where)}[${RATE_INTERVAL}])`);
}

/** Per-second rate of observations (`_count`) or of their total (`_sum`) of a catalogue histogram. */
export function histogramRate<K extends HistogramKey>(
  key: K, part: 'count' | 'sum', by: readonly LabelOf<K>[] = [], where?: Matchers<K>,
): string {
  return sumBy(by, `rate(${selector(series(key, part), where)}[${RATE_INTERVAL}])`);
}

/** `histogram_quantile` of a catalogue histogram, grouped by labels (le is added). */
export function quantile<K extends HistogramKey>(q: number, key: K, by: readonly LabelOf<K>[] = [], where?: Matchers<K>): string {
  const inner = `rate(${selector(series(key, 'bucket'), where)}[${RATE_INTERVAL}])`;
  return `histogram_quantile(${q}, ${sumBy(['le', ...by], inner)})`;
}

/** Average of a histogram over the window: sum of values / number of observations. */
export function histogramMean<K extends HistogramKey>(key: K, by: readonly LabelOf<K>[] = [], where?: Matchers<K>): string {
  return `${histogramRate(key, 'sum', by, where)} / ${histogramRate(key, 'count', by, where)}`;
}

/** A catalogue gauge aggregated by labels. */
export function gauge<K extends GaugeKey>(
  key: K, agg: 'sum' | 'max' | 'min', by: readonly LabelOf<K>[] = [], where?: Matchers<K>,
): string {
  const inner = selector(m(key), where);
  return by.length === 0 ? `${agg}(${inner})` : `${agg} by (${by.join(', ')}) (${inner})`;
}

/** `a / b`, dropping points where b is 0 (so an idle period shows a gap, not NaN or +Inf). */
export function ratio(numerator: string, denominator: string): string {
  return `(${numerator}) / ((${denominator}) > 0)`;
}

/**
 * `expr`, or 0 for every series of `like` that `expr` lacks. Counters of rare events (errors,
 * timeouts, failed sends) have no series until the first event, so a healthy system would show
 * "No data"; `like` is an always-present query grouped by the same labels (e.g. calls by tool).
 */
export function orZero(expr: string, like: string): string {
  return `(${expr}) or (${like} * 0)`;
}

/** `label_values(metric{job=~"$job"}, label)` for a template variable, from a catalogue metric. */
export function labelValues<K extends MetricKey>(key: K, label: LabelOf<K>, filtered = true): string {
  const name = METRICS[key].kind === 'histogram' ? `${m(key)}_count` : m(key);
  const sel = filtered && label !== 'job' ? `${name}{job=~"$job"}` : name;
  return `label_values(${sel}, ${label})`;
}
