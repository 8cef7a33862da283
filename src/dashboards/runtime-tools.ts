/**
 * Switchyard / Runtime Tools: how tool calls (Bun subprocesses) behave, per tool.
 * Answers: which tool is slow, which is failing and how (error kind), which times out, how processes
 * end (exit code or signal), how big outputs get.
 */
import type { Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import { x } from './external.ts';
import { counterRate, histogramRate, labelValues, orZero, quantile, ratio, RATE_INTERVAL, type Matchers } from './promql.ts';
import {
  higherIsWorse, datasourceVariable, engineVariables, labelVariable, histogramPanel, newDashboard, row, statPanel, timeseriesPanel,
  tracesPanel,
} from './shared.ts';

export const UID = 'switchyard-runtime-tools';

const TOOLS: Matchers<'toolExecuteSeconds'> = { tool_id: '=~"$tool_id"' };
const TOOL_ERRORS: Matchers<'toolErrors'> = { tool_id: '=~"$tool_id"' };
/** Failures: a canceled call was stopped by its caller or a shutdown, not failed by the tool. */
const TOOL_FAILURES: Matchers<'toolErrors'> = { ...TOOL_ERRORS, error_kind: '!="canceled"' };
const TOOL_TIMEOUTS: Matchers<'toolTimeouts'> = { tool_id: '=~"$tool_id"' };
const TOOL_OUTPUT: Matchers<'toolOutputBytes'> = { tool_id: '=~"$tool_id"' };

/** Tool spans slower than a second: the first place to look when the latency panels climb. */
export const SLOW_TOOL_CALLS_TRACEQL = '{ name = "runtime.execute_tool" && duration > 1s }';
export const FAILED_TOOL_CALLS_TRACEQL = '{ name = "runtime.execute_tool" && status = error }';

/**
 * p95 of runtime.execute_tool spans per tool, from the Collector's span metrics: the series whose exemplars
 * carry trace ids (the engine's own histograms have none: the OpenTelemetry JS SDK records no exemplars).
 */
const TOOL_SPAN_P95 = `histogram_quantile(0.95, sum by (le, gen_ai_tool_name) (rate(${x('traces_span_metrics_duration_seconds')}_bucket{`
  + `span_name="runtime.execute_tool", gen_ai_tool_name=~"$tool_id", job=~"$job", instance=~"$instance"}[${RATE_INTERVAL}])))`;

const callsByTool = histogramRate('toolExecuteSeconds', 'count', ['tool_id'], TOOLS);
const timeoutsByTool = orZero(counterRate('toolTimeouts', ['tool_id'], TOOL_TIMEOUTS), callsByTool);
const allCalls = histogramRate('toolExecuteSeconds', 'count', [], TOOLS);

export function runtimeToolsDashboard(): Dashboard {
  return newDashboard(
    UID,
    'Switchyard / Runtime Tools',
    'Tool calls run as Bun subprocesses: latency, errors by kind, timeouts, process exits and output size, per tool.',
  )
    .variables([
      datasourceVariable(),
      ...engineVariables(),
      labelVariable('tool_id', 'Tool', labelValues('toolExecuteSeconds', 'tool_id')),
    ])
    .withRow(row('Latency'))
    .withPanel(histogramPanel({
      title: 'Tool latency p95 by tool',
      description: '95th percentile wall time of a tool call (spawn to parsed response), per tool, all outcomes, from the engine\'s own histogram.',
      unit: 's', width: 12,
      queries: [{ expr: quantile(0.95, 'toolExecuteSeconds', ['tool_id'], TOOLS), legend: '{{tool_id}}' }],
    }))
    .withPanel(histogramPanel({
      title: 'Tool call span duration p95 by tool (exemplars)',
      description: 'The same calls seen from their traces: 95th percentile duration of runtime.execute_tool spans per tool, derived by the Collector\'s spanmetrics connector. Its dots are exemplars carrying trace ids: click one to open that call\'s trace.',
      unit: 's', width: 12,
      queries: [{ expr: TOOL_SPAN_P95, legend: '{{gen_ai_tool_name}}' }],
    }))
    .withPanel(histogramPanel({
      title: 'Tool latency p50 / p95 / p99',
      description: 'Percentiles of tool call wall time over the selected tools together. A wide p50-p99 gap means a few slow calls, not a slow tool.',
      unit: 's', width: 12,
      queries: [
        { expr: quantile(0.5, 'toolExecuteSeconds', [], TOOLS), legend: 'p50' },
        { expr: quantile(0.95, 'toolExecuteSeconds', [], TOOLS), legend: 'p95' },
        { expr: quantile(0.99, 'toolExecuteSeconds', [], TOOLS), legend: 'p99' },
      ],
    }))
    .withPanel(histogramPanel({
      title: 'Tool latency p99 by tool',
      description: '99th percentile wall time of a tool call, per tool, all outcomes (timed-out calls last their timeout). The SlowToolExecution alert watches the p95 of successful calls against 80% of each tool\'s timeout.',
      unit: 's', width: 12,
      queries: [{ expr: quantile(0.99, 'toolExecuteSeconds', ['tool_id'], TOOLS), legend: '{{tool_id}}' }],
    }))
    .withPanel(timeseriesPanel({
      title: 'Tool calls by outcome',
      description: 'Tool calls finished per second, by outcome (success, error, timeout).',
      unit: 'ops', width: 12, stacked: true,
      queries: [{ expr: histogramRate('toolExecuteSeconds', 'count', ['outcome'], TOOLS), legend: '{{outcome}}' }],
    }))
    .withRow(row('Errors and timeouts'))
    .withPanel(timeseriesPanel({
      title: 'Tool errors by kind',
      description: 'Tool calls that ended without a result, per second, by what happened: the definition was refused or bun could not start (start), the input did not match the tool\'s input_schema (input), a pipe failed (stdin, stdout, stderr), the process exited or died without an answer (wait), its output was not the protocol (parse), it ran out of time (timeout) or wrote too much (output_limit), the tool answered with its own error (tool: its code is the span\'s switchyard.tool.error_code), the call was canceled by its caller or a shutdown (canceled), or a runtime bug (unknown). Summed over the selected tools; the HighToolErrorRate alert is per tool (failures other than timeouts and cancellations above 5% of its calls), see *Tool errors by tool*.',
      unit: 'ops', width: 12, stacked: true,
      queries: [{ expr: counterRate('toolErrors', ['error_kind'], TOOL_ERRORS), legend: '{{error_kind}}' }],
    }))
    .withPanel(timeseriesPanel({
      title: 'Tool errors by tool',
      description: 'Failed tool calls per second, per tool (0 for tools that have not failed); canceled calls aside, as they were stopped rather than failed.',
      unit: 'ops', width: 12, stacked: true,
      queries: [{ expr: orZero(counterRate('toolErrors', ['tool_id'], TOOL_FAILURES), callsByTool), legend: '{{tool_id}}' }],
    }))
    .withPanel(timeseriesPanel({
      title: 'Tool timeouts by tool',
      description: 'Tool calls killed at their timeout, per second, per tool.',
      unit: 'ops', width: 9,
      queries: [{ expr: timeoutsByTool, legend: '{{tool_id}}' }],
    }))
    .withPanel(timeseriesPanel({
      title: 'Timeout ratio by tool',
      description: 'Share of tool calls that timed out, per tool: timeouts / calls over the same window. The ToolTimeoutSpike alert fires above 5%.',
      unit: 'percentunit', width: 9, min: 0,
      queries: [{
        expr: ratio(timeoutsByTool, callsByTool),
        legend: '{{tool_id}}',
      }],
    }))
    .withPanel(statPanel({
      title: 'Timeout ratio',
      description: 'Share of all selected tool calls that timed out over the last rate window. Orange from 1%, red from 5% (the alert threshold).',
      unit: 'percentunit', width: 6, min: 0, thresholds: higherIsWorse(0.01, 0.05),
      queries: [{
        expr: ratio(orZero(counterRate('toolTimeouts', [], TOOL_TIMEOUTS), allCalls), allCalls),
        legend: 'timeout ratio',
      }],
    }))
    .withRow(row('Processes and output'))
    .withPanel(timeseriesPanel({
      title: 'Bun process exits by status, code and signal',
      description: 'Tool processes that ended, per second, by how: exit with a code, or killed by a signal. Non-zero codes and SIGKILL point at crashing or timed-out tools.',
      unit: 'ops', width: 12, stacked: true, bars: true,
      queries: [{ expr: counterRate('bunProcessExits', ['status', 'code', 'signal']), legend: '{{status}} code={{code}} signal={{signal}}' }],
    }))
    .withPanel(histogramPanel({
      title: 'Tool output size p99 by tool',
      description: '99th percentile of the bytes a tool wrote to stdout in one call, per tool. Calls near the output limit fail with error_kind=output_limit.',
      unit: 'bytes', width: 12,
      queries: [{ expr: quantile(0.99, 'toolOutputBytes', ['tool_id'], TOOL_OUTPUT), legend: '{{tool_id}}' }],
    }))
    .withRow(row('Traces'))
    .withPanel(tracesPanel({
      title: 'Slow tool calls',
      description: `Recent tool calls slower than one second, from Tempo (TraceQL: ${SLOW_TOOL_CALLS_TRACEQL}). Click a trace id to open it.`,
      traceql: SLOW_TOOL_CALLS_TRACEQL, width: 12,
    }))
    .withPanel(tracesPanel({
      title: 'Failed tool calls',
      description: `Recent tool calls that ended in error, from Tempo (TraceQL: ${FAILED_TOOL_CALLS_TRACEQL}). The span carries error.type (tool_<kind>), switchyard.tool.error_code (the tool's own code, for kind tool), process.exit.code and switchyard.tool.exit_signal.`,
      traceql: FAILED_TOOL_CALLS_TRACEQL, width: 12,
    }))
    .build();
}
