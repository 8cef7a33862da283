/**
 * Switchyard / Workflow Lifecycle: workflow runs from acceptance to their terminal status.
 * Answers: how many runs start, finish and pause, how many succeed, how long they take, which tasks
 * run and fail, what is in flight and for how long, whether stale runs are being swept, and how long
 * accepted runs wait before their first step.
 */
import type { Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import {
  counterIncrease, counterRate, gauge, histogramRate, labelValues, orZero, quantile, ratio, type Matchers,
} from './promql.ts';
import {
  lowerIsWorse, datasourceVariable, engineVariables, labelVariable, histogramPanel, newDashboard, row, statPanel, timeseriesPanel,
  tracesPanel,
} from './shared.ts';

export const UID = 'switchyard-workflow-lifecycle';

const STARTED: Matchers<'workflowExecutionsStarted'> = { trigger: '=~"$trigger"' };
const COMPLETED: Matchers<'workflowExecutionsCompleted'> = { trigger: '=~"$trigger"' };
/** Finished runs as the SLO counts them: canceled runs are a caller's choice and count neither way. */
const FINISHED: Matchers<'workflowExecutionsCompleted'> = { ...COMPLETED, status: '!="canceled"' };
const PAUSED: Matchers<'workflowExecutionsPaused'> = { trigger: '=~"$trigger"' };
const DURATION: Matchers<'workflowExecutionDuration'> = { trigger: '=~"$trigger"' };

export const FAILED_RUNS_TRACEQL = '{ name = "workflow.execute" && status = error }';

export function workflowLifecycleDashboard(): Dashboard {
  const successRatio = ratio(
    counterRate('workflowExecutionsCompleted', [], { ...COMPLETED, status: '="success"' }),
    counterRate('workflowExecutionsCompleted', [], FINISHED),
  );
  return newDashboard(
    UID,
    'Switchyard / Workflow Lifecycle',
    'Workflow runs from acceptance to terminal status: starts, completions, pauses, success ratio, durations, per-task results, in-flight runs, stale sweeps, queue wait.',
  )
    .variables([
      datasourceVariable(),
      ...engineVariables(),
      labelVariable('trigger', 'Trigger', labelValues('workflowExecutionsStarted', 'trigger')),
    ])
    .withRow(row('Runs'))
    .withPanel(timeseriesPanel({
      title: 'Runs started, completed, paused',
      description: 'Workflow runs per second that started running, reached a terminal status (counted once per run), or paused at a pause task.',
      unit: 'ops', width: 12,
      queries: [
        { expr: counterRate('workflowExecutionsStarted', [], STARTED), legend: 'started' },
        { expr: counterRate('workflowExecutionsCompleted', [], COMPLETED), legend: 'completed' },
        { expr: orZero(counterRate('workflowExecutionsPaused', [], PAUSED), counterRate('workflowExecutionsStarted', [], STARTED)), legend: 'paused' },
      ],
    }))
    .withPanel(timeseriesPanel({
      title: 'Runs completed by status',
      description: 'Workflow runs reaching a terminal status per second, by status (success, failed, timed_out, canceled).',
      unit: 'ops', width: 6, stacked: true,
      queries: [{ expr: counterRate('workflowExecutionsCompleted', ['status'], COMPLETED), legend: '{{status}}' }],
    }))
    .withPanel(statPanel({
      title: 'Success ratio',
      description: 'Share of finished runs (canceled runs aside, as in the SLO) that ended with status success over the last rate window. Red below 95%, orange below 99% (the SLO).',
      unit: 'percentunit', width: 6, min: 0, max: 1, thresholds: lowerIsWorse(0.95, 0.99),
      queries: [{ expr: successRatio, legend: 'success ratio' }],
    }))
    .withPanel(timeseriesPanel({
      title: 'Success ratio by trigger',
      description: 'Share of finished runs (canceled aside) with status success, per trigger (api, api_sync, loadgen). The SLO burn-rate alerts watch its complement, summed over triggers.',
      unit: 'percentunit', width: 12, min: 0, max: 1,
      queries: [{
        expr: ratio(
          counterRate('workflowExecutionsCompleted', ['trigger'], { ...COMPLETED, status: '="success"' }),
          counterRate('workflowExecutionsCompleted', ['trigger'], FINISHED),
        ),
        legend: '{{trigger}}',
      }],
    }))
    .withPanel(histogramPanel({
      title: 'Run duration p50 / p95 by status',
      description: 'Duration of workflow runs from start to terminal status, per status.',
      unit: 's', width: 12,
      queries: [
        { expr: quantile(0.5, 'workflowExecutionDuration', ['status'], DURATION), legend: '{{status}} p50' },
        { expr: quantile(0.95, 'workflowExecutionDuration', ['status'], DURATION), legend: '{{status}} p95' },
      ],
    }))
    .withRow(row('Tasks'))
    .withPanel(timeseriesPanel({
      title: 'Task executions by type, operation and outcome',
      description: 'Tasks executed inside workflows per second, by task type (tool, agent, pause), operation (the tool or agent id) and outcome.',
      unit: 'ops', width: 12, stacked: true,
      queries: [{
        expr: counterRate('workflowTaskExecutions', ['task_type', 'operation', 'outcome']),
        legend: '{{task_type}} {{operation}} {{outcome}}',
      }],
    }))
    .withPanel(histogramPanel({
      title: 'Task duration p95 by type and outcome',
      description: '95th percentile duration of tasks inside workflows, by task type and outcome (the duration histogram has no operation label; see the executions panel for that).',
      unit: 's', width: 12,
      queries: [{ expr: quantile(0.95, 'workflowTaskDuration', ['task_type', 'outcome']), legend: '{{task_type}} {{outcome}}' }],
    }))
    .withRow(row('In flight and health'))
    .withPanel(timeseriesPanel({
      title: 'Executions in flight by kind and state',
      description: 'Executions running now (pending or running), by kind, summed over the selected engine instances.',
      unit: 'short', width: 8, stacked: true, min: 0,
      queries: [{ expr: gauge('executionsInFlight', 'sum', ['kind', 'state']), legend: '{{kind}} {{state}}' }],
    }))
    .withPanel(timeseriesPanel({
      title: 'Oldest running execution age by kind',
      description: 'Age of the oldest execution still running, by kind, the largest over the selected instances. A line that only climbs is a stuck run.',
      unit: 's', width: 8, min: 0,
      queries: [{ expr: gauge('executionsOldestRunningAge', 'max', ['kind']), legend: '{{kind}}' }],
    }))
    .withPanel(timeseriesPanel({
      title: 'Stale runs swept',
      description: 'Executions whose heartbeat went stale (their engine died) and that the sweeper finalized as failed, per rate window, by the status they had.',
      unit: 'short', width: 8, bars: true, min: 0,
      queries: [{ expr: counterIncrease('workflowExecutionsSwept', ['previous_status']), legend: '{{previous_status}}' }],
    }))
    .withPanel(histogramPanel({
      title: 'Queue wait p95 by kind',
      description: '95th percentile of the time from an execution being accepted to its first step starting, by kind. Growth means the engine is saturated.',
      unit: 's', width: 12,
      queries: [{ expr: quantile(0.95, 'executionQueueWait', ['kind']), legend: '{{kind}}' }],
    }))
    .withPanel(timeseriesPanel({
      title: 'Queue wait mean by kind',
      description: 'Average time from acceptance to first step, by kind: sum of waits / number of waits over the same window.',
      unit: 's', width: 12, min: 0,
      queries: [{
        expr: ratio(histogramRate('executionQueueWait', 'sum', ['kind']), histogramRate('executionQueueWait', 'count', ['kind'])),
        legend: '{{kind}}',
      }],
    }))
    .withPanel(histogramPanel({
      title: 'Tool slot wait p95 by tool',
      description: '95th percentile of the time a tool call waited for one of the engine\'s tool process slots (SWITCHYARD_MAX_TOOL_PROCESSES) before its process started, by tool. Above 0 the engine runs at its bound and calls queue.',
      unit: 's', width: 12,
      queries: [{ expr: quantile(0.95, 'toolSlotWait', ['tool_id']), legend: '{{tool_id}}' }],
    }))
    .withPanel(timeseriesPanel({
      title: 'Executions deleted by retention',
      description: 'Ended executions deleted once past the retention period (SWITCHYARD_RETENTION_DAYS), per rate window, by the status they ended with.',
      unit: 'short', width: 12, bars: true, min: 0,
      queries: [{ expr: counterIncrease('executionsDeleted', ['status']), legend: '{{status}}' }],
    }))
    .withRow(row('Traces'))
    .withPanel(tracesPanel({
      title: 'Failed workflow runs',
      description: `Recent workflow runs whose span ended in error, from Tempo (TraceQL: ${FAILED_RUNS_TRACEQL}).`,
      traceql: FAILED_RUNS_TRACEQL,
    }))
    .build();
}
