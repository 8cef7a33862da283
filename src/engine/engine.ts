import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Span } from '@opentelemetry/api';
import type { Logger } from 'pino';
import type { ExecutionRecord, ExecutionError, Store } from '../store/store.ts';
import { EXECUTION_KINDS, type ExecutionKind, type FinalizationPath, type TerminalStatus, type Trigger } from '../domain.ts';
import { traceparentOf, type GaugeReading, type Telemetry } from '../telemetry/recorder.ts';
import { runAgent } from './agent/run-agent.ts';
import type { ModelProvider } from './agent/model.ts';
import { CompletionNotifier } from './completion.ts';
import type { Definitions, TaskDefinition } from './definitions.ts';
import type { PriceTable } from './prices.ts';
import { ConflictError, ExecutionFailure, InvalidInputError, NotFoundError, StopSignal, UnavailableError, stopReasonOf } from './errors.ts';
import type { ToolRuntime } from './runtime/tool-runtime.ts';
import { REDACTED, redactValue, secretForms, secretInputValues } from './secrets.ts';
import { render } from './templates.ts';

export interface EngineOptions {
  readonly store: Store;
  readonly definitions: Definitions;
  readonly runtime: ToolRuntime;
  readonly telemetry: Telemetry;
  readonly providers: ReadonlyMap<string, ModelProvider>;
  /** Model prices (the project's prices.yaml), for the cost of agents' model calls. */
  readonly prices?: PriceTable;
  readonly logger: Logger;
  readonly instanceId: string;
  readonly heartbeatMs: number;
  readonly staleAfterMs: number;
  readonly sweepIntervalMs: number;
  /** First step of the fallback poll of a sync wait (doubles up to 2 s); the completion itself wakes waits sooner. */
  readonly waitFallbackFirstMs?: number;
}

export interface StartRequest {
  readonly kind: ExecutionKind;
  readonly target: string;
  readonly input: unknown;
  readonly trigger: Trigger;
  readonly parentExecutionId?: string | null;
  /** Id of the API key that asked for the run (never the key itself). */
  readonly callerKeyId?: string | null;
}

export interface WaitResult {
  readonly record: ExecutionRecord;
  /** False when the wait ran out before the run reached a terminal or paused state. */
  readonly completed: boolean;
}

interface LiveExecution {
  readonly id: string;
  readonly kind: ExecutionKind;
  readonly target: string;
  readonly trigger: Trigger;
  readonly createdAt: number;
  state: 'pending' | 'running';
  startedAt: number;
  readonly abort: AbortController;
  done: Promise<void>;
  /** Secret values seen so far (tools' secret_inputs), redacted from everything stored about the run. */
  readonly secrets: Set<string>;
}

interface RunPlan {
  readonly input: unknown;
  /** Index of the first task to run (beyond 0 when a paused workflow resumes). */
  readonly fromTask: number;
  readonly taskOutputs: Record<string, unknown>;
}

const RUN_SPANS = { workflow: 'workflowExecute', task: 'taskExecute', agent: 'agentExecute' } as const;
const TARGET_ATTRIBUTES = { workflow: 'switchyard.workflow.id', task: 'switchyard.task.id', agent: 'gen_ai.agent.name' } as const;
const WAIT_FALLBACK_FIRST_MS = 250;
const WAIT_FALLBACK_MAX_MS = 2_000;
const TERMINAL = new Set(['success', 'failed', 'timed_out', 'canceled']);

/**
 * Starts, runs, waits for, cancels and finalizes executions. Every way a run can end goes through
 * `#finalize`, which writes the store conditionally and counts the completion only when its write won,
 * so a run is recorded and counted exactly once, whoever else (a cancel, a sweeper on another process)
 * races it.
 */
export class Engine {
  readonly #o: EngineOptions;
  readonly #live = new Map<string, LiveExecution>();
  readonly #completions = new CompletionNotifier();
  readonly #timers: NodeJS.Timeout[] = [];
  #accepting = true;

