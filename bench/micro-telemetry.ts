/**
 * Benchmark 2: the telemetry CPU cost of one workflow run, in-process.
 *
 * One quick_answer run emits, through the engine's Telemetry recorder (src/telemetry/recorder.ts), 11 spans
 * (workflow.execute_sync, workflow.execute, workflow.wait_completion with 2 poll_iteration events, and
 * per task: task.execute, agent.prepare, agent.execute_sync, agent.model_call) and 11 metric points
 * (execution_queue_wait, executions_started, 2x task_executions, 2x task_duration, executions_completed,
 * execution_duration, sync_polls, sync_poll_duration, http_exec_sync_latency): the calls engine.ts,
 * run-agent.ts and app.ts make, with the same attributes and labels, in the same async nesting.
 *
 * Three variants run the same async skeleton, interleaved in rounds (rotating order):
 *   none      the skeleton without any telemetry call (what the run costs anyway)
 *   bare      the bare SDK: tracer.startSpan + context.with + span.end, instruments called directly
 *   recorder  the engine's recorder (guards, label admission, try/catch) over the same SDK
 * Both SDKs are real (BatchSpanProcessor with the engine's bounds, MeterProvider with the catalogue's
 * views) and export to no-op exporters; each block ends with a flush (span export + metric collection),
 * so the export work is amortized over the block's runs. CPU time is process.cpuUsage() (user + system).
 * Telemetry cost per run = variant - none, same round.
 */
import { context, trace, type Attributes, type Counter, type Histogram, type Span, type Tracer } from '@opentelemetry/api';
import { performance } from 'node:perf_hooks';
import { METRICS, SPANS } from '../src/telemetry/catalog.ts';
import type { Telemetry } from '../src/telemetry/recorder.ts';
import { createBenchSdk, createBenchTelemetry, type BenchSdk } from './lib/sdk.ts';
import { median, round, spread, type Spread } from './lib/stats.ts';

