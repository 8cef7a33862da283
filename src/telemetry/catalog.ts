/**
 * The telemetry contract: every metric and span Switchyard emits.
 *
 * Instruments and views (telemetry/sdk.ts, telemetry/recorder.ts), dashboards (src/dashboards) and the
 * tests of alerts and the stack are built from or checked against this file, so a rename breaks the
 * build rather than a dashboard.
 *
 * `name` is the name as it appears in Prometheus after OTLP translation; `otelName` + `unit` is what the
 * SDK exports. Prometheus (UnderscoreEscapingWithSuffixes) turns dots into underscores, appends the unit
 * suffix (s -> _seconds, By -> _bytes; units in braces are dropped) and `_total` to counters; the
 * catalogue test checks that translation for every entry, the stack test checks it against a real
 * Prometheus.
 */

import {
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE,
  ATTR_NETWORK_PROTOCOL_VERSION,
  ATTR_URL_SCHEME,
  METRIC_HTTP_SERVER_REQUEST_DURATION,
} from '@opentelemetry/semantic-conventions';
import {
  ATTR_ERROR_TYPE,
  ATTR_GEN_AI_AGENT_NAME,
  ATTR_GEN_AI_OPERATION_NAME,
  ATTR_GEN_AI_PROVIDER_NAME,
  ATTR_GEN_AI_REQUEST_MODEL,
  ATTR_GEN_AI_RESPONSE_MODEL,
  ATTR_GEN_AI_TOKEN_TYPE,
  GEN_AI_OPERATION_NAME_VALUE_CHAT,
  GEN_AI_PROVIDER_NAME_VALUE_OPENAI,
  GEN_AI_TOKEN_TYPE_VALUE_INPUT,
  GEN_AI_TOKEN_TYPE_VALUE_OUTPUT,
  METRIC_GEN_AI_CLIENT_OPERATION_DURATION,
  METRIC_GEN_AI_CLIENT_TOKEN_USAGE,
} from '@opentelemetry/semantic-conventions/incubating';
import {
  AGENT_OUTCOMES,
  EXECUTION_KINDS,
  LIVE_STATUSES,
  TASK_OUTCOMES,
  TASK_TYPES,
  TERMINAL_STATUSES,
  TOOL_ERROR_KINDS,
  TOOL_OUTCOMES,
  TRIGGERS,
} from '../domain.ts';

/** A label that carries a definition id (tool, workflow, agent): guarded by pattern and folded beyond a limit. */
export const ID_LABEL = 'id' as const;
/**
 * A label that carries a model name: like an id, but model names have `:` and `/` (llama3:8b, org/model,
 * accounts/x/models/y) and run longer; guarded by its own pattern and folded beyond the same limit.
 */
export const MODEL_LABEL = 'model' as const;
export type LabelSpec = typeof ID_LABEL | typeof MODEL_LABEL | readonly string[];

export type MetricKind = 'counter' | 'histogram' | 'gauge';

export interface MetricSpec {
  readonly name: string;
  readonly otelName: string;
  readonly kind: MetricKind;
  readonly unit: string;
  readonly description: string;
  readonly labels: Readonly<Record<string, LabelSpec>>;
  readonly buckets?: readonly number[];
  /** Most distinct label sets the SDK keeps for this metric; beyond it, points go to the overflow series. */
  readonly cardinalityLimit: number;
  /**
   * Who makes the instrument: the engine's recorder from typed labels (absent), the telemetry pipeline itself
   * ('sdk': the OpenTelemetry SDK's self-observability metrics, under the SDK's names), or the recorder's HTTP server path ('http': attributes of the
   * conventions' own types, not guarded labels), declared here so that views (buckets, limits), dashboards
   * and tests know them too.
   */
  readonly source?: 'sdk' | 'http';
  /**
   * The name is the OpenTelemetry semantic conventions' (the registry's), with its unit and attributes: a
   * test checks it against @opentelemetry/semantic-conventions. Without it the metric is this engine's own.
   */
  readonly registry?: true;
  /**
   * The OpenTelemetry attribute behind a label, where it is not the label's own name: `labels` are keyed by
   * the Prometheus name (what dashboards and rules use), and Prometheus turns the attribute's dots into
   * underscores (gen_ai.token.type -> gen_ai_token_type). An `optional` attribute is left off a point when
   * its value is unknown (the semantic conventions' "conditionally required" and "recommended" ones, such
   * as error.type on a call that succeeded) rather than set to `none`.
   */
  readonly attributes?: Readonly<Record<string, AttributeSpec>>;
}

export interface AttributeSpec {
  readonly name: string;
  readonly optional?: true;
}