  constructor(options: EngineOptions) {
    this.#o = options;
    options.telemetry.setGaugeSource(() => this.#gaugeReadings());
  }

  get definitions(): Definitions {
    return this.#o.definitions;
  }

  get liveCount(): number {
    return this.#live.size;
  }

  /** Starts the heartbeat of this process's runs and the sweeper of everyone's stale runs. */
  startBackgroundWork(): void {
    const { heartbeatMs, sweepIntervalMs } = this.#o;
    this.#timers.push(setInterval(() => void this.#heartbeat(), heartbeatMs).unref());
    this.#timers.push(setInterval(() => void this.sweepStale(), sweepIntervalMs).unref());
  }

  async get(id: string): Promise<ExecutionRecord | undefined> {
    return this.#o.store.getExecution(id);
  }

  async list(query: Parameters<Store['listExecutions']>[0]): Promise<ExecutionRecord[]> {
    return this.#o.store.listExecutions(query);
  }

  /** Validates the request, records the execution as pending and starts it in the background. */
  async start(request: StartRequest): Promise<ExecutionRecord> {
    if (!this.#accepting) throw new UnavailableError('the engine is shutting down and accepts no new executions');
    const input = this.#validate(request);
    const secrets = this.#secretsOfInput(request.kind, request.target, input);
    // Stored and answered without its secrets (a run that pauses holding one cannot resume: see resume;
    // pass secrets a later task needs through its tool's env or config instead).
    const storedInput = redactValue(input, secretForms(secrets));
    const id = randomUUID();
    const createdAt = Date.now();
    // The run's span starts at acceptance, child of the request, so the record knows its trace id.
    const callerKeyId = request.callerKeyId ?? null;
    const runSpan = this.#o.telemetry.startSpan(RUN_SPANS[request.kind], {
      'switchyard.execution.id': id, [TARGET_ATTRIBUTES[request.kind]]: request.target, 'switchyard.trigger': request.trigger,
      ...(callerKeyId === null ? {} : { 'switchyard.caller.key_id': callerKeyId }),
    });
    const traceparent = traceparentOf(runSpan);
    const traceId = traceparent && runSpan.spanContext().traceId;
    try {
      await this.#o.store.createExecution({
        id, kind: request.kind, target: request.target, trigger: request.trigger, input: storedInput,
        traceId, traceparent, parentExecutionId: request.parentExecutionId ?? null, callerKeyId, ownerId: this.#o.instanceId, createdAt,
      });
    } catch (error) {
      this.#o.telemetry.markFailed(runSpan, error);
      this.#o.telemetry.endSpan(runSpan);
      throw error;
    }
    const live: LiveExecution = {
      id, kind: request.kind, target: request.target, trigger: request.trigger, createdAt,
      state: 'pending', startedAt: createdAt, abort: new AbortController(), done: Promise.resolve(), secrets: new Set(secrets),
    };
    this.#live.set(id, live);
    live.done = this.#run(live, { input, fromTask: 0, taskOutputs: {} }, runSpan);
    // The run has not started yet (it waits for the next tick): the record is what was just written.
    return {
      id, kind: request.kind, target: request.target, status: 'pending', trigger: request.trigger, input: storedInput, output: null, error: null,
      createdAt, startedAt: null, endedAt: null, heartbeatAt: createdAt, traceId, traceparent, parentExecutionId: request.parentExecutionId ?? null, callerKeyId,
      ownerId: this.#o.instanceId, lastStartedTask: null, lastCompletedTask: null, lastCompletedSuccess: null,
      finalizationPath: null, completionFailure: null, taskOutputs: {},
    };
  }

  /** Starts an execution and waits for it, inside the kind's sync span. */
  async executeSync(request: StartRequest, timeoutMs: number): Promise<WaitResult> {
    const syncSpan = request.kind === 'workflow' ? 'workflowExecuteSync' : request.kind === 'task' ? 'taskExecuteSync' : undefined;
    const attributes = request.kind === 'workflow'
      ? { 'switchyard.workflow.id': request.target, timeout_ms: timeoutMs }
      : { 'switchyard.task.id': request.target, timeout_ms: timeoutMs };
    const startAndWait = async (span?: Span) => {
      const record = await this.start(request);
      span?.setAttribute('switchyard.execution.id', record.id);
      return this.waitForCompletion(record.id, timeoutMs, request.kind === 'workflow' ? request.target : undefined);
    };
    return syncSpan ? this.#o.telemetry.inSpan(syncSpan, attributes, startAndWait) : startAndWait();
  }

  /**
   * Waits until the execution is terminal or paused, or `timeoutMs` passes. Woken by the completion
   * itself; a fallback poll with backoff covers completions this process cannot see (a sweeper or a
   * cancel on another engine sharing the database) and a wake-up that was somehow missed.
   */
  async waitForCompletion(id: string, timeoutMs: number, workflowId?: string): Promise<WaitResult> {
    const { telemetry, store } = this.#o;
    const startedAt = performance.now();
    return telemetry.inSpan('workflowWaitCompletion', { 'switchyard.execution.id': id }, async (span) => {
      const deadline = Date.now() + timeoutMs;
      let attempt = 0;
      let backoff = this.#o.waitFallbackFirstMs ?? WAIT_FALLBACK_FIRST_MS;
      let outcome: 'completed' | 'timeout' | 'error' = 'error';
      try {
        for (;;) {
          const subscription = this.#completions.subscribe(id);
          try {
            const record = await store.getExecution(id);
            attempt++;
            if (!record) throw new NotFoundError(`execution "${id}" does not exist`);
            span.addEvent('poll_iteration', { attempt, state: record.status });
            const remaining = deadline - Date.now();
            if (TERMINAL.has(record.status) || record.status === 'paused' || remaining <= 0) {
              outcome = remaining <= 0 && !(TERMINAL.has(record.status) || record.status === 'paused') ? 'timeout' : 'completed';
              return { record, completed: outcome === 'completed' };
            }
            let timer: NodeJS.Timeout | undefined;
            const fallback = new Promise<void>((resolve) => {
              timer = setTimeout(resolve, Math.min(backoff, remaining));
            });
            await Promise.race([subscription.completed, fallback]);
            clearTimeout(timer);
            backoff = Math.max(backoff, Math.min(backoff * 2, WAIT_FALLBACK_MAX_MS));
          } finally {
            subscription.unsubscribe();
          }
        }
      } finally {
        span.setAttributes({ total_iterations: attempt, outcome });
        if (workflowId !== undefined) {
          telemetry.add('workflowSyncPolls', attempt, { workflow_id: workflowId, outcome });
          telemetry.record('workflowSyncPollDuration', (performance.now() - startedAt) / 1000, { workflow_id: workflowId });
        }
      }
    });
  }

  /** Cancels a pending, running or paused execution; resolves with its final record. */
  async cancel(id: string): Promise<ExecutionRecord> {
    const record = await this.#o.store.getExecution(id);
    if (!record) throw new NotFoundError(`execution "${id}" does not exist`);
    if (TERMINAL.has(record.status)) throw new ConflictError(`execution "${id}" already finished with status ${record.status}`, record);
    const live = this.#live.get(id);
    if (live) {
      live.abort.abort(new StopSignal('canceled', 'canceled by request'));
      await live.done;
    } else {
      // Paused, or owned by another engine process: the conditional write decides; the owner's own
      // finalize will then find the run terminal and change nothing.
      await this.#finalize(record, { status: 'canceled', path: 'canceled', error: { message: 'canceled by request', code: 'canceled' } });
    }
    return (await this.#o.store.getExecution(id))!;
  }

  /** Continues a paused workflow from the task after its pause. */
  async resume(id: string): Promise<ExecutionRecord> {
    if (!this.#accepting) throw new UnavailableError('the engine is shutting down and accepts no new executions');
    const record = await this.#o.store.getExecution(id);
    if (!record) throw new NotFoundError(`execution "${id}" does not exist`);
    const workflow = record.kind === 'workflow' ? this.#o.definitions.workflows.get(record.target) : undefined;
    if (record.status !== 'paused' || !workflow) throw new ConflictError(`execution "${id}" is ${record.status}, only a paused workflow can resume`, record);
    // Secrets are never stored, so a run that held one resumes without it: refused, rather than going on
    // with "[REDACTED]" where a later task expects the secret. It stays paused (cancel it, or start anew).
    if (JSON.stringify([record.input, record.taskOutputs]).includes(REDACTED)) {
      throw new ConflictError(`execution "${id}" held secret values, which are not kept across a pause (secrets are never stored): cancel it and start a new run, or give the task its secret through its tool's environment`, record);
    }
    if (!(await this.#o.store.resume(id, this.#o.instanceId, Date.now()))) {
      throw new ConflictError(`execution "${id}" is no longer paused`, (await this.#o.store.getExecution(id))!);
    }
    const pausedAt = workflow.tasks.findIndex((task) => task.id === record.lastCompletedTask);
    const live: LiveExecution = {
      id, kind: record.kind, target: record.target, trigger: record.trigger, createdAt: Date.now(),
      state: 'running', startedAt: Date.now(), abort: new AbortController(), done: Promise.resolve(), secrets: new Set(),
    };
    this.#live.set(id, live);
    // The resumed leg continues the run's trace (the record's trace id stays the one to look up).
    const runSpan = this.#o.telemetry.startSpan('workflowExecute', {
      'switchyard.execution.id': id, 'switchyard.workflow.id': record.target, 'switchyard.trigger': record.trigger, 'switchyard.resumed': true,
      ...(record.callerKeyId === null ? {} : { 'switchyard.caller.key_id': record.callerKeyId }),
    }, record.traceparent);
    live.done = this.#run(live, { input: record.input, fromTask: pausedAt + 1, taskOutputs: record.taskOutputs }, runSpan);
    return (await this.#o.store.getExecution(id))!;
  }

  /** Finalizes every run whose engine stopped sending heartbeats. Safe on several processes at once. */
  async sweepStale(now = Date.now()): Promise<number> {
    const { store, telemetry, logger, staleAfterMs } = this.#o;
    try {
      const swept = await store.sweepStale(now - staleAfterMs, now);
      for (const { record, previousStatus } of swept) {
        telemetry.add('workflowExecutionsSwept', 1, { previous_status: previousStatus });
        if (record.kind === 'workflow') telemetry.add('workflowExecutionsCompleted', 1, { trigger: record.trigger, status: 'failed' });
        logger.warn({ execution_id: record.id, previous_status: previousStatus, last_started_task: record.lastStartedTask }, 'swept a stale execution: its engine stopped sending heartbeats');
        this.#completions.notify(record.id);
      }
      return swept.length;
    } catch (error) {
      logger.error({ err: error }, 'sweeping stale executions failed');
      return 0;
    }
  }

  /** Stops accepting work, lets live runs finish for `graceMs`, then fails the rest (force_failed). */
  async shutdown(graceMs: number): Promise<void> {
    this.#accepting = false;
    for (const timer of this.#timers) clearInterval(timer);
    const pending = [...this.#live.values()].map((live) => live.done);
    if (pending.length > 0) {
      this.#o.logger.info({ in_flight: pending.length, grace_ms: graceMs }, 'waiting for in-flight executions before shutdown');
      const graceOver = sleep(graceMs).then(() => 'grace_over' as const);
      if ((await Promise.race([Promise.all(pending), graceOver])) === 'grace_over') {
        for (const live of this.#live.values()) live.abort.abort(new StopSignal('shutdown', 'the engine shut down before the execution finished'));
        await Promise.all([...this.#live.values()].map((live) => live.done));
      }
    }
  }

  #validate(request: StartRequest): unknown {
    const { definitions } = this.#o;
    if (request.kind === 'workflow') {
      const workflow = definitions.workflows.get(request.target);
      if (!workflow) throw new NotFoundError(`workflow "${request.target}" is not defined`);
      const check = workflow.validateInput(request.input);
      if (!check.ok) throw new InvalidInputError(`input does not match the input schema of workflow "${request.target}"`, check.problems);
      return check.value;
    }
    const known = request.kind === 'task' ? definitions.tasks : definitions.agents;
    if (!known.has(request.target)) throw new NotFoundError(`${request.kind} "${request.target}" is not defined`);
    return request.input;
  }

  /**
   * The secret values a run's input carries, known before it runs: what its tool tasks' input templates
   * put into their tools' secret_inputs. (Agents choose their tools' inputs at run time; those secrets
   * are collected as the calls happen.)
   */
  #secretsOfInput(kind: ExecutionKind, target: string, input: unknown): string[] {
    const { definitions } = this.#o;
    const tasks = kind === 'task' ? [definitions.tasks.get(target)!] : kind === 'workflow' ? definitions.workflows.get(target)!.tasks : [];
    const secrets: string[] = [];
    for (const task of tasks) {
      const tool = task.tool === undefined ? undefined : definitions.tools.get(task.tool);
      if (!tool?.secretInputs?.length) continue;
      const rendered = render(task.input ?? (kind === 'task' ? '{{ input }}' : {}), { input, tasks: {} });
      secrets.push(...secretInputValues(tool.secretInputs, rendered));
    }
    return secrets;
  }

  async #run(live: LiveExecution, plan: RunPlan, span: Span): Promise<void> {
    // Let start() answer first: the run proceeds on the next turn of the event loop.
    await new Promise((resolve) => setImmediate(resolve));
    const { telemetry, store } = this.#o;
    const deadline = this.#deadline(live);
    try {
      await telemetry.runInSpan(span, async () => {
        try {
          live.state = 'running';
          live.startedAt = Date.now();
          if (plan.fromTask === 0) {
            await store.markRunning(live.id, live.startedAt);
            telemetry.record('executionQueueWait', (live.startedAt - live.createdAt) / 1000, { kind: live.kind });
            if (live.kind === 'workflow') telemetry.add('workflowExecutionsStarted', 1, { trigger: live.trigger });
          }
          const result = await this.#execute(live, plan);
          span.setAttribute('switchyard.execution.status', result.paused ? 'paused' : 'success');
          if (result.paused) await this.#finalize(live, { status: 'paused', path: 'paused' });
          else await this.#finalize(live, { status: 'success', path: 'completed', output: result.output });
        } catch (error) {
          const ending = this.#endingFor(live, error);
          span.setAttribute('switchyard.execution.status', ending.status);
          await this.#finalize(live, ending);
          throw error;
        }
      });
    } catch {
      // Already finalized as failed; the span recorded the error.
    } finally {
      clearTimeout(deadline);
      this.#live.delete(live.id);
    }
  }

  /** Arms the run's own timeout (a workflow's timeout_ms, an agent's timeout_ms; a task enforces its own). */
  #deadline(live: LiveExecution): NodeJS.Timeout | undefined {
    const timeoutMs = live.kind === 'task' ? undefined : this.#timeoutMs(live);
    if (timeoutMs === undefined) return undefined;
    return setTimeout(() => live.abort.abort(new StopSignal('timed_out', `execution exceeded its timeout of ${timeoutMs} ms`)), timeoutMs).unref();
  }

  async #execute(live: LiveExecution, plan: RunPlan): Promise<{ output?: unknown; paused?: boolean }> {
    const { definitions } = this.#o;
    if (live.kind === 'agent') return { output: await runAgent(live.target, plan.input, this.#agentContext(live, live.abort.signal)) };
    if (live.kind === 'task') {
      const task = definitions.tasks.get(live.target)!;
      return { output: await this.#runTask(live, task, render(task.input ?? '{{ input }}', { input: plan.input }), 0) };
    }
    const workflow = definitions.workflows.get(live.target)!;
    const tasks: Record<string, { output: unknown }> = {};
    for (const [taskId, output] of Object.entries(plan.taskOutputs)) tasks[taskId] = { output };
    let last: unknown = null;
    for (let index = plan.fromTask; index < workflow.tasks.length; index++) {
      live.abort.signal.throwIfAborted();
      const task = workflow.tasks[index]!;
      const context = { input: plan.input, tasks };
      if (task.pause) {
        await this.#o.store.markTaskStarted(live.id, task.id, index);
        await this.#o.store.markTaskCompleted(live.id, task.id, index, true, null);
        this.#o.telemetry.add('workflowTaskExecutions', 1, { task_type: 'pause', operation: task.id, outcome: 'paused' });
        this.#o.telemetry.add('workflowExecutionsPaused', 1, { trigger: live.trigger });
        return { paused: true };
      }
      last = await this.#o.telemetry.inSpan('taskExecute', {
        'switchyard.task.id': task.id, 'switchyard.task.type': task.tool ? 'tool' : 'agent', 'switchyard.execution.id': live.id,
      }, () => this.#runTask(live, task, render(task.input ?? {}, context), index));
      tasks[task.id] = { output: last };
    }
    return { output: workflow.output === undefined ? last : render(workflow.output, { input: plan.input, tasks }) };
  }

  /** Runs one tool or agent task with its markers, metrics and timeout. */
  async #runTask(live: LiveExecution, task: TaskDefinition, input: unknown, sequence: number): Promise<unknown> {
    const { store, telemetry, definitions, runtime } = this.#o;
    const taskType = task.tool ? 'tool' : 'agent';
    const operation = task.tool ?? task.agent ?? task.id;
    const started = performance.now();
    await store.markTaskStarted(live.id, task.id, sequence);
    const timeout = new AbortController();
    const timer = task.timeout_ms === undefined || task.tool
      ? undefined
      : setTimeout(() => timeout.abort(new StopSignal('timed_out', `task "${task.id}" exceeded its timeout of ${task.timeout_ms} ms`)), task.timeout_ms).unref();
    const signal = AbortSignal.any([live.abort.signal, timeout.signal]);
    let outcome: 'success' | 'failed' | 'timed_out' | 'canceled' = 'failed';
    try {
      let output: unknown;
      if (task.tool) {
        const tool = definitions.tools.get(task.tool)!;
        for (const secret of secretInputValues(tool.secretInputs, input)) live.secrets.add(secret);
        const result = await runtime.execute({ tool, executionId: live.id, input, timeoutMs: task.timeout_ms ?? tool.timeoutMs, signal });
        signal.throwIfAborted();
        if (!result.ok) {
          if (result.error.kind === 'timeout') outcome = 'timed_out';
          throw new ExecutionFailure(`task "${task.id}": tool "${tool.id}" failed (${result.error.kind}): ${result.error.message}`, `tool_${result.error.kind}`, task.id);
        }
        output = result.result;
      } else {
        output = await runAgent(task.agent!, input, this.#agentContext(live, signal));
      }
      outcome = 'success';
      await store.markTaskCompleted(live.id, task.id, sequence, true, redactValue(output, secretForms(live.secrets)));
      return output;
    } catch (error) {
      const stop = stopReasonOf(signal);
      if (stop) outcome = stop === 'timed_out' ? 'timed_out' : 'canceled';
      await store.markTaskCompleted(live.id, task.id, sequence, false, null);
      if (timeout.signal.aborted && !live.abort.signal.aborted) {
        throw new ExecutionFailure((timeout.signal.reason as Error).message, 'task_timeout', task.id);
      }
      throw error;
    } finally {
      clearTimeout(timer);
      telemetry.add('workflowTaskExecutions', 1, { task_type: taskType, operation, outcome });
      telemetry.record('workflowTaskDuration', (performance.now() - started) / 1000, { task_type: taskType, outcome });
    }
  }

  #agentContext(live: LiveExecution, signal: AbortSignal) {
    const { telemetry, runtime, definitions, providers, prices } = this.#o;
    const workflowId = live.kind === 'workflow' ? live.target : undefined;
    return { telemetry, runtime, definitions, providers, executionId: live.id, signal, prices, workflowId };
  }

  /** How a run that threw ends: the abort reason if it was stopped, else failed with the error's code. */
  #endingFor(live: LiveExecution, error: unknown): { status: TerminalStatus; path: FinalizationPath; error: ExecutionError } {
    const stop = stopReasonOf(live.abort.signal);
    const message = stop ? (live.abort.signal.reason as Error).message : error instanceof Error ? error.message : String(error);
    if (stop === 'canceled') return { status: 'canceled', path: 'canceled', error: { message, code: 'canceled' } };
    if (stop === 'timed_out') return { status: 'timed_out', path: 'completed', error: { message, code: 'timeout' } };
    if (stop === 'shutdown') return { status: 'failed', path: 'force_failed', error: { message, code: 'shutdown' } };
    if (error instanceof ExecutionFailure) {
      return { status: 'failed', path: 'completed', error: { message, code: error.code, ...(error.taskId ? { taskId: error.taskId } : {}) } };
    }
    // Not a failure the engine knows how to name: a bug. Fail the run rather than leave it running.
    this.#o.logger.error({ err: error, execution_id: live.id }, 'execution failed unexpectedly');
    return { status: 'failed', path: 'force_failed', error: { message, code: 'internal' } };
  }

  /**
   * The one way a run ends. The store write is conditional; only the caller whose write changed the run
   * counts it. If the write itself fails (say, an output that cannot be stored), a fallback write
   * without the output records the run as failed, with what went wrong as its completion failure.
   */
  async #finalize(
    run: Pick<LiveExecution, 'id' | 'kind' | 'trigger'> & { startedAt?: number | null; secrets?: ReadonlySet<string> },
    unredacted: { status: TerminalStatus | 'paused'; path: FinalizationPath; output?: unknown; error?: ExecutionError },
  ): Promise<void> {
    const { store, telemetry, logger } = this.#o;
    // What is stored (and so answered) carries no secret the run saw, in any escaped form.
    const forms = secretForms(run.secrets ?? []);
    const ending = forms.length === 0 ? unredacted : { ...unredacted, output: redactValue(unredacted.output, forms), error: redactValue(unredacted.error, forms) };
    const endedAt = Date.now();
    let applied = false;
    let status = ending.status;
    try {
      applied = await store.finalize(run.id, { ...ending, endedAt });
    } catch (error) {
      const failure = `recording the ${ending.status} completion failed: ${(error as Error).message}`;
      logger.error({ err: error, execution_id: run.id }, 'finalizing an execution failed; recording a fallback completion');
      status = 'failed';
      try {
        applied = await store.finalize(run.id, {
          status, path: 'fallback_completed', endedAt, completionFailure: failure,
          error: { message: failure, code: 'completion_failed' },
        });
      } catch (fallbackError) {
        logger.error({ err: fallbackError, execution_id: run.id }, 'fallback completion failed too; the sweeper will finalize the execution');
      }
    }
    if (applied && run.kind === 'workflow' && status !== 'paused') {
      telemetry.add('workflowExecutionsCompleted', 1, { trigger: run.trigger, status });
      if (run.startedAt) telemetry.record('workflowExecutionDuration', (endedAt - run.startedAt) / 1000, { trigger: run.trigger, status });
    }
    this.#completions.notify(run.id);
  }

  async #heartbeat(): Promise<void> {
    if (this.#live.size === 0) return;
    try {
      await this.#o.store.heartbeat(this.#o.instanceId, Date.now());
    } catch (error) {
      this.#o.logger.error({ err: error }, 'heartbeat write failed');
    }
  }

  /** A run's own time limit: a workflow's or an agent's timeout_ms; a task's, else its tool's or agent's. */
  #timeoutMs(live: LiveExecution): number | undefined {
    const { definitions } = this.#o;
    if (live.kind === 'workflow') return definitions.workflows.get(live.target)?.timeout_ms;
    if (live.kind === 'agent') return definitions.agents.get(live.target)?.timeout_ms;
    const task = definitions.tasks.get(live.target);
    if (task?.timeout_ms !== undefined) return task.timeout_ms;
    if (task?.tool) return definitions.tools.get(task.tool)?.timeoutMs;
    return task?.agent ? definitions.agents.get(task.agent)?.timeout_ms : undefined;
  }

  #gaugeReadings() {
    const now = Date.now();
    const inFlight: GaugeReading<'executionsInFlight'>[] = [];
    const oldest: GaugeReading<'executionsOldestRunningAge'>[] = [];
    const deadlineUsed: GaugeReading<'executionsDeadlineUsed'>[] = [];
    for (const kind of EXECUTION_KINDS) {
      let pending = 0;
      let running = 0;
      let oldestStart = now;
      let mostUsed = 0;
      for (const live of this.#live.values()) {
        if (live.kind !== kind) continue;
        if (live.state === 'pending') pending++;
        else {
          running++;
          oldestStart = Math.min(oldestStart, live.startedAt);
          const timeoutMs = this.#timeoutMs(live);
          if (timeoutMs) mostUsed = Math.max(mostUsed, (now - live.startedAt) / timeoutMs);
        }
      }
      inFlight.push({ labels: { kind, state: 'pending' }, value: pending }, { labels: { kind, state: 'running' }, value: running });
      oldest.push({ labels: { kind }, value: (now - oldestStart) / 1000 });
      deadlineUsed.push({ labels: { kind }, value: mostUsed });
    }
    const toolTimeouts = [...this.#o.definitions.tools.values()].map((tool) => ({ labels: { tool_id: tool.id }, value: tool.timeoutMs / 1000 }));
    return { executionsInFlight: inFlight, executionsOldestRunningAge: oldest, executionsDeadlineUsed: deadlineUsed, toolTimeout: toolTimeouts };
  }
}