const TASKS = [
  { id: 'answer', agent: 'faq_bot', model: 'scripted-faq-v1' },
  { id: 'format', agent: 'formatter', model: 'scripted-format-v1' },
] as const;
const IDS = Array.from({ length: 1024 }, (_, i) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`);

type RunFn = (n: number) => Promise<void>;

/** The engine's calls through its recorder, as made for one quick_answer sync request. */
function recorderRun(t: Telemetry): RunFn {
  return async (n) => {
    const id = IDS[n & 1023]!;
    const requestStarted = performance.now();
    await t.inSpan('workflowExecuteSync', { 'switchyard.workflow.id': 'quick_answer', timeout_ms: 60_000 }, async (syncSpan) => {
      const runSpan = t.startSpan('workflowExecute', { 'switchyard.execution.id': id, 'switchyard.workflow.id': 'quick_answer', 'switchyard.trigger': 'api_sync' });
      runSpan.spanContext();
      syncSpan.setAttribute('switchyard.execution.id', id);
      const run = t.runInSpan(runSpan, async () => {
        const startedAt = performance.now();
        t.record('executionQueueWait', 0.0004, { kind: 'workflow' });
        t.add('workflowExecutionsStarted', 1, { trigger: 'api_sync' });
        for (const task of TASKS) {
          await t.inSpan('taskExecute', { 'switchyard.task.id': task.id, 'switchyard.task.type': 'agent', 'switchyard.execution.id': id }, async () => {
            const taskStarted = performance.now();
            await t.inSpan('agentPrepare', { 'gen_ai.agent.name': task.agent }, async (span) => {
              span.setAttributes({ 'gen_ai.provider.name': 'scripted', 'gen_ai.request.model': task.model });
            });
            await t.inSpan('agentExecuteSync', { 'gen_ai.operation.name': 'invoke_agent', 'gen_ai.agent.name': task.agent, 'gen_ai.request.model': task.model }, async (span) => {
              await t.inSpan('agentModelCall', { 'gen_ai.operation.name': 'chat', 'gen_ai.provider.name': 'scripted', 'gen_ai.request.model': task.model }, async (model) => {
                model.setAttributes({ 'gen_ai.usage.input_tokens': 20, 'gen_ai.usage.output_tokens': 16 });
              });
              span.setAttributes({ 'switchyard.agent.iterations': 1, 'gen_ai.usage.input_tokens': 20, 'gen_ai.usage.output_tokens': 16 });
            });
            t.add('workflowTaskExecutions', 1, { task_type: 'agent', operation: task.agent, outcome: 'success' });
            t.record('workflowTaskDuration', (performance.now() - taskStarted) / 1000, { task_type: 'agent', outcome: 'success' });
          });
        }
        runSpan.setAttribute('switchyard.execution.status', 'success');
        t.add('workflowExecutionsCompleted', 1, { trigger: 'api_sync', status: 'success' });
        t.record('workflowExecutionDuration', (performance.now() - startedAt) / 1000, { trigger: 'api_sync', status: 'success' });
      });
      const waitStarted = performance.now();
      await t.inSpan('workflowWaitCompletion', { 'switchyard.execution.id': id }, async (span) => {
        span.addEvent('poll_iteration', { attempt: 1, state: 'pending' });
        await run;
        span.addEvent('poll_iteration', { attempt: 2, state: 'success' });
        span.setAttributes({ total_iterations: 2, outcome: 'completed' });
        t.add('workflowSyncPolls', 2, { workflow_id: 'quick_answer', outcome: 'completed' });
        t.record('workflowSyncPollDuration', (performance.now() - waitStarted) / 1000, { workflow_id: 'quick_answer' });
      });
    });
    t.record('httpExecSyncLatency', (performance.now() - requestStarted) / 1000, { kind: 'workflow', outcome: 'success' });
  };
}

/** The same spans and points with the bare SDK: no guards, no label admission, no try/catch. */
function bareRun(sdk: BenchSdk): RunFn {
  const { tracer, meter } = sdk;
  const counter = (key: keyof typeof METRICS): Counter => meter.createCounter(METRICS[key].otelName, { unit: METRICS[key].unit });
  const histogram = (key: keyof typeof METRICS): Histogram => meter.createHistogram(METRICS[key].otelName, { unit: METRICS[key].unit });
  const queueWait = histogram('executionQueueWait');
  const started = counter('workflowExecutionsStarted');
  const taskExecutions = counter('workflowTaskExecutions');
  const taskDuration = histogram('workflowTaskDuration');
  const completed = counter('workflowExecutionsCompleted');
  const duration = histogram('workflowExecutionDuration');
  const polls = counter('workflowSyncPolls');
  const pollDuration = histogram('workflowSyncPollDuration');
  const syncLatency = histogram('httpExecSyncLatency');
  const inSpan = async (tr: Tracer, name: string, attributes: Attributes, work: (span: Span) => Promise<void>) => {
    const span = tr.startSpan(name, { attributes });
    try {
      await context.with(trace.setSpan(context.active(), span), () => work(span));
    } finally {
      span.end();
    }
  };
  return async (n) => {
    const id = IDS[n & 1023]!;
    const requestStarted = performance.now();
    await inSpan(tracer, SPANS.workflowExecuteSync.name, { 'switchyard.workflow.id': 'quick_answer', timeout_ms: 60_000 }, async (syncSpan) => {
      const runSpan = tracer.startSpan(SPANS.workflowExecute.name, { attributes: { 'switchyard.execution.id': id, 'switchyard.workflow.id': 'quick_answer', 'switchyard.trigger': 'api_sync' } });
      runSpan.spanContext();
      syncSpan.setAttribute('switchyard.execution.id', id);
      const run = (async () => {
        try {
          await context.with(trace.setSpan(context.active(), runSpan), async () => {
            const startedAt = performance.now();
            queueWait.record(0.0004, { kind: 'workflow' });
            started.add(1, { trigger: 'api_sync' });
            for (const task of TASKS) {
              await inSpan(tracer, SPANS.taskExecute.name, { 'switchyard.task.id': task.id, 'switchyard.task.type': 'agent', 'switchyard.execution.id': id }, async () => {
                const taskStarted = performance.now();
                await inSpan(tracer, SPANS.agentPrepare.name, { 'gen_ai.agent.name': task.agent }, async (span) => {
                  span.setAttributes({ 'gen_ai.provider.name': 'scripted', 'gen_ai.request.model': task.model });
                });
                await inSpan(tracer, SPANS.agentExecuteSync.name, { 'gen_ai.operation.name': 'invoke_agent', 'gen_ai.agent.name': task.agent, 'gen_ai.request.model': task.model }, async (span) => {
                  await inSpan(tracer, SPANS.agentModelCall.name, { 'gen_ai.operation.name': 'chat', 'gen_ai.provider.name': 'scripted', 'gen_ai.request.model': task.model }, async (model) => {
                    model.setAttributes({ 'gen_ai.usage.input_tokens': 20, 'gen_ai.usage.output_tokens': 16 });
                  });
                  span.setAttributes({ 'switchyard.agent.iterations': 1, 'gen_ai.usage.input_tokens': 20, 'gen_ai.usage.output_tokens': 16 });
                });
                taskExecutions.add(1, { task_type: 'agent', operation: task.agent, outcome: 'success' });
                taskDuration.record((performance.now() - taskStarted) / 1000, { task_type: 'agent', outcome: 'success' });
              });
            }
            runSpan.setAttribute('switchyard.execution.status', 'success');
            completed.add(1, { trigger: 'api_sync', status: 'success' });
            duration.record((performance.now() - startedAt) / 1000, { trigger: 'api_sync', status: 'success' });
          });
        } finally {
          runSpan.end();
        }
      })();
      const waitStarted = performance.now();
      await inSpan(tracer, SPANS.workflowWaitCompletion.name, { 'switchyard.execution.id': id }, async (span) => {
        span.addEvent('poll_iteration', { attempt: 1, state: 'pending' });
        await run;
        span.addEvent('poll_iteration', { attempt: 2, state: 'success' });
        span.setAttributes({ total_iterations: 2, outcome: 'completed' });
        polls.add(2, { workflow_id: 'quick_answer', outcome: 'completed' });
        pollDuration.record((performance.now() - waitStarted) / 1000, { workflow_id: 'quick_answer' });
      });
    });
    syncLatency.record((performance.now() - requestStarted) / 1000, { kind: 'workflow', outcome: 'success' });
  };
}

/** The skeleton alone: the same async nesting and clock reads, no telemetry. */
function noneRun(): RunFn {
  const step = async (work: () => Promise<void>) => {
    await work();
  };
  return async () => {
    const requestStarted = performance.now();
    await step(async () => {
      const run = (async () => {
        performance.now();
        for (const task of TASKS) {
          void task;
          await step(async () => {
            performance.now();
            await step(async () => {});
            await step(async () => {
              await step(async () => {});
            });
            performance.now();
          });
        }
        performance.now();
      })();
      performance.now();
      await step(async () => {
        await run;
        performance.now();
      });
    });
    void (performance.now() - requestStarted);
  };
}

export interface MicroOptions {
  readonly rounds: number;
  readonly runsPerBlock: number;
  readonly log: (line: string) => void;
}

export interface MicroResult {
  readonly spansPerRun: number;
  readonly pointsPerRun: number;
  readonly runsPerBlock: number;
  /** CPU µs per run, medians over rounds. */
  readonly cpuUsPerRun: { none: number; bare: number; recorder: number };
  /** Telemetry cost per run (variant - none), µs. */
  readonly recorderCostUs: Spread;
  readonly bareCostUs: Spread;
  /** recorder cost / bare cost, per round. */
  readonly ratio: Spread;
}

async function block(run: RunFn, runs: number, flush: () => Promise<void>): Promise<number> {
  const before = process.cpuUsage();
  for (let n = 0; n < runs; n++) await run(n);
  await flush();
  const used = process.cpuUsage(before);
  return (used.user + used.system) / runs;
}

export async function measureTelemetryMicro(options: MicroOptions): Promise<MicroResult> {
  const recorder = createBenchTelemetry();
  const bareSdk = createBenchSdk();
  const variants = {
    none: { run: noneRun(), flush: async () => {} },
    bare: { run: bareRun(bareSdk), flush: () => bareSdk.flush() },
    recorder: { run: recorderRun(recorder.telemetry), flush: () => recorder.sdk.flush() },
  };
  type Name = keyof typeof variants;
  const names = Object.keys(variants) as Name[];
  // Warm-up: JIT, the SDK's attribute hashing caches, every series created.
  for (const name of names) await block(variants[name].run, options.runsPerBlock, variants[name].flush);
  const spansBefore = recorder.sdk.spanExporter.spans;
  const rounds: Array<Record<Name, number>> = [];
  for (let r = 0; r < options.rounds; r++) {
    const order = names.map((_, i) => names[(i + r) % names.length]!);
    const result = {} as Record<Name, number>;
    for (const name of order) {
      if (typeof globalThis.gc === 'function') globalThis.gc();
      result[name] = await block(variants[name].run, options.runsPerBlock, variants[name].flush);
    }
    rounds.push(result);
    options.log(`  micro round ${r + 1}/${options.rounds}: none ${result.none.toFixed(1)} µs, bare ${result.bare.toFixed(1)} µs, recorder ${result.recorder.toFixed(1)} µs per run`);
  }
  const spansPerRun = (recorder.sdk.spanExporter.spans - spansBefore) / (options.rounds * options.runsPerBlock);
  await recorder.sdk.reader.collectAndDrop();
  const pointsBefore = recorder.sdk.reader.points;
  await recorder.sdk.reader.collectAndDrop();
  const seriesNow = recorder.sdk.reader.points - pointsBefore;
  await recorder.sdk.shutdown();
  await bareSdk.shutdown();
  return {
    spansPerRun: round(spansPerRun, 2),
    // 11 metric calls per run (see the header); the collection holds this many distinct series:
    pointsPerRun: 11,
    runsPerBlock: options.runsPerBlock,
    cpuUsPerRun: {
      none: round(median(rounds.map((r) => r.none)), 2),
      bare: round(median(rounds.map((r) => r.bare)), 2),
      recorder: round(median(rounds.map((r) => r.recorder)), 2),
    },
    recorderCostUs: spread(rounds.map((r) => r.recorder - r.none)),
    bareCostUs: spread(rounds.map((r) => r.bare - r.none)),
    ratio: spread(rounds.map((r) => (r.recorder - r.none) / (r.bare - r.none))),
    ...(seriesNow ? { series: seriesNow } : {}),
  };
}