/** The Prometheus label an OpenTelemetry attribute becomes after OTLP translation (UnderscoreEscapingWithSuffixes). */
export function prometheusLabelOf(attribute: string): string {
  return attribute.replace(/[^a-zA-Z0-9_]/g, '_');
}

export const SYNC_OUTCOMES = ['success', 'failed', 'timed_out', 'canceled', 'timeout', 'error'] as const;
export const POLL_OUTCOMES = ['completed', 'timeout', 'error'] as const;
export const PROCESS_EXIT_STATUSES = ['exit', 'signal'] as const;
export const TELEMETRY_STAGES = ['export_traces', 'export_metrics', 'export_logs', 'instrument', 'gauge_callback', 'span', 'log'] as const;
export type TelemetryStage = (typeof TELEMETRY_STAGES)[number];

/** GenAI (semantic conventions, gen_ai.*): the operations, providers and token types the engine reports. */
export const GEN_AI_OPERATIONS = [GEN_AI_OPERATION_NAME_VALUE_CHAT] as const;
/**
 * `openai` for the OpenAI-compatible client (the conventions: set by the client's best knowledge, even when
 * the server behind the OpenAI API is another one); `switchyard.scripted` for the offline scripted model,
 * which is no registry provider.
 */
export const GEN_AI_PROVIDERS = [GEN_AI_PROVIDER_NAME_VALUE_OPENAI, 'switchyard.scripted'] as const;
export type GenAiProvider = (typeof GEN_AI_PROVIDERS)[number];
export const GEN_AI_TOKEN_TYPES = [GEN_AI_TOKEN_TYPE_VALUE_INPUT, GEN_AI_TOKEN_TYPE_VALUE_OUTPUT] as const;
export type GenAiTokenType = (typeof GEN_AI_TOKEN_TYPES)[number];

/** The semantic conventions' advisory boundaries for gen_ai.client.token.usage. */
export const GEN_AI_TOKEN_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864] as const;
/** The semantic conventions' advisory boundaries for gen_ai.client.operation.duration (seconds). */
export const GEN_AI_DURATION_BUCKETS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92] as const;
/** The semantic conventions' advisory boundaries for http.server.request.duration (seconds). */
export const HTTP_SERVER_DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10] as const;
/** Model turns and tool calls per agent run: up to the largest iteration bound (50) and beyond for tool calls. */
const PER_RUN = [1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 50, 100] as const;

/** Tool calls: up to the longest timeout a tool may have (an hour), so no call lands in +Inf. */
const SECONDS_TOOL = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600] as const;
const SECONDS_LONG = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300] as const;
/** Workflow runs: up to the longest workflow timeout (24 h), so no run lands in +Inf. */
const SECONDS_RUN = [...SECONDS_LONG, 600, 1800, 3600, 7200, 21600, 86400] as const;
/** Beyond the default output limit (10 MiB), so calls near the limit show. */
const BYTES = [100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000] as const;

// Limits: a handful of enum labels times up to ~100 folded ids keeps every metric well under these.
const SMALL = 200;
const LARGE = 2000;

/** Labels the SDK puts on its span processor metrics (semantic conventions: otel.component.type and .name). */
const SPAN_PROCESSOR_LABELS = { otel_component_type: ['batching_span_processor'], otel_component_name: ID_LABEL } as const;

function metric<const M extends MetricSpec>(spec: M): M {
  return spec;
}

/** Labels (and their attributes) of the agent loop metrics: which agent, and how its run ended. */
const AGENT_RUN = {
  labels: { gen_ai_agent_name: ID_LABEL, outcome: AGENT_OUTCOMES },
  attributes: { gen_ai_agent_name: { name: ATTR_GEN_AI_AGENT_NAME } },
} as const;

/** Labels (and their attributes) of the agents' token and cost counters: whose tokens, on which model. */
const AGENT_MODEL_USAGE = {
  labels: { gen_ai_agent_name: ID_LABEL, workflow_id: ID_LABEL, gen_ai_request_model: MODEL_LABEL, gen_ai_token_type: GEN_AI_TOKEN_TYPES },
  attributes: {
    gen_ai_agent_name: { name: ATTR_GEN_AI_AGENT_NAME }, gen_ai_request_model: { name: ATTR_GEN_AI_REQUEST_MODEL },
    gen_ai_token_type: { name: ATTR_GEN_AI_TOKEN_TYPE },
  },
} as const;

