import { isSpanContextValid, type Span } from '@opentelemetry/api';
import type { Logger } from 'pino';
import { STOP_ENDINGS, toolFailureCode, type ExecutionKind, type TaskOutcome, type Trigger } from '../domain.ts';
import type { Store } from '../store/store.ts';
import type { Telemetry } from '../telemetry/recorder.ts';
import type { ModelProvider } from './agent/model.ts';
import { runAgent, type AgentRunContext } from './agent/run-agent.ts';
import type { Definitions, TaskDefinition } from './definitions.ts';
import { ExecutionFailure, StopSignal, stopReasonOf } from './errors.ts';
import type { Ending, Finalizer } from './finalizer.ts';
import type { PriceTable } from './prices.ts';
import type { ToolRuntime } from './runtime/tool-runtime.ts';
import { redactValue, secretForms, templateSecretValues } from './secrets.ts';
import { render, type TemplateContext } from './templates.ts';

/** A run this engine process is working on. */
export interface LiveExecution {
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
  /** Bytes of JSON the store holds for the run so far (its input and task outputs), against the execution data limit. */
  storedBytes: number;
}

export interface RunPlan {
  readonly input: unknown;
  /** Index of the first task to run (beyond 0 when a paused workflow resumes). */
  readonly fromTask: number;
  readonly taskOutputs: Record<string, unknown>;
}

/** What running executions needs: the engine's options share them. */
export interface RunDependencies {
  readonly store: Store;
  readonly definitions: Definitions;
  readonly runtime: ToolRuntime;
  readonly telemetry: Telemetry;
  readonly providers: ReadonlyMap<string, ModelProvider>;
  /** Model prices (the project's prices.yaml), for the cost of agents' model calls. */
  readonly prices?: PriceTable;
  readonly logger: Logger;
  /** This engine process: a run goes on only while the store says this process owns it. */
  readonly instanceId: string;
  /**
   * Most bytes of JSON one execution may store: its input, its task outputs and its output together
   * (SWITCHYARD_EXECUTION_DATA_LIMIT_BYTES). A task output or an output that would pass it fails the run with
   * code `data_limit` instead of being stored. Absent: no limit.
   */
  readonly executionDataLimitBytes?: number;
}

/** The bytes of JSON the store keeps for a value (what the limit counts; the store serializes the same way). */
export function storedSize(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value) ?? 'null');
}

export interface InterpreterOptions extends RunDependencies {
  readonly finalizer: Finalizer;
}

/** Why an owner stops a run it no longer owns: someone else ended it, and its write stands. */
export const ENDED_ELSEWHERE = 'the execution was ended elsewhere (canceled, or swept as stale) and does nothing more';

/**
 * Stops a run this process learned was ended elsewhere (a refused write, or the heartbeat's answer, whichever
 * comes first), once, with one log line that tells the operator why the run stopped here.
 */
export function stopEndedElsewhere(live: LiveExecution, logger: Logger): void {
  if (live.abort.signal.aborted) return;
  logger.warn({ execution_id: live.id }, 'stopping an execution that was ended elsewhere (canceled, or swept as stale)');
  live.abort.abort(new StopSignal('canceled', ENDED_ELSEWHERE));
}

/**
 * Runs one execution: a workflow's tasks in order, a task, or an agent; writes its task markers; ends it
 * through the finalizer. Every marker write is conditional on this process still owning a running run, so
 * the moment a cancel or a sweep has ended the run in the store, the run starts and records no further task.
 */
export class Interpreter {
  readonly #o: InterpreterOptions;

  constructor(options: InterpreterOptions) {
    this.#o = options;
  }

  async run(live: LiveExecution, plan: RunPlan, span: Span): Promise<void> {
    // Let start() answer first: the run proceeds on the next turn of the event loop.
    await new Promise((resolve) => setImmediate(resolve));
    const { telemetry, store, finalizer } = this.#o;
    const deadline = this.#deadline(live);
    const traceId = isSpanContextValid(span.spanContext()) ? span.spanContext().traceId : null;
    try {
      await telemetry.runInSpan(span, async () => {
        try {
          live.abort.signal.throwIfAborted();
          live.state = 'running';
          live.startedAt = Date.now();
          if (plan.fromTask === 0) {
            this.#stillOwned(live, await store.markRunning(live.id, this.#o.instanceId, live.startedAt));
            telemetry.record('executionQueueWait', (live.startedAt - live.createdAt) / 1000, { kind: live.kind });
            if (live.kind === 'workflow') telemetry.add('workflowExecutionsStarted', 1, { trigger: live.trigger });
          }
          const result = await this.#execute(live, plan);
          if (!result.paused) this.#withinDataLimit(live, result.output, 'its output');
          span.setAttribute('switchyard.execution.status', result.paused ? 'paused' : 'success');
          await finalizer.finalize({ ...live, traceId }, result.paused ? { status: 'paused', path: 'paused' } : { status: 'success', path: 'completed', output: result.output });
        } catch (error) {
          const ending = this.#endingFor(live, error);
          span.setAttribute('switchyard.execution.status', ending.status);
          // Conditional: when a cancel or a sweep ended the run first, this write changes nothing.
          await finalizer.finalize({ ...live, traceId }, ending);
          throw error;
        }
      });
    } catch {
      // Finalized above; the span recorded the error.
    } finally {
      clearTimeout(deadline);
    }
  }

