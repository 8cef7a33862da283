/**
 * Switchyard / Pipeline Health: is telemetry getting from the engine to Prometheus and Tempo?
 * Answers: does the Collector accept what the engine sends, does it refuse, drop or fail to export
 * anything, are its exporter queues filling, are Prometheus and Tempo ingesting, does the engine's own
 * telemetry fail or drop spans, and are all scrape targets up.
 */
import type { Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import { x, type ExternalMetricName } from './external.ts';
// orZero: the Collector records failed sends and enqueue failures only once they happen (checked on 0.164
// at level normal), so a healthy pipeline would show "No data" where it should show 0.
import { counterRate, gauge, orZero, RATE_INTERVAL } from './promql.ts';
import { datasourceVariable, higherIsWorse, engineVariables, newDashboard, row, statPanel, timeseriesPanel } from './shared.ts';

export const UID = 'switchyard-pipeline-health';

function rate(name: ExternalMetricName, by: readonly string[], matchers = ''): string {
  const inner = `rate(${name}${matchers ? `{${matchers}}` : ''}[${RATE_INTERVAL}])`;
  return by.length === 0 ? `sum(${inner})` : `sum by (${by.join(', ')}) (${inner})`;
}

function agg(fn: 'sum' | 'max' | 'min', name: ExternalMetricName, by: readonly string[], matchers = ''): string {
  const sel = `${name}${matchers ? `{${matchers}}` : ''}`;
  return by.length === 0 ? `${fn}(${sel})` : `${fn} by (${by.join(', ')}) (${sel})`;
}

/** Prometheus's write endpoints: OTLP from the Collector, remote write from Tempo's metrics generator. */
const WRITE_HANDLERS = 'handler=~"/api/v1/otlp/v1/metrics|/api/v1/write"';

export function pipelineHealthDashboard(): Dashboard {
  return newDashboard(
    UID,
    'Switchyard / Pipeline Health',
    'The telemetry pipeline: Collector receivers, processors, exporters and queues; Prometheus and Tempo ingestion; the engine\'s own telemetry failures; scrape health.',
  )
    .variables([datasourceVariable(), ...engineVariables()])
    .withRow(row('Collector: receive'))
    .withPanel(timeseriesPanel({
      title: 'Spans accepted / refused by receiver',
      description: 'Spans the Collector\'s receivers pushed into the pipeline (accepted) or turned away (refused, e.g. by the memory limiter), per second. Any refused spans mean the engine had to retry or drop.',
      unit: 'cps', width: 12,
      queries: [
        { expr: rate(x('otelcol_receiver_accepted_spans_total'), ['receiver', 'transport']), legend: '{{receiver}}/{{transport}} accepted' },
        { expr: rate(x('otelcol_receiver_refused_spans_total'), ['receiver', 'transport']), legend: '{{receiver}}/{{transport}} refused' },
      ],
    }))
    .withPanel(timeseriesPanel({
      title: 'Metric points accepted / refused by receiver',
      description: 'Metric data points the Collector\'s receivers accepted or refused, per second.',
      unit: 'cps', width: 12,
      queries: [
        { expr: rate(x('otelcol_receiver_accepted_metric_points_total'), ['receiver', 'transport']), legend: '{{receiver}}/{{transport}} accepted' },
        { expr: rate(x('otelcol_receiver_refused_metric_points_total'), ['receiver', 'transport']), legend: '{{receiver}}/{{transport}} refused' },
      ],
    }))
    .withPanel(timeseriesPanel({
      title: 'Memory limiter items in / out',
      description: 'Items (spans, metric points) entering and leaving the Collector\'s memory_limiter, per second, by signal (the batch processor does not report these). Out below in means the limiter is refusing data.',
      unit: 'cps', width: 12,
      queries: [
        { expr: rate(x('otelcol_processor_incoming_items_total'), ['processor', 'otel_signal']), legend: '{{processor}} {{otel_signal}} in' },
        { expr: rate(x('otelcol_processor_outgoing_items_total'), ['processor', 'otel_signal']), legend: '{{processor}} {{otel_signal}} out' },
      ],
    }))
    .withPanel(timeseriesPanel({
      title: 'Batch sends by trigger',
      description: 'Batches the batch processor sent per second, by what triggered the send: the timeout (low traffic) or the batch size (high traffic).',
      unit: 'ops', width: 12,
      queries: [
        { expr: rate(x('otelcol_processor_batch_timeout_trigger_send_total'), ['processor']), legend: '{{processor}} timeout' },
        { expr: orZero(rate(x('otelcol_processor_batch_batch_size_trigger_send_total'), ['processor']), rate(x('otelcol_processor_batch_timeout_trigger_send_total'), ['processor'])), legend: '{{processor}} size' },
      ],
    }))
    .withRow(row('Collector: export'))
    .withPanel(timeseriesPanel({
      title: 'Spans sent / failed by exporter',
      description: 'Spans each Collector exporter delivered (sent) or failed to deliver after retries (send failed), per second.',
      unit: 'cps', width: 12,
      queries: [
        { expr: rate(x('otelcol_exporter_sent_spans_total'), ['exporter']), legend: '{{exporter}} sent' },
        { expr: orZero(rate(x('otelcol_exporter_send_failed_spans_total'), ['exporter']), rate(x('otelcol_exporter_sent_spans_total'), ['exporter'])), legend: '{{exporter}} failed' },
      ],
    }))
    .withPanel(timeseriesPanel({
      title: 'Metric points sent / failed by exporter',
      description: 'Metric data points each Collector exporter delivered or failed to deliver, per second.',
      unit: 'cps', width: 12,
      queries: [
        { expr: rate(x('otelcol_exporter_sent_metric_points_total'), ['exporter']), legend: '{{exporter}} sent' },
        { expr: orZero(rate(x('otelcol_exporter_send_failed_metric_points_total'), ['exporter']), rate(x('otelcol_exporter_sent_metric_points_total'), ['exporter'])), legend: '{{exporter}} failed' },
      ],
    }))
    .withPanel(timeseriesPanel({
      title: 'Dropped at enqueue by exporter',
      description: 'Spans and metric points that could not enter an exporter\'s sending queue (queue full), per second: data lost by the Collector.',
      unit: 'cps', width: 8,
      queries: [
        { expr: orZero(rate(x('otelcol_exporter_enqueue_failed_spans_total'), ['exporter']), rate(x('otelcol_exporter_sent_spans_total'), ['exporter'])), legend: '{{exporter}} spans' },
        { expr: orZero(rate(x('otelcol_exporter_enqueue_failed_metric_points_total'), ['exporter']), rate(x('otelcol_exporter_sent_metric_points_total'), ['exporter'])), legend: '{{exporter}} metric points' },
      ],
    }))
    .withPanel(timeseriesPanel({
      title: 'Exporter queue size / capacity',
      description: 'Batches waiting in each exporter\'s persistent sending queue, against the queue\'s capacity. A queue that grows toward capacity means the backend is slow or down.',
      unit: 'short', width: 8, min: 0,
      queries: [
        { expr: agg('max', x('otelcol_exporter_queue_size'), ['exporter']), legend: '{{exporter}} size' },
        { expr: agg('max', x('otelcol_exporter_queue_capacity'), ['exporter']), legend: '{{exporter}} capacity' },
      ],
    }))
    .withPanel(statPanel({
      title: 'Exporter queue usage',
      description: 'Fullest exporter sending queue as a share of its capacity. Orange from 50%, red from 80%: past 100% new data is dropped.',
      unit: 'percentunit', width: 8, min: 0, max: 1, thresholds: higherIsWorse(0.5, 0.8),
      queries: [{
        expr: `max(${agg('max', x('otelcol_exporter_queue_size'), ['exporter'])} / ${agg('max', x('otelcol_exporter_queue_capacity'), ['exporter'])})`,
        legend: 'queue usage',
      }],
    }))
    .withRow(row('Prometheus and Tempo ingestion'))
    .withPanel(timeseriesPanel({
      title: 'Prometheus samples appended',
      description: 'Samples appended to Prometheus\'s head block per second, by sample type, and out-of-order samples accepted inside the out-of-order window (late OTLP batches from the Collector\'s retry queue).',
      unit: 'cps', width: 8,
      queries: [
        { expr: rate(x('prometheus_tsdb_head_samples_appended_total'), ['type']), legend: '{{type}}' },
        { expr: rate(x('prometheus_tsdb_head_out_of_order_samples_appended_total'), ['type']), legend: '{{type}} out of order' },
      ],
    }))
    .withPanel(timeseriesPanel({
      title: 'Prometheus head series',
      description: 'Series in Prometheus\'s head block. Series that climb without bound mean a label exploded (the engine guards its labels; a new source may not).',
      unit: 'short', width: 8, min: 0,
      queries: [{ expr: agg('sum', x('prometheus_tsdb_head_series'), []), legend: 'head series' }],
    }))
    .withPanel(timeseriesPanel({
      title: 'Prometheus exemplars appended',
      description: 'Exemplars (trace ids attached to histogram samples) stored per second. Zero while latency panels have data means exemplar links to Tempo will be missing.',
      unit: 'cps', width: 8,
      queries: [{ expr: rate(x('prometheus_tsdb_exemplar_exemplars_appended_total'), []), legend: 'exemplars' }],
    }))
    .withPanel(timeseriesPanel({
      title: 'Prometheus write requests by endpoint and code',
      description: 'Requests per second to Prometheus\'s OTLP receiver (from the Collector) and remote-write receiver (from Tempo\'s metrics generator), by status code. Codes other than 2xx mean rejected writes.',
      unit: 'reqps', width: 8,
      queries: [{ expr: rate(x('prometheus_http_requests_total'), ['handler', 'code'], WRITE_HANDLERS), legend: '{{handler}} {{code}}' }],
    }))
    .withPanel(timeseriesPanel({
      title: 'Tempo spans received',
      description: 'Spans Tempo\'s distributor received per second (per tenant), and spans its metrics generator processed into span metrics and service graphs.',
      unit: 'cps', width: 8,
      queries: [
        { expr: rate(x('tempo_distributor_spans_received_total'), ['tenant']), legend: 'distributor {{tenant}}' },
        { expr: rate(x('tempo_metrics_generator_spans_received_total'), ['tenant']), legend: 'metrics generator {{tenant}}' },
      ],
    }))
    .withPanel(timeseriesPanel({
      title: 'Tempo bytes received',
      description: 'Bytes of trace data Tempo\'s distributor received per second, per tenant.',
      unit: 'Bps', width: 8,
      queries: [{ expr: rate(x('tempo_distributor_bytes_received_total'), ['tenant']), legend: '{{tenant}}' }],
    }))
    .withPanel(timeseriesPanel({
      title: 'Tempo live traces',
      description: 'Traces Tempo\'s ingester holds in memory, waiting for more spans before it cuts them to a block, per tenant. It follows the span rate; a climb without traffic means blocks are not being cut.',
      unit: 'short', width: 8, min: 0,
      queries: [{ expr: agg('sum', x('tempo_ingester_live_traces'), ['tenant']), legend: '{{tenant}}' }],
    }))
    .withPanel(timeseriesPanel({
      title: 'Tempo generated series',
      description: 'Active series in the registry of Tempo\'s metrics generator (span metrics and service graphs it remote-writes to Prometheus), per tenant.',
      unit: 'short', width: 8, min: 0,
      queries: [{ expr: agg('sum', x('tempo_metrics_generator_registry_active_series'), ['tenant']), legend: '{{tenant}}' }],
    }))
    .withPanel(timeseriesPanel({
      title: 'Prometheus rule evaluation failures',
      description: 'Recording and alerting rule evaluations that failed per second, by rule group. Failing alert rules cannot page.',
      unit: 'ops', width: 8,
      queries: [{ expr: rate(x('prometheus_rule_evaluation_failures_total'), ['rule_group']), legend: '{{rule_group}}' }],
    }))
    .withRow(row('Engine telemetry and scrape health'))
    .withPanel(timeseriesPanel({
      title: 'Engine telemetry failures by stage',
      description: 'Failures of the engine\'s own telemetry (export, instrument, gauge callback, span, log) per second, caught so they change no execution outcome. Export failures mean the Collector is unreachable or refusing.',
      unit: 'ops', width: 12, stacked: true,
      queries: [{ expr: counterRate('telemetryFailures', ['stage']), legend: '{{stage}}' }],
    }))
    .withPanel(timeseriesPanel({
      title: 'Engine spans exported / dropped / lost',
      description: 'Spans per second the engine\'s batch span processor exported, dropped because its queue was full (the Collector too slow or away for longer than the queue lasts), or lost in an export that failed after retries. Dropped and lost spans leave holes in traces; metrics are cumulative and lose nothing.',
      unit: 'cps', width: 12,
      queries: [
        { expr: counterRate('spanProcessorSpansProcessed', [], { error_type: '=""' }), legend: 'exported' },
        { expr: orZero(counterRate('spanProcessorSpansProcessed', [], { error_type: '="queue_full"' }), counterRate('spanProcessorSpansProcessed')), legend: 'dropped (queue full)' },
        { expr: orZero(counterRate('spanProcessorSpansProcessed', [], { error_type: '!~"|queue_full"' }), counterRate('spanProcessorSpansProcessed')), legend: 'lost (export failed)' },
      ],
    }))
    .withPanel(timeseriesPanel({
      title: 'Engine span queue size / capacity',
      description: 'Spans waiting in each engine\'s batch span processor queue for export, against its capacity. At capacity, new spans are dropped (bounded memory, never hoarding).',
      unit: 'short', width: 12, min: 0,
      queries: [
        { expr: gauge('spanProcessorQueueSize', 'max', ['instance']), legend: '{{instance}} queued' },
        { expr: gauge('spanProcessorQueueCapacity', 'max', ['instance']), legend: '{{instance}} capacity' },
      ],
    }))
    .withPanel(timeseriesPanel({
      title: 'Scrape targets up',
      description: 'Whether Prometheus could scrape each target of the stack (1 up, 0 down): Collector, Tempo, Alertmanager, Prometheus itself, the pager sink. The engine pushes over OTLP and has no scrape target.',
      unit: 'short', width: 12, min: 0, max: 1,
      queries: [{ expr: agg('min', x('up'), ['job', 'instance']), legend: '{{job}} {{instance}}' }],
    }))
    .build();
}