export const METRICS = {
  // --- Tool runtime -------------------------------------------------------------------------------
  toolExecuteSeconds: metric({
    name: 'runtime_tool_execute_seconds', otelName: 'runtime.tool.execute', kind: 'histogram', unit: 's',
    description: 'Wall time of one tool call, from spawn to parsed response, by tool and outcome.',
    labels: { tool_id: ID_LABEL, outcome: TOOL_OUTCOMES }, buckets: SECONDS_TOOL, cardinalityLimit: LARGE,
  }),
  toolSlotWait: metric({
    name: 'runtime_tool_slot_wait_seconds', otelName: 'runtime.tool.slot.wait', kind: 'histogram', unit: 's',
    description: 'Time a tool call waited for one of the engine\'s tool process slots (SWITCHYARD_MAX_TOOL_PROCESSES) before its process started, by tool; about 0 while the engine is below its bound.',
    labels: { tool_id: ID_LABEL }, buckets: SECONDS_TOOL, cardinalityLimit: SMALL,
  }),
  toolTimeout: metric({
    name: 'runtime_tool_timeout_seconds', otelName: 'runtime.tool.timeout', kind: 'gauge', unit: 's',
    description: 'The configured timeout of each tool: what SlowToolExecution compares its latency with.',
    labels: { tool_id: ID_LABEL }, cardinalityLimit: SMALL,
  }),
  toolErrors: metric({
    name: 'runtime_tool_errors_total', otelName: 'runtime.tool.errors', kind: 'counter', unit: '{error}',
    description: 'Tool calls that ended without a result, by tool and error kind (start, input, stdin, stdout, stderr, wait, parse, timeout, output_limit, tool, canceled, unknown); canceled calls are counted as canceled, the failure alerts leave them aside.',
    labels: { tool_id: ID_LABEL, error_kind: TOOL_ERROR_KINDS }, cardinalityLimit: LARGE,
  }),
  toolTimeouts: metric({
    name: 'runtime_tool_timeouts_total', otelName: 'runtime.tool.timeouts', kind: 'counter', unit: '{timeout}',
    description: 'Tool calls killed at their timeout.',
    labels: { tool_id: ID_LABEL }, cardinalityLimit: SMALL,
  }),
  bunProcessExits: metric({
    name: 'runtime_bun_process_exits_total', otelName: 'runtime.bun.process.exits', kind: 'counter', unit: '{exit}',
    description: 'Bun tool processes that ended, by how: exit code or signal.',
    labels: {
      status: PROCESS_EXIT_STATUSES,
      code: ID_LABEL,
      signal: ID_LABEL,
    },
    cardinalityLimit: SMALL,
  }),
  toolOutputBytes: metric({
    name: 'runtime_tool_output_bytes', otelName: 'runtime.tool.output', kind: 'histogram', unit: 'By',
    description: 'Bytes a tool wrote to stdout in one call.',
    labels: { tool_id: ID_LABEL }, buckets: BYTES, cardinalityLimit: SMALL,
  }),

  // --- HTTP execution API -------------------------------------------------------------------------
  httpExecStarted: metric({
    name: 'http_exec_started_total', otelName: 'http.exec.started', kind: 'counter', unit: '{execution}',
    description: 'Executions accepted asynchronously (202) by the HTTP API, by kind.',
    labels: { kind: EXECUTION_KINDS }, cardinalityLimit: SMALL,
  }),
  httpExecSyncLatency: metric({
    name: 'http_exec_sync_latency_seconds', otelName: 'http.exec.sync.latency', kind: 'histogram', unit: 's',
    description: 'Time to answer a synchronous execution request, by kind and outcome.',
    labels: { kind: EXECUTION_KINDS, outcome: SYNC_OUTCOMES }, buckets: SECONDS_LONG, cardinalityLimit: SMALL,
  }),
  httpExecTimeouts: metric({
    name: 'http_exec_timeouts_total', otelName: 'http.exec.timeouts', kind: 'counter', unit: '{timeout}',
    description: 'Synchronous execution requests answered 408 because the run outlived the wait.',
    labels: { kind: EXECUTION_KINDS }, cardinalityLimit: SMALL,
  }),
  httpExecErrors: metric({
    name: 'http_exec_errors_total', otelName: 'http.exec.errors', kind: 'counter', unit: '{error}',
    description: 'Execution API requests answered with an error status, by kind and HTTP status code.',
    labels: { kind: [...EXECUTION_KINDS, 'execution'], code: ID_LABEL }, cardinalityLimit: SMALL,
  }),
  // The semantic conventions' HTTP server metric, made by the http auto-instrumentation with the stable
  // conventions (OTEL_SEMCONV_STABILITY_OPT_IN=http, the engine's default; the status code is an int): every
  // request the express app answers (the health probes aside). http.route is the express route
  // template, absent for a request no route matched; error.type is the status code of a 5xx answer.
  httpServerRequestDuration: metric({
    name: 'http_server_request_duration_seconds', otelName: METRIC_HTTP_SERVER_REQUEST_DURATION, kind: 'histogram', unit: 's',
    description: 'Duration of HTTP server requests, by method, route and status code (http.server.request.duration of the semantic conventions).',
    labels: {
      http_request_method: ID_LABEL, http_route: ID_LABEL, http_response_status_code: ID_LABEL, url_scheme: ['http', 'https'],
      network_protocol_version: ID_LABEL, error_type: ID_LABEL,
    },
    attributes: {
      http_request_method: { name: ATTR_HTTP_REQUEST_METHOD }, http_route: { name: ATTR_HTTP_ROUTE, optional: true },
      http_response_status_code: { name: ATTR_HTTP_RESPONSE_STATUS_CODE }, url_scheme: { name: ATTR_URL_SCHEME },
      network_protocol_version: { name: ATTR_NETWORK_PROTOCOL_VERSION, optional: true }, error_type: { name: ATTR_ERROR_TYPE, optional: true },
    },
    buckets: HTTP_SERVER_DURATION_BUCKETS, cardinalityLimit: SMALL, source: 'http', registry: true,
  }),
  workflowSyncPolls: metric({
    name: 'workflow_sync_polls_total', otelName: 'workflow.sync.polls', kind: 'counter', unit: '{poll}',
    description: 'Wake-ups of synchronous waits (completion notices and fallback polls), by workflow and how the wait ended.',
    labels: { workflow_id: ID_LABEL, outcome: POLL_OUTCOMES }, cardinalityLimit: LARGE,
  }),
  workflowSyncPollDuration: metric({
    name: 'workflow_sync_poll_duration_seconds', otelName: 'workflow.sync.poll.duration', kind: 'histogram', unit: 's',
    description: 'Total time a synchronous request waited for its workflow to complete.',
    // Starts below the plan's 0.1 s: the wait is woken by the completion itself and answers in milliseconds.
    labels: { workflow_id: ID_LABEL }, buckets: SECONDS_LONG, cardinalityLimit: LARGE,
  }),

  // --- Execution lifecycle ------------------------------------------------------------------------
  workflowExecutionsStarted: metric({
    name: 'workflow_executions_started_total', otelName: 'workflow.executions.started', kind: 'counter', unit: '{execution}',
    description: 'Workflow executions that started running, by trigger.',
    labels: { trigger: TRIGGERS }, cardinalityLimit: SMALL,
  }),
  workflowExecutionsCompleted: metric({
    name: 'workflow_executions_completed_total', otelName: 'workflow.executions.completed', kind: 'counter', unit: '{execution}',
    description: 'Workflow executions that reached a terminal status, counted exactly once per run.',
    labels: { trigger: TRIGGERS, status: TERMINAL_STATUSES }, cardinalityLimit: SMALL,
  }),
  workflowExecutionsPaused: metric({
    name: 'workflow_executions_paused_total', otelName: 'workflow.executions.paused', kind: 'counter', unit: '{execution}',
    description: 'Workflow executions that paused at a pause task.',
    labels: { trigger: TRIGGERS }, cardinalityLimit: SMALL,
  }),
  workflowExecutionDuration: metric({
    name: 'workflow_execution_duration_seconds', otelName: 'workflow.execution.duration', kind: 'histogram', unit: 's',
    description: 'Duration of workflow executions from start to terminal status.',
    labels: { trigger: TRIGGERS, status: TERMINAL_STATUSES }, buckets: SECONDS_RUN, cardinalityLimit: SMALL,
  }),
  workflowTaskExecutions: metric({
    name: 'workflow_task_executions_total', otelName: 'workflow.task.executions', kind: 'counter', unit: '{task}',
    description: 'Tasks executed inside workflows, by task type, operation (the tool or agent id) and outcome.',
    labels: { task_type: TASK_TYPES, operation: ID_LABEL, outcome: TASK_OUTCOMES }, cardinalityLimit: LARGE,
  }),
  workflowTaskDuration: metric({
    name: 'workflow_task_duration_seconds', otelName: 'workflow.task.duration', kind: 'histogram', unit: 's',
    description: 'Duration of tasks inside workflows, by task type and outcome.',
    labels: { task_type: TASK_TYPES, outcome: TASK_OUTCOMES }, buckets: SECONDS_LONG, cardinalityLimit: SMALL,
  }),
  workflowExecutionsSwept: metric({
    name: 'workflow_executions_swept_total', otelName: 'workflow.executions.swept', kind: 'counter', unit: '{execution}',
    description: 'Executions whose heartbeat went stale (their engine died) and that the sweeper finalized as failed.',
    labels: { previous_status: LIVE_STATUSES }, cardinalityLimit: SMALL,
  }),
  executionQueueWait: metric({
    name: 'execution_queue_wait_seconds', otelName: 'execution.queue.wait', kind: 'histogram', unit: 's',
    description: 'Time from an execution being accepted to its first step starting.',
    labels: { kind: EXECUTION_KINDS }, buckets: SECONDS_LONG, cardinalityLimit: SMALL,
  }),
  executionsDeleted: metric({
    name: 'executions_retention_deleted_total', otelName: 'executions.retention.deleted', kind: 'counter', unit: '{execution}',
    description: 'Ended executions deleted from the store once older than the retention period (SWITCHYARD_RETENTION_DAYS), by the status they ended with.',
    labels: { status: TERMINAL_STATUSES }, cardinalityLimit: SMALL,
  }),
  executionsInFlight: metric({
    name: 'executions_in_flight', otelName: 'executions.in_flight', kind: 'gauge', unit: '{execution}',
    description: 'Executions this engine process is running now, read from its live registry.',
    labels: { kind: EXECUTION_KINDS, state: LIVE_STATUSES }, cardinalityLimit: SMALL,
  }),
  executionsOldestRunningAge: metric({
    name: 'executions_oldest_running_age_seconds', otelName: 'executions.oldest_running_age', kind: 'gauge', unit: 's',
    description: 'Age of the oldest execution this engine process is running (0 when idle).',
    labels: { kind: EXECUTION_KINDS }, cardinalityLimit: SMALL,
  }),
  executionsDeadlineUsed: metric({
    name: 'executions_deadline_used_ratio', otelName: 'executions.deadline_used', kind: 'gauge', unit: '1',
    description: "Of the executions this engine process is running, the largest share of its own timeout one has used (age / timeout; 0 when idle). Above 1 the engine failed to stop a run at its deadline.",
    labels: { kind: EXECUTION_KINDS }, cardinalityLimit: SMALL,
  }),
  // --- Process -----------------------------------------------------------------------------------
  // Names of the OpenTelemetry semantic conventions for Node.js runtime metrics. Sampled by a 10 ms
  // timer (perf_hooks.monitorEventLoopDelay), so an idle loop reads about 0.01 s; each export reports the
  // window since the previous one. Anything synchronous that holds the loop (a fork for a tool call, a
  // database lock wait) shows here, and delays every request the process serves.
  eventLoopDelayP50: metric({
    name: 'nodejs_eventloop_delay_p50_seconds', otelName: 'nodejs.eventloop.delay.p50', kind: 'gauge', unit: 's',
    description: 'Median event loop delay of the engine process since the previous export (includes the 10 ms sampling interval).',
    labels: {}, cardinalityLimit: SMALL, registry: true,
  }),
  eventLoopDelayP99: metric({
    name: 'nodejs_eventloop_delay_p99_seconds', otelName: 'nodejs.eventloop.delay.p99', kind: 'gauge', unit: 's',
    description: '99th percentile event loop delay of the engine process since the previous export (includes the 10 ms sampling interval).',
    labels: {}, cardinalityLimit: SMALL, registry: true,
  }),
  eventLoopDelayMax: metric({
    name: 'nodejs_eventloop_delay_max_seconds', otelName: 'nodejs.eventloop.delay.max', kind: 'gauge', unit: 's',
    description: 'Longest event loop delay of the engine process since the previous export: the worst stall a request could meet.',
    labels: {}, cardinalityLimit: SMALL, registry: true,
  }),
  // --- The OpenTelemetry SDK's own metrics (semantic conventions, otel.sdk.*) ---------------------------
  // Made by the SDK's BatchSpanProcessor (OTEL_NODE_EXPERIMENTAL_SDK_METRICS=true, the engine's default:
  // telemetry/sdk.ts). They are how a span that never reached the Collector is counted: the queue is bounded
  // (OTEL_BSP_MAX_QUEUE_SIZE), so an outage drops, not hoards.
  spanProcessorSpansProcessed: metric({
    name: 'otel_sdk_processor_span_processed_total', otelName: 'otel.sdk.processor.span.processed', kind: 'counter', unit: '{span}',
    description: "Spans the engine's batch span processor is done with: exported (no error_type), dropped because its queue was full (error_type=\"queue_full\"), or lost in a failed export (error_type names the error).",
    labels: { ...SPAN_PROCESSOR_LABELS, error_type: ID_LABEL },
    cardinalityLimit: SMALL, source: 'sdk', registry: true,
  }),
  spanProcessorQueueSize: metric({
    name: 'otel_sdk_processor_span_queue_size', otelName: 'otel.sdk.processor.span.queue.size', kind: 'gauge', unit: '{span}',
    description: "Spans waiting in the engine's batch span processor queue for export.",
    labels: SPAN_PROCESSOR_LABELS, cardinalityLimit: SMALL, source: 'sdk', registry: true,
  }),
  spanProcessorQueueCapacity: metric({
    name: 'otel_sdk_processor_span_queue_capacity', otelName: 'otel.sdk.processor.span.queue.capacity', kind: 'gauge', unit: '{span}',
    description: "Most spans the engine's batch span processor queue holds; beyond it new spans are dropped.",
    labels: SPAN_PROCESSOR_LABELS, cardinalityLimit: SMALL, source: 'sdk', registry: true,
  }),
  // --- Agents and models --------------------------------------------------------------------------
  // The GenAI client metrics exactly as the semantic conventions define them (names, kinds, units, attributes,
  // advisory buckets): GenAI-aware backends and dashboards expect that shape. One point per model call, of
  // every provider; attributes are the conventions' own (dotted names, Prometheus labels with underscores).
  genAiClientTokenUsage: metric({
    name: 'gen_ai_client_token_usage', otelName: METRIC_GEN_AI_CLIENT_TOKEN_USAGE, kind: 'histogram', unit: '{token}',
    description: 'Number of input and output tokens used, per model call (gen_ai.client.token.usage of the semantic conventions).',
    labels: {
      gen_ai_operation_name: GEN_AI_OPERATIONS, gen_ai_provider_name: GEN_AI_PROVIDERS, gen_ai_token_type: GEN_AI_TOKEN_TYPES,
      gen_ai_request_model: MODEL_LABEL, gen_ai_response_model: MODEL_LABEL,
    },
    attributes: {
      gen_ai_operation_name: { name: ATTR_GEN_AI_OPERATION_NAME }, gen_ai_provider_name: { name: ATTR_GEN_AI_PROVIDER_NAME },
      gen_ai_token_type: { name: ATTR_GEN_AI_TOKEN_TYPE }, gen_ai_request_model: { name: ATTR_GEN_AI_REQUEST_MODEL },
      gen_ai_response_model: { name: ATTR_GEN_AI_RESPONSE_MODEL, optional: true },
    },
    buckets: GEN_AI_TOKEN_BUCKETS, cardinalityLimit: LARGE, registry: true,
  }),
  genAiClientOperationDuration: metric({
    name: 'gen_ai_client_operation_duration_seconds', otelName: METRIC_GEN_AI_CLIENT_OPERATION_DURATION, kind: 'histogram', unit: 's',
    description: 'Duration of one model call, failed ones included with error.type (gen_ai.client.operation.duration of the semantic conventions).',
    labels: {
      gen_ai_operation_name: GEN_AI_OPERATIONS, gen_ai_provider_name: GEN_AI_PROVIDERS,
      gen_ai_request_model: MODEL_LABEL, gen_ai_response_model: MODEL_LABEL, error_type: ID_LABEL,
    },
    attributes: {
      gen_ai_operation_name: { name: ATTR_GEN_AI_OPERATION_NAME }, gen_ai_provider_name: { name: ATTR_GEN_AI_PROVIDER_NAME },
      gen_ai_request_model: { name: ATTR_GEN_AI_REQUEST_MODEL }, gen_ai_response_model: { name: ATTR_GEN_AI_RESPONSE_MODEL, optional: true },
      error_type: { name: ATTR_ERROR_TYPE, optional: true },
    },
    buckets: GEN_AI_DURATION_BUCKETS, cardinalityLimit: LARGE, registry: true,
  }),
  // The agent loop, by agent (gen_ai.agent.name: the agent's id). Not in the semantic conventions' package yet.
  agentRunModelTurns: metric({
    name: 'agent_run_model_turns', otelName: 'agent.run.model_turns', kind: 'histogram', unit: '{turn}',
    description: 'Model calls one agent run made (its loop iterations), by agent and how the run ended.',
    ...AGENT_RUN,
    buckets: PER_RUN, cardinalityLimit: SMALL,
  }),
  agentRunToolCalls: metric({
    name: 'agent_run_tool_calls', otelName: 'agent.run.tool_calls', kind: 'histogram', unit: '{call}',
    description: 'Tool calls the model asked for in one agent run, by agent and how the run ended.',
    ...AGENT_RUN,
    buckets: PER_RUN, cardinalityLimit: SMALL,
  }),
  agentRuns: metric({
    name: 'agent_runs_total', otelName: 'agent.runs', kind: 'counter', unit: '{run}',
    description: 'Agent runs that ended, by agent and outcome (final_answer, iteration_limit, model_error, tool_error, canceled).',
    ...AGENT_RUN,
    cardinalityLimit: SMALL,
  }),
  // Cost as a counter the engine adds to at each model call (tokens x the price table's price), not a
  // recording rule: the conventions' token histogram has no agent or workflow attribute (and must not grow
  // one), so only the engine knows whose tokens they were; and the cost of a call is fixed at the price in
  // force when it was made, where a rule multiplying by today's prices would rewrite history. A model
  // with no price adds nothing: no series, never a guessed cost. Tokens go to their own counter by the same
  // labels, so tokens by agent and workflow, and the tokens no price covers, can be read too.
  agentModelTokens: metric({
    name: 'agent_model_tokens_total', otelName: 'agent.model.tokens', kind: 'counter', unit: '{token}',
    description: 'Tokens used by model calls, by agent, workflow (none for an agent run on its own), requested model and token type.',
    ...AGENT_MODEL_USAGE, cardinalityLimit: LARGE,
  }),
  agentModelCost: metric({
    name: 'agent_model_cost_usd_total', otelName: 'agent.model.cost.usd', kind: 'counter', unit: '{USD}',
    description: "Cost of model calls in US dollars (tokens x the project's price table), by agent, workflow, requested model and token type; models without a price are not counted.",
    ...AGENT_MODEL_USAGE, cardinalityLimit: LARGE,
  }),
  // The hourly budget of model spending (prices.yaml `budget.usd_per_hour`), exported as it is configured:
  // ModelCostBudgetBurn compares each job's spending with it, dashboards draw it. A project without a budget
  // exports no series, and the alert has nothing to compare with: no budget, no alert.
  agentModelBudget: metric({
    name: 'agent_model_budget_usd_per_hour', otelName: 'agent.model.budget.usd_per_hour', kind: 'gauge', unit: '{USD}',
    description: "The hourly budget for model spending in US dollars (the project's prices.yaml, budget.usd_per_hour); no series without a budget.",
    labels: {}, cardinalityLimit: SMALL,
  }),
  telemetryFailures: metric({
    name: 'telemetry_failures_total', otelName: 'telemetry.failures', kind: 'counter', unit: '{failure}',
    description: "Telemetry's own failures (export, instrument, callback), caught so they change no outcome.",
    labels: { stage: TELEMETRY_STAGES }, cardinalityLimit: SMALL,
  }),
} as const;

