/**
 * Benchmark 2: the telemetry CPU cost of one workflow run's request, in-process.
 *
 * One quick_answer sync request emits, in the engine: the HTTP server span and one http.server.request.duration
 * point (the http instrumentation), 11 engine spans (workflow.execute_sync,
 * workflow.execute, workflow.wait_completion with 2 poll_iteration events, and per task: task.execute,
 * agent.prepare, agent.execute_sync, agent.model_call) and 11 engine metric points (execution_queue_wait,
 * executions_started, 2x task_executions, 2x task_duration, executions_completed, execution_duration,
 * sync_polls, sync_poll_duration, http_exec_sync_latency): the calls app.ts, engine.ts and run-agent.ts make,
 * with the same attributes and labels, in the same async nesting. Not included (in no variant): express,
 * node:http and the store; the request and its response are not real.
 *
 * Three variants run the same async skeleton, interleaved in rounds (rotating order):
 *   none      the skeleton without any telemetry call (what the run costs anyway)
 *   bare      the same 12 spans (same names, kinds, attributes, events, nesting) and 12 points (same
 *             instruments, buckets and labels) made with plain API calls on NodeSDK, as an app uses it:
 *             tracer.startSpan + context.with + span.end, instruments called with an attributes literal.
 *   recorder  what the engine does: the SERVER span and point as in `bare` (the http instrumentation makes
 *             them in the engine), the engine's spans and points through its recorder (src/telemetry/recorder.ts:
 *             guards, cached label sets, try/catch) on the same NodeSDK.
 * Both run on one NodeSDK (bench/lib/sdk.ts `benchNodeSdk`) set up as src/telemetry/sdk.ts sets up the
 * engine's: its resource and detectors, the catalogue's views, ENGINE_DEFAULTS (the SDK's self-metrics on),
 * the batch span processor NodeSDK builds from OTEL_BSP_*, no instrumentation; its exporter encodes every batch
 * with the SDK's OTLP protobuf serializer on the main thread (what the OTLP/HTTP exporter does before it sends)
 * and drops the bytes, its reader collects on demand. Each block ends with a flush (span export + metric
 * collection), so the export work is amortized over the block's runs. CPU time: the main thread's
 * (process.threadCpuUsage: what the event loop pays, hence the engine's throughput) and the whole process's
 * (process.cpuUsage: the garbage collector's threads included). Telemetry cost per run = variant - none,
 * same round.
 */
import { context, propagation, ROOT_CONTEXT, SpanKind, trace, type Attributes, type Counter, type Histogram, type Span, type Tracer } from '@opentelemetry/api';
import { performance } from 'node:perf_hooks';
import { METRICS, SPANS } from '../src/telemetry/catalog.ts';
import { Telemetry } from '../src/telemetry/recorder.ts';
import { benchNodeSdk, type BenchSdk } from './lib/sdk.ts';
import { median, round, spread, type Spread } from './lib/stats.ts';

