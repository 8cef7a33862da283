/**
 * Switchyard / Execution Overview: the HTTP execution API as its callers see it.
 * Answers: how long synchronous requests take per kind, how many runs are accepted asynchronously,
 * how long synchronous waits last and how often they wake, which requests time out or fail (by status
 * code), how much is running right now, and whether the engine's event loop stalls.
 */
import type { Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import { counterRate, gauge, histogramRate, labelValues, orZero, quantile, ratio, type Matchers } from './promql.ts';
import {
  datasourceVariable, engineVariables, labelVariable, histogramPanel, newDashboard, row, timeseriesPanel, tracesPanel,
} from './shared.ts';

export const UID = 'switchyard-execution-overview';

const POLL_DURATION: Matchers<'workflowSyncPollDuration'> = { workflow_id: '=~"$workflow_id"' };
const POLLS: Matchers<'workflowSyncPolls'> = { workflow_id: '=~"$workflow_id"' };

export const SLOW_SYNC_REQUESTS_TRACEQL =
  '{ name =~ "workflow.execute_sync|task.execute_sync|agent.execute_sync" && duration > 5s }';

export function executionOverviewDashboard(): Dashboard {
  return newDashboard(
    UID,
    'Switchyard / Execution Overview',
    'The HTTP execution API: synchronous latency by kind, asynchronous starts, synchronous waits, timeouts, errors by status code, executions in flight.',
  )
    .variables([
      datasourceVariable(),
      ...engineVariables(),
      labelVariable('workflow_id', 'Workflow', labelValues('workflowSyncPollDuration', 'workflow_id')),
    ])
    .withRow(row('Synchronous latency'))
    .withPanel(histogramPanel({
      title: 'Sync latency p50 / p95 / p99 by kind',
      description: 'Time to answer a synchronous execution request (workflow, task, agent), all outcomes.',
      unit: 's', width: 24, height: 9,
      queries: [
        { expr: quantile(0.5, 'httpExecSyncLatency', ['kind']), legend: '{{kind}} p50' },
        { expr: quantile(0.95, 'httpExecSyncLatency', ['kind']), legend: '{{kind}} p95' },
        { expr: quantile(0.99, 'httpExecSyncLatency', ['kind']), legend: '{{kind}} p99' },
      ],
    }))
    .withPanel(timeseriesPanel({
      title: 'Sync requests by kind and outcome',
      description: 'Synchronous execution requests answered per second, by kind and outcome (success, failed, timed_out, canceled, timeout, error).',
      unit: 'reqps', width: 12, stacked: true,
      queries: [{ expr: histogramRate('httpExecSyncLatency', 'count', ['kind', 'outcome']), legend: '{{kind}} {{outcome}}' }],
    }))
    .withPanel(timeseriesPanel({
      title: 'Async starts by kind',
      description: 'Executions accepted asynchronously (202) per second, by kind.',
      unit: 'reqps', width: 12, stacked: true,
      queries: [{ expr: counterRate('httpExecStarted', ['kind']), legend: '{{kind}}' }],
    }))
    .withRow(row('Synchronous waits'))
    .withPanel(histogramPanel({
      title: 'Sync wait duration p95 by workflow',
      description: '95th percentile of the time a synchronous request waited for its workflow to complete, per workflow.',
      unit: 's', width: 12,
      queries: [{ expr: quantile(0.95, 'workflowSyncPollDuration', ['workflow_id'], POLL_DURATION), legend: '{{workflow_id}}' }],
    }))
    .withPanel(timeseriesPanel({
      title: 'Wake-ups per sync wait by workflow',
      description: 'Average number of wake-ups (completion notices and fallback polls) per synchronous wait: polls / waits over the same window. Near 1 means waits are woken by the completion itself.',
      unit: 'short', width: 12, min: 0,
      queries: [{
        expr: ratio(counterRate('workflowSyncPolls', ['workflow_id'], POLLS), histogramRate('workflowSyncPollDuration', 'count', ['workflow_id'], POLL_DURATION)),
        legend: '{{workflow_id}}',
      }],
    }))
    .withPanel(timeseriesPanel({
      title: 'Sync wait wake-ups by outcome',
      description: 'Wake-ups of synchronous waits per second (completion notices and fallback polls, several per wait), by how their wait ended (completed, timeout, error). Not a count of waits (see *Sync wait duration p95 by workflow*).',
      unit: 'ops', width: 12, stacked: true,
      queries: [{ expr: counterRate('workflowSyncPolls', ['outcome'], POLLS), legend: '{{outcome}}' }],
    }))
    .withPanel(timeseriesPanel({
      title: 'Sync timeouts by kind',
      description: 'Synchronous requests answered 408 per second because the run outlived the wait, by kind (0 for kinds with sync traffic and no timeouts). The run goes on; the caller must poll it.',
      unit: 'reqps', width: 12,
      queries: [{ expr: orZero(counterRate('httpExecTimeouts', ['kind']), histogramRate('httpExecSyncLatency', 'count', ['kind'])), legend: '{{kind}}' }],
    }))
    .withRow(row('Errors and load'))
    .withPanel(timeseriesPanel({
      title: 'API errors by kind and status code',
      description: 'Execution API requests answered with an error status per second, by kind and HTTP status code.',
      unit: 'reqps', width: 12, stacked: true, bars: true,
      queries: [{ expr: counterRate('httpExecErrors', ['kind', 'code']), legend: '{{kind}} {{code}}' }],
    }))
    .withPanel(timeseriesPanel({
      title: 'Executions in flight by kind and state',
      description: 'Executions the engine processes are running now (pending or running), by kind, summed over the selected instances.',
      unit: 'short', width: 12, stacked: true, min: 0,
      queries: [{ expr: gauge('executionsInFlight', 'sum', ['kind', 'state']), legend: '{{kind}} {{state}}' }],
    }))
    .withPanel(timeseriesPanel({
      title: 'Engine event loop delay',
      description: 'How long the engine\'s event loop was held between samples, per export window, the worst of the selected instances (an idle loop reads about 10 ms, the sampling interval). Every request waits out a stall: a rising max means something synchronous (a tool spawn, a database lock wait) blocks the process.',
      unit: 's', width: 12, min: 0,
      queries: [
        { expr: gauge('eventLoopDelayP99', 'max'), legend: 'p99' },
        { expr: gauge('eventLoopDelayMax', 'max'), legend: 'max' },
      ],
    }))
    .withRow(row('Traces'))
    .withPanel(tracesPanel({
      title: 'Slow synchronous requests',
      description: `Recent synchronous execution requests slower than five seconds, from Tempo (TraceQL: ${SLOW_SYNC_REQUESTS_TRACEQL}).`,
      traceql: SLOW_SYNC_REQUESTS_TRACEQL,
    }))
    .build();
}
