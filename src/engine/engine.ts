import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Span } from '@opentelemetry/api';
import { EXECUTION_KINDS, STOP_ENDINGS, isTerminal, type ExecutionKind, type Trigger } from '../domain.ts';
import type { Admission, ExecutionRecord, Store } from '../store/store.ts';
import { traceparentOf, type GaugeReading } from '../telemetry/recorder.ts';
import { CompletionNotifier } from './completion.ts';
import type { Definitions } from './definitions.ts';
import { ConflictError, InvalidInputError, NotFoundError, StopSignal, TooManyExecutionsError, UnavailableError } from './errors.ts';
import { Finalizer } from './finalizer.ts';
import { Interpreter, stopEndedElsewhere, storedSize, type LiveExecution, type RunDependencies, type RunPlan } from './interpreter.ts';
import { Retention } from './retention.ts';
import { REDACTED, redactValue, secretForms, templateSecretValues } from './secrets.ts';
import { waitForCompletion, type WaitResult } from './sync-wait.ts';
import { render } from './templates.ts';

export type { WaitResult } from './sync-wait.ts';

export interface EngineOptions extends RunDependencies {
  readonly heartbeatMs: number;
  readonly staleAfterMs: number;
  readonly sweepIntervalMs: number;
  /** First step of the fallback poll of a sync wait (doubles up to 2 s); the completion itself wakes waits sooner. */
  readonly waitFallbackFirstMs?: number;
  /**
   * Most executions one API key may have pending or running at once, across every engine sharing the store
   * (SWITCHYARD_MAX_IN_FLIGHT_PER_KEY); a start beyond it is refused (TooManyExecutionsError, 429). Absent: no limit.
   */
  readonly maxInFlightPerKey?: number;
  /** Deletion of ended executions past a retention period (SWITCHYARD_RETENTION_*); absent: they are kept. */
  readonly retention?: { readonly periodMs: number; readonly intervalMs: number; readonly batchSize: number };
}

/** What a refused start tells its caller to wait: one of its runs may end any moment, none is promised. */
export const RETRY_AFTER_SECONDS = 2;

export interface StartRequest {
  readonly kind: ExecutionKind;
  readonly target: string;
  readonly input: unknown;
  readonly trigger: Trigger;
  readonly parentExecutionId?: string | null;
  /** Id of the API key that asked for the run (never the key itself). */
  readonly callerKeyId?: string | null;
}

const RUN_SPANS = { workflow: 'workflowExecute', task: 'taskExecute', agent: 'agentExecute' } as const;
const TARGET_ATTRIBUTES = { workflow: 'switchyard.workflow.id', task: 'switchyard.task.id', agent: 'gen_ai.agent.name' } as const;

/**
 * The engine's lifecycle: starts, waits for, cancels, resumes and sweeps executions, and shuts down. The
 * interpreter runs them; every ending goes through the one finalizer, which writes the store conditionally
 * and counts only when its write won, so a run is recorded and counted exactly once whoever races it (a
 * cancel, the run itself, a sweeper or a cancel on another process sharing the database).
 */
export class Engine {
  readonly #o: EngineOptions;
  readonly #live = new Map<string, LiveExecution>();
  readonly #completions = new CompletionNotifier();
  readonly #finalizer: Finalizer;
  readonly #interpreter: Interpreter;
  readonly #timers: NodeJS.Timeout[] = [];
  readonly #retention: Retention | undefined;
  #accepting = true;