export type MetricKey = keyof typeof METRICS;
export const METRIC_KEYS = Object.keys(METRICS) as MetricKey[];
/** The metrics the engine's recorder makes (every key but the SDK's own). */
export type RecordedMetricKey = { [K in MetricKey]: (typeof METRICS)[K] extends { source: 'sdk' } ? never : K }[MetricKey];
export const RECORDED_METRIC_KEYS = METRIC_KEYS.filter((key): key is RecordedMetricKey => !('source' in METRICS[key]));
export const SDK_METRIC_KEYS = METRIC_KEYS.filter((key) => (METRICS[key] as MetricSpec).source === 'sdk');

/** Label values accepted for a metric: enum labels take their union, id labels any string (guarded at run time). */
type LabelValue<S> = S extends readonly (infer V)[] ? V : string;
type Labels<K extends MetricKey> = (typeof METRICS)[K]['labels'];
/** Labels whose attribute is optional: callers may leave them out (undefined), and the point goes without them. */
type OptionalLabel<K extends MetricKey> = (typeof METRICS)[K] extends { attributes: infer A }
  ? { [L in keyof A]: A[L] extends { optional: true } ? L : never }[keyof A]
  : never;
export type LabelsOf<K extends MetricKey> = {
  [L in Exclude<keyof Labels<K>, OptionalLabel<K>>]: LabelValue<Labels<K>[L]>;
} & {
  [L in Extract<keyof Labels<K>, OptionalLabel<K>>]?: LabelValue<Labels<K>[L]> | undefined;
};