const TASKS = [
  { id: 'answer', agent: 'faq_bot', model: 'scripted-faq-v1' },
  { id: 'format', agent: 'formatter', model: 'scripted-format-v1' },
] as const;
const ROUTE = '/api/v1/workflows/:id/executions/sync';
const PATH = '/api/v1/workflows/quick_answer/executions/sync';
const HEADERS = { host: '127.0.0.1:8080', 'content-type': 'application/json', 'content-length': '52', connection: 'keep-alive', 'user-agent': 'bench' };
const IDS = Array.from({ length: 1024 }, (_, i) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`);

type RunFn = (n: number) => Promise<void>;

/** The engine's calls through its recorder, as made for one quick_answer sync request. */
function recorderRun(t: Telemetry, sdk: BenchSdk): RunFn {
  // The SERVER span and its point are the http instrumentation's in the engine: made as in `bare`.
  return serverRun(sdk, recorderEngineRun(t));
}

function recorderEngineRun(t: Telemetry): RunFn {
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
  const engine = async (n: number) => {
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
  return serverRun(sdk, engine);
}

/** The SERVER span and http.server.request.duration point of one request around `engine`, made with the bare SDK. */
function serverRun(sdk: BenchSdk, engine: RunFn): RunFn {
  const { tracer } = sdk;
  const spec = METRICS.httpServerRequestDuration;
  const httpDuration = sdk.meter.createHistogram(spec.otelName, { unit: spec.unit });
  return async (n) => {
    const started = performance.now();
    const parent = propagation.extract(ROOT_CONTEXT, HEADERS);
    const server = tracer.startSpan('POST', {
      kind: SpanKind.SERVER,
      attributes: { 'http.request.method': 'POST', 'url.path': PATH, 'url.scheme': 'http', 'network.protocol.version': '1.1' },
    }, parent);
    await context.with(trace.setSpan(parent, server), () => engine(n));
    server.updateName(`POST ${ROUTE}`);
    server.setAttribute('http.route', ROUTE);
    server.setAttribute('http.response.status_code', 200);
    server.end();
    httpDuration.record((performance.now() - started) / 1000, {
      'http.request.method': 'POST', 'url.scheme': 'http', 'network.protocol.version': '1.1', 'http.route': ROUTE, 'http.response.status_code': 200,
    });
  };
}

/** The skeleton alone: the same async nesting and clock reads, no telemetry. */
function noneRun(): RunFn {
  const step = async (work: () => Promise<void>) => {
    await work();
  };
  return async () => {
    const requestStarted = performance.now();
    await step(async () => step(async () => {
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
    }));
    void (performance.now() - requestStarted);
  };
}

export interface MicroOptions {
  readonly rounds: number;
  readonly runsPerBlock: number;
  readonly log: (line: string) => void;
}

export interface MicroResult {
  readonly spansPerRun: { bare: number; recorder: number };
  readonly pointsPerRun: number;
  readonly runsPerBlock: number;
  /** Main-thread CPU µs per run, medians over rounds. */
  readonly cpuUsPerRun: { none: number; bare: number; recorder: number };
  /** Main-thread telemetry cost per run (variant - none), µs. */
  readonly recorderCostUs: Spread;
  readonly bareCostUs: Spread;
  /** recorder cost / bare cost (main thread), per round. */
  readonly ratio: Spread;
  /** The same with the whole process's CPU (the export worker's encoding included). */
  readonly process: { readonly recorderCostUs: Spread; readonly bareCostUs: Spread; readonly ratio: Spread };
}

interface BlockCpu { readonly thread: number; readonly process: number }

async function block(run: RunFn, runs: number, flush: () => Promise<void>): Promise<BlockCpu> {
  const before = process.cpuUsage();
  const threadBefore = process.threadCpuUsage();
  for (let n = 0; n < runs; n++) {
    await run(n);
    // A turn of the event loop after every run, as a server gets between requests: the export worker's answers
    // (and the batch processor's next export) are macrotasks, and a loop of microtasks alone would never let
    // them in, so the span queue would fill and drop. Every variant yields alike.
    await new Promise(setImmediate);
  }
  await flush();
  const thread = process.threadCpuUsage(threadBefore);
  const used = process.cpuUsage(before);
  return { thread: (thread.user + thread.system) / runs, process: (used.user + used.system) / runs };
}

export async function measureTelemetryMicro(options: MicroOptions): Promise<MicroResult> {
  // One NodeSDK, set up as the engine's (bench/lib/sdk.ts): the engine's recorder and the bare calls use the
  // same tracer, meter, batch span processor and reader, so the difference is what the recorder adds.
  const sdk = benchNodeSdk();
  const telemetry = new Telemetry({ tracer: sdk.tracer, meter: sdk.meter });
  const variants = {
    none: { run: noneRun(), flush: async () => {} },
    bare: { run: bareRun(sdk), flush: () => sdk.flush() },
    recorder: { run: recorderRun(telemetry, sdk), flush: () => sdk.flush() },
  };
  type Name = keyof typeof variants;
  const names = Object.keys(variants) as Name[];
  const spans: Record<Name, number> = { none: 0, bare: 0, recorder: 0 };
  const measure = async (name: Name) => {
    const before = sdk.spansExported();
    const cpu = await block(variants[name].run, options.runsPerBlock, variants[name].flush);
    spans[name] += sdk.spansExported() - before;
    return cpu;
  };
  // Warm-up: JIT, the SDK's attribute hashing caches, every series created.
  for (const name of names) await block(variants[name].run, options.runsPerBlock, variants[name].flush);
  const rounds: Array<Record<Name, number>> = [];
  const processRounds: Array<Record<Name, number>> = [];
  for (let r = 0; r < options.rounds; r++) {
    const order = names.map((_, i) => names[(i + r) % names.length]!);
    const result = {} as Record<Name, number>;
    const whole = {} as Record<Name, number>;
    for (const name of order) {
      if (typeof globalThis.gc === 'function') globalThis.gc();
      const cpu = await measure(name);
      result[name] = cpu.thread;
      whole[name] = cpu.process;
    }
    rounds.push(result);
    processRounds.push(whole);
    options.log(`  micro round ${r + 1}/${options.rounds} (main thread / process): none ${result.none.toFixed(1)} / ${whole.none.toFixed(1)} µs, `
      + `bare ${result.bare.toFixed(1)} / ${whole.bare.toFixed(1)} µs, recorder ${result.recorder.toFixed(1)} / ${whole.recorder.toFixed(1)} µs per run`);
  }
  const measuredRuns = options.rounds * options.runsPerBlock;
  const spansPerRun = { bare: round(spans.bare / measuredRuns, 2), recorder: round(spans.recorder / measuredRuns, 2) };
  await sdk.reader.collectAndDrop();
  const pointsBefore = sdk.reader.points;
  await sdk.reader.collectAndDrop();
  const seriesNow = sdk.reader.points - pointsBefore;
  await sdk.shutdown();
  return {
    spansPerRun,
    // 12 metric calls per run (see the header); the collection holds this many distinct series:
    pointsPerRun: 12,
    runsPerBlock: options.runsPerBlock,
    cpuUsPerRun: {
      none: round(median(rounds.map((r) => r.none)), 2),
      bare: round(median(rounds.map((r) => r.bare)), 2),
      recorder: round(median(rounds.map((r) => r.recorder)), 2),
    },
    recorderCostUs: spread(rounds.map((r) => r.recorder - r.none)),
    bareCostUs: spread(rounds.map((r) => r.bare - r.none)),
    ratio: spread(rounds.map((r) => (r.recorder - r.none) / (r.bare - r.none))),
    process: {
      recorderCostUs: spread(processRounds.map((r) => r.recorder - r.none)),
      bareCostUs: spread(processRounds.map((r) => r.bare - r.none)),
      ratio: spread(processRounds.map((r) => (r.recorder - r.none) / (r.bare - r.none))),
    },
    ...(seriesNow ? { series: seriesNow } : {}),
  };
}