  constructor(options: EngineOptions) {
    this.#o = options;
    this.#retention = options.retention && new Retention({ ...options.retention, store: options.store, telemetry: options.telemetry, logger: options.logger });
    this.#finalizer = new Finalizer({ store: options.store, telemetry: options.telemetry, logger: options.logger, completions: this.#completions });
    this.#interpreter = new Interpreter({ ...options, finalizer: this.#finalizer });
    options.telemetry.setGaugeSource(() => this.#gaugeReadings());
  }

  get definitions(): Definitions {
    return this.#o.definitions;
  }

  get liveCount(): number {
    return this.#live.size;
  }

  /**
   * Starts the heartbeat of this process's runs, the sweeper of everyone's stale runs and, with a retention
   * period, the deletion of expired executions (a first pass at once: an engine restarted more often than the
   * interval still deletes).
   */
  startBackgroundWork(): void {
    const { heartbeatMs, sweepIntervalMs, retention } = this.#o;
    this.#timers.push(setInterval(() => void this.heartbeat(), heartbeatMs).unref());
    this.#timers.push(setInterval(() => void this.sweepStale(), sweepIntervalMs).unref());
    if (retention) {
      this.#timers.push(setTimeout(() => void this.deleteExpired(), 0).unref());
      this.#timers.push(setInterval(() => void this.deleteExpired(), retention.intervalMs).unref());
    }
  }

  /** Deletes the ended executions past the retention period (none without one); resolves with how many. */
  async deleteExpired(now = Date.now()): Promise<number> {
    return this.#retention?.deleteExpired(now) ?? 0;
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
    const inputBytes = this.#o.executionDataLimitBytes === undefined ? 0 : storedSize(storedInput);
    if (inputBytes > this.#o.executionDataLimitBytes!) {
      throw new InvalidInputError(`the input is ${inputBytes} bytes of JSON, over the execution data limit of ${this.#o.executionDataLimitBytes} bytes`, [
        `input: at most ${this.#o.executionDataLimitBytes} bytes (SWITCHYARD_EXECUTION_DATA_LIMIT_BYTES)`,
      ]);
    }
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
    const execution = {
      id, kind: request.kind, target: request.target, trigger: request.trigger, input: storedInput,
      traceId, traceparent, parentExecutionId: request.parentExecutionId ?? null, callerKeyId, ownerId: this.#o.instanceId, createdAt,
    };
    try {
      if (!(await this.#o.store.createExecution(execution, this.#admission()))) throw this.#tooMany(callerKeyId);
    } catch (error) {
      this.#o.telemetry.markFailed(runSpan, error);
      this.#o.telemetry.endSpan(runSpan);
      throw error;
    }
    this.#launch({ id, kind: request.kind, target: request.target, trigger: request.trigger, createdAt, state: 'pending', secrets: new Set(secrets), storedBytes: inputBytes },
      { input, fromTask: 0, taskOutputs: {} }, runSpan);
    // The run has not started yet (it waits for the next tick): the record is what was just written.
    return {
      ...execution, status: 'pending', output: null, error: null, startedAt: null, endedAt: null, heartbeatAt: createdAt,
      lastStartedTask: null, lastCompletedTask: null, lastCompletedSuccess: null, finalizationPath: null, previousStatus: null, completionFailure: null, taskOutputs: {},
    };
  }

  /** Starts an execution and waits for it, inside the kind's sync span. */
  async executeSync(request: StartRequest, timeoutMs: number): Promise<WaitResult> {
    const syncSpan = request.kind === 'workflow' ? 'workflowExecuteSync' : request.kind === 'task' ? 'taskExecuteSync' : undefined;
    const attributes = request.kind === 'workflow'
      ? { 'switchyard.workflow.id': request.target, 'switchyard.sync.timeout_ms': timeoutMs }
      : { 'switchyard.task.id': request.target, 'switchyard.sync.timeout_ms': timeoutMs };
    const startAndWait = async (span?: Span) => {
      const record = await this.start(request);
      span?.setAttribute('switchyard.execution.id', record.id);
      return this.waitForCompletion(record.id, timeoutMs, request.kind === 'workflow' ? request.target : undefined);
    };
    return syncSpan ? this.#o.telemetry.inSpan(syncSpan, attributes, startAndWait) : startAndWait();
  }

  /** Waits until the execution is terminal or paused, or `timeoutMs` passes (see sync-wait.ts). */
  async waitForCompletion(id: string, timeoutMs: number, workflowId?: string): Promise<WaitResult> {
    const { store, telemetry, waitFallbackFirstMs } = this.#o;
    return waitForCompletion({ store, telemetry, completions: this.#completions, fallbackFirstMs: waitFallbackFirstMs }, id, timeoutMs, workflowId);
  }

  /**
   * Cancels a pending, running or paused execution, wherever it runs; resolves with its final record. The
   * cancel is written first, conditionally: once it is in the store, the run's owner (this process or
   * another) can start or record no further task, whatever raced the cancel (a resume, the run's own
   * progress). A run of this process is then stopped at once (its tools killed); another process's run
   * stops at its next store write or heartbeat.
   */
  async cancel(id: string): Promise<ExecutionRecord> {
    const record = await this.#o.store.getExecution(id);
    if (!record) throw new NotFoundError(`execution "${id}" does not exist`);
    if (isTerminal(record.status)) throw new ConflictError(`execution "${id}" already finished with status ${record.status}`, record);
    const { status, path, code } = STOP_ENDINGS.canceled;
    const live = this.#live.get(id);
    const won = await this.#finalizer.finalize({ ...record, ...(live ?? {}) }, { status, path, error: { message: 'canceled by request', code } });
    this.#live.get(id)?.abort.abort(new StopSignal('canceled', 'canceled by request'));
    await this.#live.get(id)?.done;
    const final = (await this.#o.store.getExecution(id))!;
    if (!won && final.status !== 'canceled') throw new ConflictError(`execution "${id}" finished with status ${final.status} before the cancel`, final);
    return final;
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
    if (!(await this.#o.store.resume(id, this.#o.instanceId, Date.now(), this.#admission()))) {
      const now = (await this.#o.store.getExecution(id))!;
      // Still paused: the run's caller is at its limit (a resume counts like a start, or paused runs would bypass it).
      if (now.status === 'paused') throw this.#tooMany(now.callerKeyId);
      throw new ConflictError(`execution "${id}" is no longer paused`, now);
    }
    const pausedAt = workflow.tasks.findIndex((task) => task.id === record.lastCompletedTask);
    // The resumed leg continues the run's trace (the record's trace id stays the one to look up).
    const runSpan = this.#o.telemetry.startSpan('workflowExecute', {
      'switchyard.execution.id': id, 'switchyard.workflow.id': record.target, 'switchyard.trigger': record.trigger, 'switchyard.resumed': true,
      ...(record.callerKeyId === null ? {} : { 'switchyard.caller.key_id': record.callerKeyId }),
    }, record.traceparent);
    const storedBytes = this.#o.executionDataLimitBytes === undefined ? 0 : storedSize(record.input) + storedSize(record.taskOutputs);
    this.#launch({ id, kind: record.kind, target: record.target, trigger: record.trigger, createdAt: Date.now(), state: 'running', secrets: new Set(), storedBytes },
      { input: record.input, fromTask: pausedAt + 1, taskOutputs: record.taskOutputs }, runSpan);
    return (await this.#o.store.getExecution(id))!;
  }

  /**
   * Finalizes every run whose engine stopped sending heartbeats. Safe on several processes at once.
   *
   * This process's own live runs are alive by definition (it is running this code): their heartbeat is
   * written first, so a sweep never takes them even when this process was itself stalled past
   * `staleAfterMs` (a blocked event loop, a starved CPU, a SQLite lock another process held) and its
   * sweep timer fires before its heartbeat timer. Only a stalled process's runs are swept, by another.
   */
  async sweepStale(now = Date.now()): Promise<number> {
    const { store, logger, staleAfterMs } = this.#o;
    const { status, path, code } = STOP_ENDINGS.stale;
    await this.heartbeat();
    try {
      const swept = await store.sweepStale(now - staleAfterMs, {
        status, path, endedAt: now, error: { message: 'the engine running this execution stopped sending heartbeats', code },
      });
      this.#finalizer.swept(swept);
      return swept.length;
    } catch (error) {
      logger.error({ err: error }, 'sweeping stale executions failed');
      return 0;
    }
  }

  /**
   * Refreshes the heartbeat of this process's runs, and stops those the store says are no longer its own
   * (canceled by another process, or swept while this one was stalled): they do nothing more.
   */
  async heartbeat(): Promise<void> {
    if (this.#live.size === 0) return;
    // Only runs registered before the write can be judged by it (a run resumed meanwhile is not in its answer).
    const checked = [...this.#live.values()];
    try {
      const owned = new Set(await this.#o.store.heartbeat(this.#o.instanceId, Date.now()));
      for (const live of checked) {
        if (!owned.has(live.id) && this.#live.get(live.id) === live) stopEndedElsewhere(live, this.#o.logger);
      }
    } catch (error) {
      this.#o.logger.error({ err: error }, 'heartbeat write failed');
    }
  }

  /** Stops accepting work, lets live runs finish for `graceMs`, then fails the rest (force_failed). */
  async shutdown(graceMs: number): Promise<void> {
    this.#accepting = false;
    for (const timer of this.#timers) clearTimeout(timer);
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

  /** The per-key limit, for the store to check (undefined: none). */
  #admission(): Admission | undefined {
    const { maxInFlightPerKey } = this.#o;
    return maxInFlightPerKey === undefined ? undefined : { maxLivePerCaller: maxInFlightPerKey };
  }

  #tooMany(callerKeyId: string | null): TooManyExecutionsError {
    return new TooManyExecutionsError(`${callerKeyId === null ? 'the caller' : `API key "${callerKeyId}"`} already has ${this.#o.maxInFlightPerKey} executions pending or running `
      + '(SWITCHYARD_MAX_IN_FLIGHT_PER_KEY); retry once one of them has ended', RETRY_AFTER_SECONDS);
  }

  /** Registers a run as live on this process and hands it to the interpreter; it leaves the registry when done. */
  #launch(run: Omit<LiveExecution, 'abort' | 'done' | 'startedAt'>, plan: RunPlan, span: Span): void {
    const live: LiveExecution = { ...run, startedAt: run.createdAt, abort: new AbortController(), done: Promise.resolve() };
    this.#live.set(live.id, live);
    live.done = this.#interpreter.run(live, plan, span).finally(() => this.#live.delete(live.id));
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
   * The secret values a run's input carries, known before it runs (its stored input is written at start):
   * what its tool tasks' input templates put into their tools' secret_inputs, and what its scripted agents'
   * tool calls do, each placeholder's value on its own too (`"Bearer {{ input.token }}"` makes the token
   * secret). A model-driven agent chooses its tools' inputs at run time: those secrets are collected as
   * the calls happen, and redacted from everything written after (the stored input was written before).
   */
  #secretsOfInput(kind: ExecutionKind, target: string, input: unknown): string[] {
    const { definitions } = this.#o;
    const secrets: string[] = [];
    const ofAgent = (agentId: string | undefined, agentInput: unknown) => {
      const agent = agentId === undefined ? undefined : definitions.agents.get(agentId);
      if (!agent) return;
      const context = { input: agentInput, tool_results: {}, iteration: 1 };
      for (const call of agent.script.flatMap((turn) => turn.tool_calls ?? [])) {
        const tool = definitions.tools.get(call.tool);
        if (tool?.secretInputs?.length) secrets.push(...templateSecretValues(tool.secretInputs, call.arguments, context, render(call.arguments, context)));
      }
    };
    if (kind === 'agent') ofAgent(target, input);
    const tasks = kind === 'task' ? [definitions.tasks.get(target)!] : kind === 'workflow' ? definitions.workflows.get(target)!.tasks : [];
    for (const task of tasks) {
      const context = { input, tasks: {} };
      const template = task.input ?? (kind === 'task' ? '{{ input }}' : {});
      const rendered = render(template, context);
      if (task.agent !== undefined) ofAgent(task.agent, rendered);
      const tool = task.tool === undefined ? undefined : definitions.tools.get(task.tool);
      if (tool?.secretInputs?.length) secrets.push(...templateSecretValues(tool.secretInputs, template, context, rendered));
    }
    return secrets;
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
          const timeoutMs = this.#interpreter.timeoutMs(live);
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