/**
 * A span the engine makes: its name, and every attribute it may carry (and its events' attributes). Names are
 * namespaced: the semantic conventions' registry name where one exists (gen_ai.*, process.exit.code,
 * error.type), `switchyard.*` for the engine's own. test/telemetry/span-contract.test.ts checks the spans the
 * engine really emits against these lists, and the registry names against @opentelemetry/semantic-conventions.
 */
export interface SpanSpec {
  readonly name: string;
  readonly description: string;
  readonly attributes: readonly string[];
  /** Events by name, with their attributes. */
  readonly events?: Readonly<Record<string, readonly string[]>>;
}

/** Attributes any span may carry: a span marked failed gets error.type (telemetry/error-type.ts). */
export const EVERY_SPAN_ATTRIBUTES = ['error.type'] as const;

export const SPANS = {
  httpServer: {
    // The conventions' name: `{method} {route}` (`POST /api/v1/workflows/:id/executions/sync`), the method
    // alone when no route matched. Made by the http auto-instrumentation (telemetry/instrumentations.ts; the
    // app names the route), kind SERVER, the root of a request's trace unless the request carried trace
    // context (OTEL_PROPAGATORS). Its attributes are the instrumentation's (stable HTTP conventions).
    name: '{http.request.method} {http.route}', description: 'One HTTP request the API answered (the health probes aside).',
    attributes: ['http.request.method', 'url.path', 'url.query', 'url.scheme', 'network.protocol.version', 'http.route', 'http.response.status_code',
      'server.address', 'server.port', 'client.address', 'network.peer.address', 'network.peer.port', 'user_agent.original'],
  },
  workflowExecute: {
    name: 'workflow.execute', description: 'One workflow run, from its first task to its terminal status.',
    attributes: ['switchyard.execution.id', 'switchyard.workflow.id', 'switchyard.trigger', 'switchyard.execution.status', 'switchyard.caller.key_id', 'switchyard.resumed'],
  },
  workflowExecuteSync: {
    name: 'workflow.execute_sync', description: 'A synchronous workflow request: start the run and wait for it.',
    attributes: ['switchyard.workflow.id', 'switchyard.execution.id', 'switchyard.sync.timeout_ms'],
  },
  workflowWaitCompletion: {
    name: 'workflow.wait_completion', description: 'Waiting for a run to finish, woken by its completion or a fallback poll.',
    attributes: ['switchyard.execution.id', 'switchyard.wait.iterations', 'switchyard.wait.outcome'],
    events: { poll_iteration: ['switchyard.wait.attempt', 'switchyard.execution.status'] },
  },
  taskExecute: {
    name: 'task.execute', description: 'One task of a run (tool, agent or pause).',
    attributes: ['switchyard.task.id', 'switchyard.task.type', 'switchyard.execution.id', 'switchyard.trigger', 'switchyard.execution.status', 'switchyard.caller.key_id'],
  },
  taskExecuteSync: {
    name: 'task.execute_sync', description: 'A synchronous request to run a single task.',
    attributes: ['switchyard.task.id', 'switchyard.execution.id', 'switchyard.sync.timeout_ms'],
  },
  agentExecute: {
    name: 'agent.execute', description: 'One agent run started on its own through the API (/agents/:id).',
    attributes: ['switchyard.execution.id', 'gen_ai.agent.name', 'switchyard.trigger', 'switchyard.execution.status', 'switchyard.caller.key_id'],
  },
  agentPrepare: {
    name: 'agent.prepare', description: 'Load an agent definition, render its instructions, resolve its tools.',
    attributes: ['gen_ai.agent.name', 'gen_ai.provider.name', 'gen_ai.request.model'],
  },
  agentExecuteSync: {
    name: 'agent.execute_sync', description: 'The agent loop: model turns and tool calls until a final answer.',
    attributes: ['gen_ai.operation.name', 'gen_ai.agent.name', 'gen_ai.provider.name', 'gen_ai.request.model', 'gen_ai.response.model', 'gen_ai.usage.input_tokens', 'gen_ai.usage.output_tokens', 'switchyard.agent.iterations'],
  },
  agentModelCall: {
    name: 'agent.model_call', description: 'One request to the model provider (its retries after a 429 included).',
    attributes: [
      'gen_ai.operation.name', 'gen_ai.provider.name', 'gen_ai.request.model', 'gen_ai.response.model', 'gen_ai.response.id',
      'gen_ai.response.finish_reasons', 'gen_ai.usage.input_tokens', 'gen_ai.usage.output_tokens', 'switchyard.model.retries',
    ],
  },
  runtimeExecuteTool: {
    name: 'runtime.execute_tool', description: 'One tool call in a Bun subprocess.',
    attributes: [
      'gen_ai.operation.name', 'gen_ai.tool.name', 'switchyard.tool.timeout_ms', 'switchyard.tool.bun_version', 'process.exit.code',
      'switchyard.tool.exit_signal', 'switchyard.tool.output_bytes', 'switchyard.tool.error_code',
    ],
  },
} as const satisfies Record<string, SpanSpec>;


export type SpanKey = keyof typeof SPANS;
