/**
 * Switchyard / Agents & Models: what agents spend and where they are slow.
 * Answers: how many tokens each model and agent burns, and what they cost (per agent, model and workflow);
 * how slow each model is (p50/p95/p99 by model and operation) and how often its calls fail (by provider
 * and error.type); how many model turns and tool calls an agent needs per run, and how its runs end; how
 * spending compares with the hourly budget; and from a model's latency or an agent's, the traces behind it.
 *
 * Model latency, tokens and errors come from the semantic conventions' GenAI client metrics
 * (gen_ai_client_operation_duration_seconds, gen_ai_client_token_usage); cost, tokens by agent and
 * workflow, and the agent loop from the engine's own agent_* metrics (src/telemetry/catalog.ts).
 */
import type { Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import { SPANS } from '../telemetry/catalog.ts';
import { x } from './external.ts';
import { counterRate, gauge, histogramMean, histogramRate, labelValues, orZero, quantile, ratio, RATE_INTERVAL, type Matchers } from './promql.ts';
import {
  datasourceVariable, engineVariables, higherIsWorse, histogramPanel, labelVariable, newDashboard, row, statPanel, timeseriesPanel,
  traceqlExploreLink, tracesPanel,
} from './shared.ts';

export const UID = 'switchyard-agents';

/**
 * p95 of a span's duration by one of its attributes, from the Collector's span metrics: the series whose
 * exemplars carry trace ids (the engine's own histograms have none: the OpenTelemetry JS SDK records no
 * exemplars), so a dot on these panels opens the trace of that call.
 */
function spanP95(spanName: string, label: 'gen_ai_request_model', variable: string): string {
  return `histogram_quantile(0.95, sum by (le, ${label}) (rate(${x('traces_span_metrics_duration_seconds')}_bucket{`
    + `span_name="${spanName}", ${label}=~"${variable}", job=~"$job", instance=~"$instance"}[${RATE_INTERVAL}])))`;
}

/** Mean duration of a span by one of its attributes, from the Collector's span metrics (sum / count). */
function spanMean(spanName: string, label: 'gen_ai_agent_name', variable: string): string {
  const part = (series: 'sum' | 'count') => `sum by (${label}) (rate(${x('traces_span_metrics_duration_seconds')}_${series}{`
    + `span_name="${spanName}", ${label}=~"${variable}", job=~"$job", instance=~"$instance"}[${RATE_INTERVAL}]))`;
  return ratio(part('sum'), part('count'));
}

/**
 * The slowest traces of one agent: its agent.execute_sync spans at or above the mean duration the clicked point
 * shows. Grafana fills in the agent (the series' label) and the mean (the point's value, in seconds). The mean,
 * not a percentile: some run lasted at least the mean wherever one was measured, so the list is never empty,
 * where an interpolated p95 can lie above every run its bucket holds.
 */
export const AGENT_SLOWEST_TRACES_TRACEQL = `{ name = "${SPANS.agentExecuteSync.name}" && span.gen_ai.agent.name = "\${__field.labels.gen_ai_agent_name}" && duration >= \${__value.raw}s }`;
/** AGENT_SLOWEST_TRACES_TRACEQL for one agent and a mean duration, as Grafana fills it in. */
export function agentSlowestTracesTraceql(agent: string, seconds: number): string {
  return AGENT_SLOWEST_TRACES_TRACEQL.replace('${__field.labels.gen_ai_agent_name}', agent).replace('${__value.raw}', String(seconds));
}
export const FAILED_MODEL_CALLS_TRACEQL = `{ name = "${SPANS.agentModelCall.name}" && status = error }`;
/** Mean duration of each agent's loop, from span metrics: the series the link to an agent's slowest traces is on. */
export const AGENT_RUN_SPAN_MEAN = spanMean(SPANS.agentExecuteSync.name, 'gen_ai_agent_name', '$agent');

const MODEL_CALLS: Matchers<'genAiClientOperationDuration'> = { gen_ai_request_model: '=~"$model"' };
const MODEL_ERRORS: Matchers<'genAiClientOperationDuration'> = { gen_ai_request_model: '=~"$model"', error_type: '!=""' };
const TOKEN_USAGE: Matchers<'genAiClientTokenUsage'> = { gen_ai_request_model: '=~"$model"' };
const AGENT_TOKENS: Matchers<'agentModelTokens'> = { gen_ai_agent_name: '=~"$agent"', gen_ai_request_model: '=~"$model"' };
const AGENT_COST: Matchers<'agentModelCost'> = { gen_ai_agent_name: '=~"$agent"', gen_ai_request_model: '=~"$model"' };
const RUNS: Matchers<'agentRuns'> = { gen_ai_agent_name: '=~"$agent"' };
const TURNS: Matchers<'agentRunModelTurns'> = { gen_ai_agent_name: '=~"$agent"' };
const TOOL_CALLS: Matchers<'agentRunToolCalls'> = { gen_ai_agent_name: '=~"$agent"' };

/** A counter's per-second rate as a per-hour one (cost per hour reads better than dollars per second). */
const perHour = (expr: string) => `(${expr}) * 3600`;

const callsByProvider = histogramRate('genAiClientOperationDuration', 'count', ['gen_ai_provider_name'], MODEL_CALLS);
const errorsByProvider = orZero(histogramRate('genAiClientOperationDuration', 'count', ['gen_ai_provider_name'], MODEL_ERRORS), callsByProvider);
const runsByAgent = counterRate('agentRuns', ['gen_ai_agent_name'], RUNS);
const tokensByModel = counterRate('agentModelTokens', ['gen_ai_request_model'], AGENT_TOKENS);
/** Tokens of models the price table lacks: what the cost panels cannot show (0 when every model is priced). */
const unpricedTokensByModel = orZero(
  `${tokensByModel} unless on (gen_ai_request_model) ${counterRate('agentModelCost', ['gen_ai_request_model'], AGENT_COST)}`,
  tokensByModel,
);

export function agentsDashboard(): Dashboard {
  return newDashboard(
    UID,
    'Switchyard / Agents & Models',
    'What agents spend and where they are slow: tokens and cost by agent, model and workflow; model latency and errors (the GenAI semantic conventions\' metrics); turns, tool calls and outcomes per agent run.',
  )
    .variables([
      datasourceVariable(),
      ...engineVariables(),
      labelVariable('agent', 'Agent', labelValues('agentRuns', 'gen_ai_agent_name')),
      labelVariable('model', 'Model', labelValues('genAiClientOperationDuration', 'gen_ai_request_model')),
    ])
    .withRow(row('Tokens and cost'))
    .withPanel(timeseriesPanel({
      title: 'Tokens per second by model and type',
      description: 'Tokens used per second by model calls, by requested model and token type (input, output), from gen_ai_client_token_usage (the sum of the semantic conventions\' histogram).',
      unit: 'short', width: 12, stacked: true,
      queries: [{ expr: histogramRate('genAiClientTokenUsage', 'sum', ['gen_ai_request_model', 'gen_ai_token_type'], TOKEN_USAGE), legend: '{{gen_ai_request_model}} {{gen_ai_token_type}}' }],
    }))
    .withPanel(timeseriesPanel({
      title: 'Tokens per second by agent',
      description: 'Tokens used per second by each agent\'s model calls, input and output (agent_model_tokens_total).',
      unit: 'short', width: 12, stacked: true,
      queries: [{ expr: counterRate('agentModelTokens', ['gen_ai_agent_name', 'gen_ai_token_type'], AGENT_TOKENS), legend: '{{gen_ai_agent_name}} {{gen_ai_token_type}}' }],
    }))
    .withPanel(timeseriesPanel({
      title: 'Cost per hour by agent',
      description: 'US dollars per hour spent by each agent\'s model calls, at the prices of the project\'s prices.yaml (tokens x price, counted by the engine at each call). Models without a price count nothing: see *Tokens without a price*.',
      unit: 'currencyUSD', width: 8, stacked: true,
      queries: [{ expr: perHour(counterRate('agentModelCost', ['gen_ai_agent_name'], AGENT_COST)), legend: '{{gen_ai_agent_name}}' }],
    }))
    .withPanel(timeseriesPanel({
      title: 'Cost per hour by model',
      description: 'US dollars per hour by requested model and token type, at the prices of prices.yaml.',
      unit: 'currencyUSD', width: 8, stacked: true,
      queries: [{ expr: perHour(counterRate('agentModelCost', ['gen_ai_request_model', 'gen_ai_token_type'], AGENT_COST)), legend: '{{gen_ai_request_model}} {{gen_ai_token_type}}' }],
    }))
    .withPanel(timeseriesPanel({
      title: 'Cost per hour by workflow',
      description: 'US dollars per hour spent by the agents of each workflow (workflow_id="none": agents and tasks run on their own).',
      unit: 'currencyUSD', width: 8, stacked: true,
      queries: [{ expr: perHour(counterRate('agentModelCost', ['workflow_id'], AGENT_COST)), legend: '{{workflow_id}}' }],
    }))
    .withPanel(statPanel({
      title: 'Cost per hour',
      description: 'US dollars per hour spent by the selected agents and models over the last rate window.',
      unit: 'currencyUSD', width: 6, min: 0,
      queries: [{ expr: perHour(orZero(counterRate('agentModelCost', [], AGENT_COST), `${counterRate('agentModelTokens', [], AGENT_TOKENS)} * 0`)), legend: 'USD per hour' }],
    }))
    .withPanel(timeseriesPanel({
      title: 'Tokens without a price',
      description: 'Tokens per second of models that prices.yaml does not list, by model: their cost is not counted anywhere (0 when every model used has a price).',
      unit: 'short', width: 9,
      queries: [{ expr: unpricedTokensByModel, legend: '{{gen_ai_request_model}}' }],
    }))
    .withPanel(timeseriesPanel({
      title: 'Spending against the hourly budget',
      description: 'Cost per hour of each job\'s model calls divided by its hourly budget (prices.yaml budget.usd_per_hour, agent_model_budget_usd_per_hour): 100% spends the budget exactly. ModelCostBudgetBurn pages above 100% over the last hour (and the last 5 minutes), or above 200% over the last 15 minutes. No line for a job without a budget.',
      unit: 'percentunit', width: 9, min: 0,
      queries: [{ expr: ratio(perHour(counterRate('agentModelCost', ['job'])), gauge('agentModelBudget', 'max', ['job'])), legend: '{{job}}' }],
    }))
    .withRow(row('Model latency and errors'))
    .withPanel(histogramPanel({
      title: 'Model call latency p50 / p95 by model and operation',
      description: 'Percentiles of one model call\'s duration (gen_ai_client_operation_duration_seconds, failed calls included), by requested model and operation.',
      unit: 's', width: 12,
      queries: [
        { expr: quantile(0.5, 'genAiClientOperationDuration', ['gen_ai_operation_name', 'gen_ai_request_model'], MODEL_CALLS), legend: '{{gen_ai_operation_name}} {{gen_ai_request_model}} p50' },
        { expr: quantile(0.95, 'genAiClientOperationDuration', ['gen_ai_operation_name', 'gen_ai_request_model'], MODEL_CALLS), legend: '{{gen_ai_operation_name}} {{gen_ai_request_model}} p95' },
      ],
    }))
    .withPanel(histogramPanel({
      title: 'Model call latency p99 by model',
      description: '99th percentile of one model call\'s duration, by requested model. The buckets are the semantic conventions\' (10 ms doubling to 82 s).',
      unit: 's', width: 12,
      queries: [{ expr: quantile(0.99, 'genAiClientOperationDuration', ['gen_ai_request_model'], MODEL_CALLS), legend: '{{gen_ai_request_model}}' }],
    }))
    .withPanel(histogramPanel({
      title: 'Model call span duration p95 by model (exemplars)',
      description: `The same calls seen from their traces: 95th percentile duration of ${SPANS.agentModelCall.name} spans by requested model, from the Collector's span metrics. Its dots are exemplars carrying trace ids: click one to open that call's trace (its prompt size, finish reasons, error).`,
      unit: 's', width: 12,
      queries: [{ expr: spanP95(SPANS.agentModelCall.name, 'gen_ai_request_model', '$model'), legend: '{{gen_ai_request_model}}' }],
    }))
    .withPanel(timeseriesPanel({
      title: 'Model calls by provider',
      description: 'Model calls per second by provider (gen_ai.provider.name: openai for the OpenAI-compatible client, switchyard.scripted for the offline scripted model).',
      unit: 'ops', width: 8, stacked: true,
      queries: [{ expr: callsByProvider, legend: '{{gen_ai_provider_name}}' }],
    }))
    .withPanel(timeseriesPanel({
      title: 'Model errors by provider and error.type',
      description: 'Failed model calls per second by provider and error.type (the provider\'s code, such as model_http_429 or model_unreachable; timeout or canceled when the run was stopped); 0 per provider while none fail.',
      unit: 'ops', width: 8, stacked: true,
      queries: [{
        expr: orZero(histogramRate('genAiClientOperationDuration', 'count', ['gen_ai_provider_name', 'error_type'], MODEL_ERRORS), callsByProvider),
        legend: '{{gen_ai_provider_name}} {{error_type}}',
      }],
    }))
    .withPanel(timeseriesPanel({
      title: 'Model error ratio by provider',
      description: 'Share of model calls that failed, per provider: failed calls / all calls over the same window.',
      unit: 'percentunit', width: 8, min: 0,
      queries: [{ expr: ratio(errorsByProvider, callsByProvider), legend: '{{gen_ai_provider_name}}' }],
    }))
    .withRow(row('Agent runs'))
    .withPanel(timeseriesPanel({
      title: 'Agent runs by outcome',
      description: 'Agent runs that ended per second, by agent and outcome: final_answer, iteration_limit (no answer within max_iterations), model_error, tool_error (running a tool threw; a failed tool result goes back to the model), canceled (canceled or timed out).',
      unit: 'ops', width: 12, stacked: true,
      queries: [{ expr: counterRate('agentRuns', ['gen_ai_agent_name', 'outcome'], RUNS), legend: '{{gen_ai_agent_name}} {{outcome}}' }],
    }))
    .withPanel(timeseriesPanel({
      title: 'Iteration-bound hits by agent',
      description: 'Share of each agent\'s runs that stopped at their iteration bound without a final answer (0 while none do): an agent looping, or a bound set too low.',
      unit: 'percentunit', width: 6, min: 0,
      queries: [{
        expr: ratio(orZero(counterRate('agentRuns', ['gen_ai_agent_name'], { ...RUNS, outcome: '="iteration_limit"' }), runsByAgent), runsByAgent),
        legend: '{{gen_ai_agent_name}}',
      }],
    }))
    .withPanel(statPanel({
      title: 'Runs without a final answer',
      description: 'Share of the selected agents\' runs that ended without a final answer (any outcome but final_answer). Orange from 1%, red from 5%.',
      unit: 'percentunit', width: 6, min: 0, thresholds: higherIsWorse(0.01, 0.05),
      queries: [{
        expr: ratio(orZero(counterRate('agentRuns', [], { ...RUNS, outcome: '!="final_answer"' }), counterRate('agentRuns', [], RUNS)), counterRate('agentRuns', [], RUNS)),
        legend: 'without a final answer',
      }],
    }))
    .withPanel(timeseriesPanel({
      title: 'Model turns per run by agent',
      description: 'Average number of model calls one agent run makes (its loop iterations), by agent (agent_run_model_turns).',
      unit: 'short', width: 12, min: 0,
      queries: [{ expr: histogramMean('agentRunModelTurns', ['gen_ai_agent_name'], TURNS), legend: '{{gen_ai_agent_name}}' }],
    }))
    .withPanel(timeseriesPanel({
      title: 'Tool calls per run by agent',
      description: 'Average number of tool calls the model asks for in one agent run, by agent (agent_run_tool_calls).',
      unit: 'short', width: 12, min: 0,
      queries: [{ expr: histogramMean('agentRunToolCalls', ['gen_ai_agent_name'], TOOL_CALLS), legend: '{{gen_ai_agent_name}}' }],
    }))
    .withRow(row('Traces'))
    .withPanel(timeseriesPanel({
      title: 'Agent run duration by agent (click: its slowest traces)',
      description: `Mean duration of each agent's loop (${SPANS.agentExecuteSync.name} spans: model turns and tool calls), from the Collector's span metrics. Click a point for "Slowest traces of <agent>": Tempo's traces of that agent that lasted at least the mean shown (TraceQL: ${AGENT_SLOWEST_TRACES_TRACEQL}); sort them by duration for the slowest first.`,
      unit: 's', width: 12, min: 0,
      queries: [{ expr: AGENT_RUN_SPAN_MEAN, legend: '{{gen_ai_agent_name}}' }],
      links: [traceqlExploreLink('Slowest traces of ${__field.labels.gen_ai_agent_name}', AGENT_SLOWEST_TRACES_TRACEQL)],
    }))
    .withPanel(tracesPanel({
      title: 'Failed model calls',
      description: `Recent model calls that failed, from Tempo (TraceQL: ${FAILED_MODEL_CALLS_TRACEQL}). The span carries error.type (model_http_429, model_unreachable, model_protocol, timeout, ...), the requested model and the server's answer in its status message.`,
      traceql: FAILED_MODEL_CALLS_TRACEQL, width: 12,
    }))
    .build();
}
