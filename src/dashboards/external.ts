/**
 * Metrics of the stack's own components that the Pipeline Health dashboard may use: the allowlist
 * the dashboard lint checks against, next to the telemetry catalogue.
 *
 * Names are those exposed at the pinned versions, checked on the real binaries:
 * - Collector 0.165 with collector/otelcol.yaml (level normal, pull reader with type and unit suffixes),
 *   read from its :8888/metrics. Failed sends, enqueue failures and size-triggered batch sends have no
 *   series until the first event: the dashboard zero-fills them from their always-present siblings.
 *   The batch processor reports no incoming/outgoing items (only memory_limiter does).
 * - Span metrics of the Collector's spanmetrics connector, pushed over OTLP to Prometheus (labels
 *   span_name, span_kind, status_code, gen_ai_tool_name, gen_ai_agent_name, gen_ai_request_model and the
 *   spans' resource; exemplars carry trace_id).
 * - Prometheus 3.16 /metrics (OTLP and remote-write handlers are /api/v1/otlp/v1/metrics, /api/v1/write).
 * - Tempo 2.8 (the compose image; monolithic): from its documentation and source (distributor, ingester,
 *   metrics generator). Only `docker compose up` runs Tempo: the stack tests skip these queries and say so.
 */
export type ExternalKind = 'counter' | 'gauge' | 'histogram';

export interface ExternalMetric {
  readonly component: 'otelcol' | 'spanmetrics' | 'prometheus' | 'tempo' | 'alertmanager';
  readonly kind: ExternalKind;
}

function c(component: ExternalMetric['component']): ExternalMetric {
  return { component, kind: 'counter' };
}
function g(component: ExternalMetric['component']): ExternalMetric {
  return { component, kind: 'gauge' };
}

export const EXTERNAL_METRICS = {
  // Scrape health, synthesized by Prometheus for every target.
  up: g('prometheus'),

  // Span metrics (Collector spanmetrics connector): RED per service, span name, kind, status and tool.
  traces_span_metrics_calls_total: c('spanmetrics'),
  traces_span_metrics_duration_seconds: { component: 'spanmetrics', kind: 'histogram' },

  // OpenTelemetry Collector 0.165: receiverhelper, exporterhelper, memory_limiter, batch.
  otelcol_receiver_accepted_spans_total: c('otelcol'),
  otelcol_receiver_refused_spans_total: c('otelcol'),
  otelcol_receiver_accepted_metric_points_total: c('otelcol'),
  otelcol_receiver_refused_metric_points_total: c('otelcol'),
  otelcol_receiver_failed_spans_total: c('otelcol'),
  otelcol_receiver_failed_metric_points_total: c('otelcol'),
  otelcol_exporter_sent_spans_total: c('otelcol'),
  otelcol_exporter_send_failed_spans_total: c('otelcol'),
  otelcol_exporter_sent_metric_points_total: c('otelcol'),
  otelcol_exporter_send_failed_metric_points_total: c('otelcol'),
  otelcol_exporter_enqueue_failed_spans_total: c('otelcol'),
  otelcol_exporter_enqueue_failed_metric_points_total: c('otelcol'),
  otelcol_exporter_queue_size: g('otelcol'),
  otelcol_exporter_queue_capacity: g('otelcol'),
  otelcol_processor_incoming_items_total: c('otelcol'),
  otelcol_processor_outgoing_items_total: c('otelcol'),
  otelcol_processor_batch_timeout_trigger_send_total: c('otelcol'),
  otelcol_processor_batch_batch_size_trigger_send_total: c('otelcol'),

  // Prometheus 3.16: TSDB head, exemplar storage, OTLP and remote-write receivers.
  prometheus_tsdb_head_samples_appended_total: c('prometheus'),
  prometheus_tsdb_head_out_of_order_samples_appended_total: c('prometheus'),
  prometheus_tsdb_head_series: g('prometheus'),
  prometheus_tsdb_exemplar_exemplars_appended_total: c('prometheus'),
  prometheus_http_requests_total: c('prometheus'),
  prometheus_rule_evaluation_failures_total: c('prometheus'),

  // Tempo 2.8 (compose only): distributor, ingester, metrics generator (service graphs).
  tempo_distributor_spans_received_total: c('tempo'),
  tempo_distributor_bytes_received_total: c('tempo'),
  tempo_ingester_live_traces: g('tempo'),
  tempo_metrics_generator_spans_received_total: c('tempo'),
  tempo_metrics_generator_registry_active_series: g('tempo'),
} as const satisfies Record<string, ExternalMetric>;

export type ExternalMetricName = keyof typeof EXTERNAL_METRICS;

/** An external metric name, checked against the allowlist by the typecheck. */
export function x<N extends ExternalMetricName>(name: N): N {
  return name;
}

/** Series names a query may use for an external metric (histograms expose _bucket/_sum/_count). */
export function externalSeriesNames(): string[] {
  return Object.entries(EXTERNAL_METRICS).flatMap(([name, spec]) =>
    (spec as ExternalMetric).kind === 'histogram' ? [`${name}_bucket`, `${name}_sum`, `${name}_count`] : [name],
  );
}