  /** A run's own time limit: a workflow's or an agent's timeout_ms; a task's, else its tool's or agent's. */
  timeoutMs(live: Pick<LiveExecution, 'kind' | 'target'>): number | undefined {
    const { definitions } = this.#o;
    if (live.kind === 'workflow') return definitions.workflows.get(live.target)?.timeout_ms;
    if (live.kind === 'agent') return definitions.agents.get(live.target)?.timeout_ms;
    const task = definitions.tasks.get(live.target);
    if (task?.timeout_ms !== undefined) return task.timeout_ms;
    if (task?.tool) return definitions.tools.get(task.tool)?.timeoutMs;
    return task?.agent ? definitions.agents.get(task.agent)?.timeout_ms : undefined;
  }

  /**
   * The size of a value the run is about to store; throws a `data_limit` failure when it would bring the run's
   * stored data past the execution data limit (nothing of it is stored then).
   */
  #withinDataLimit(live: LiveExecution, value: unknown, what: string, taskId?: string): number {
    const limit = this.#o.executionDataLimitBytes;
    if (limit === undefined) return 0;
    const size = storedSize(value);
    if (live.storedBytes + size > limit) {
      throw new ExecutionFailure(`${what} is ${size} bytes of JSON, which would bring the execution's stored data to ${live.storedBytes + size} bytes, `
        + `over the limit of ${limit} (SWITCHYARD_EXECUTION_DATA_LIMIT_BYTES); it was not stored`, 'data_limit', taskId);
    }
    return size;
  }

  /** Stops the run when the store refused a write because the run is no longer this process's to run. */
  #stillOwned(live: LiveExecution, owned: boolean): void {
    if (owned) return;
    stopEndedElsewhere(live, this.#o.logger);
    live.abort.signal.throwIfAborted();
  }

  /** Arms the run's own timeout (a workflow's timeout_ms, an agent's timeout_ms; a task enforces its own). */
  #deadline(live: LiveExecution): NodeJS.Timeout | undefined {
    const timeoutMs = live.kind === 'task' ? undefined : this.timeoutMs(live);
    if (timeoutMs === undefined) return undefined;
    return setTimeout(() => live.abort.abort(new StopSignal('timed_out', `execution exceeded its timeout of ${timeoutMs} ms`)), timeoutMs).unref();
  }

  async #execute(live: LiveExecution, plan: RunPlan): Promise<{ output?: unknown; paused?: boolean }> {
    const { definitions, store, telemetry } = this.#o;
    if (live.kind === 'agent') return { output: await runAgent(live.target, plan.input, this.#agentContext(live, live.abort.signal)) };
    if (live.kind === 'task') {
      const task = definitions.tasks.get(live.target)!;
      const context = { input: plan.input };
      return { output: await this.#runTask(live, task, render(task.input ?? '{{ input }}', context), context, 0) };
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
        this.#stillOwned(live, await store.markTaskStarted(live.id, this.#o.instanceId, task.id, index));
        this.#stillOwned(live, await store.markTaskCompleted(live.id, this.#o.instanceId, task.id, index, true, null));
        telemetry.add('workflowTaskExecutions', 1, { task_type: 'pause', operation: task.id, outcome: 'paused' });
        telemetry.add('workflowExecutionsPaused', 1, { trigger: live.trigger });
        return { paused: true };
      }
      last = await telemetry.inSpan('taskExecute', {
        'switchyard.task.id': task.id, 'switchyard.task.type': task.tool ? 'tool' : 'agent', 'switchyard.execution.id': live.id,
      }, () => this.#runTask(live, task, render(task.input ?? {}, context), context, index));
      tasks[task.id] = { output: last };
    }
    return { output: workflow.output === undefined ? last : render(workflow.output, { input: plan.input, tasks }) };
  }

  /** Runs one tool or agent task (its input rendered from `context`) with its markers, metrics and timeout. */
  async #runTask(live: LiveExecution, task: TaskDefinition, input: unknown, context: TemplateContext, sequence: number): Promise<unknown> {
    const { store, telemetry, definitions, runtime, instanceId } = this.#o;
    const taskType = task.tool ? 'tool' : 'agent';
    const operation = task.tool ?? task.agent ?? task.id;
    const started = performance.now();
    // Nothing runs unless the store still has the run running under this process.
    this.#stillOwned(live, await store.markTaskStarted(live.id, instanceId, task.id, sequence));
    const timeout = new AbortController();
    const timer = task.timeout_ms === undefined || task.tool
      ? undefined
      : setTimeout(() => timeout.abort(new StopSignal('timed_out', `task "${task.id}" exceeded its timeout of ${task.timeout_ms} ms`)), task.timeout_ms).unref();
    const signal = AbortSignal.any([live.abort.signal, timeout.signal]);
    let outcome: TaskOutcome = 'failed';
    try {
      let output: unknown;
      if (task.tool) {
        const tool = definitions.tools.get(task.tool)!;
        const known = live.secrets.size;
        for (const secret of templateSecretValues(tool.secretInputs, task.input, context, input)) live.secrets.add(secret);
        if (live.secrets.size > known) await this.#secretsLearned(live);
        const result = await runtime.execute({ tool, executionId: live.id, input, timeoutMs: task.timeout_ms ?? tool.timeoutMs, signal, secrets: live.secrets });
        signal.throwIfAborted();
        if (!result.ok) {
          if (result.error.kind === 'timeout') outcome = 'timed_out';
          throw new ExecutionFailure(`task "${task.id}": tool "${tool.id}" failed (${result.error.kind}): ${result.error.message}`, toolFailureCode(result.error.kind), task.id);
        }
        output = result.result;
      } else {
        output = await runAgent(task.agent!, input, this.#agentContext(live, signal));
      }
      const stored = redactValue(output, secretForms(live.secrets));
      live.storedBytes += this.#withinDataLimit(live, stored, `the output of task "${task.id}"`, task.id);
      this.#stillOwned(live, await store.markTaskCompleted(live.id, instanceId, task.id, sequence, true, stored));
      outcome = 'success';
      return output;
    } catch (error) {
      const stop = stopReasonOf(signal);
      if (stop) outcome = stop === 'timed_out' ? 'timed_out' : 'canceled';
      // Refused when the run was ended elsewhere: the failure marker is not this process's to write then.
      if (!live.abort.signal.aborted) await store.markTaskCompleted(live.id, instanceId, task.id, sequence, false, null);
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

  #agentContext(live: LiveExecution, signal: AbortSignal): AgentRunContext {
    const { telemetry, runtime, definitions, providers, prices } = this.#o;
    const workflowId = live.kind === 'workflow' ? live.target : undefined;
    return {
      telemetry, runtime, definitions, providers, executionId: live.id, signal, prices, workflowId,
      secrets: live.secrets, onSecretsLearned: () => this.#secretsLearned(live),
    };
  }

  /**
   * The run met a secret it did not know (a tool call's secret input that came from an earlier task's
   * output, or that a model chose): what is stored of it already (its input, the task outputs so far) was
   * written before, so it is redacted again. Output, error and later task outputs are redacted as written.
   */
  async #secretsLearned(live: LiveExecution): Promise<void> {
    const record = await this.#o.store.getExecution(live.id);
    if (!record) return;
    const forms = secretForms(live.secrets);
    const input = redactValue(record.input, forms);
    const taskOutputs = redactValue(record.taskOutputs, forms);
    if (JSON.stringify([input, taskOutputs]) !== JSON.stringify([record.input, record.taskOutputs])) {
      await this.#o.store.replaceData(live.id, input, taskOutputs);
    }
  }

  /** How a run that threw ends: the stop reason's ending if it was stopped, else failed with the error's code. */
  #endingFor(live: LiveExecution, error: unknown): Ending {
    const stop = stopReasonOf(live.abort.signal);
    if (stop) {
      const { status, path, code } = STOP_ENDINGS[stop];
      return { status, path, error: { message: (live.abort.signal.reason as Error).message, code } };
    }
    const message = error instanceof Error ? error.message : String(error);
    if (error instanceof ExecutionFailure) {
      return { status: 'failed', path: 'completed', error: { message, code: error.code, ...(error.taskId ? { taskId: error.taskId } : {}) } };
    }
    // Not a failure the engine knows how to name: a bug. Fail the run rather than leave it running.
    this.#o.logger.error({ err: error, execution_id: live.id }, 'execution failed unexpectedly');
    return { status: 'failed', path: 'force_failed', error: { message, code: 'internal' } };
  }
}
