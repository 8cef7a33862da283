/**
 * The Bun tool runtime: runs one tool call as `bun <script>` in its own process group. This file is its
 * facade: it admits a call (definition, input schema, timeout), runs it through the process lifecycle,
 * classifies the outcome and records the call's telemetry.
 *
 * Interface
 * ---------
 *   const runtime = new ToolRuntime({ telemetry, bunPath?, outputLimitBytes?, stderrLimitBytes?, killGraceMs?,
 *                                     closeGraceMs?, baseEnv?, logger?, toolFaults?, runtimeDir? });
 *   const result = await runtime.execute({ tool, executionId, input, timeoutMs?, signal? });
 *   if (result.ok) use(result.result); else report(result.error.kind, result.error.message);
 *   runtime.start(); runtime.bunVersion(); runtime.liveProcesses(); await runtime.shutdown();
 *
 * `execute()` never throws: every failure is a value, `{ ok: false, error: ToolError }`.
 *
 * The parts, one job each:
 *   environment.ts       what a tool's environment holds (allowlist, loader-variable refusal, trace context), which bun
 *   processes.ts         the process lifecycle: spawn, pipes, caps, timeout, group kill; behind `ToolProcesses`
 *   sandbox.ts           what a tool may touch (Landlock, seccomp, rlimits through an exec wrapper) and what this host enforces
 *   helper-processes.ts  the default `ToolProcesses`: a long-lived spawn helper process starts the tools, so the
 *                        engine's event loop never forks the engine
 *     spawn-helper.ts    the helper process (runs a LocalToolProcesses); spawn-protocol.ts its framed protocol
 *     tool-guard.ts      Bun preload in every tool: kills the tool's process group when the engine dies
 *     process-records.ts records of live tool processes; a starting engine kills what an earlier one left
 *   outcome.ts           the error kinds and the classifier (how a call ended)
 *
 * Protocol with the tool: one JSON request on stdin
 *   {"tool_id", "execution_id", "input", "config", "timeout_ms"}
 * then stdin is closed; one JSON object on stdout, `{"result": any}` or `{"error": {"message", "code"?}}`
 * (a bare string is accepted as the error message). stderr is kept up to `stderrLimitBytes` (64 KiB), the
 * rest is counted and dropped. The guard's fd 3 is the runtime's, not the protocol's.
 *
 * Telemetry per call: span `runtime.execute_tool` (gen_ai.operation.name=execute_tool, gen_ai.tool.name,
 * switchyard.tool.timeout_ms, switchyard.tool.bun_version, process.exit.code, switchyard.tool.exit_signal,
 * switchyard.tool.output_bytes, switchyard.tool.error_code; error.type = domain toolFailureCode(kind) and
 * ERROR status on failure); runtime_tool_execute_seconds{tool_id,outcome},
 * runtime_tool_errors_total{tool_id,error_kind} (every failed call, canceled ones as `canceled`),
 * runtime_tool_timeouts_total{tool_id}, runtime_bun_process_exits_total{status,code,signal},
 * runtime_tool_output_bytes{tool_id}. Inputs never go on spans or logs; values of `secretInputs` are
 * scrubbed from the captured stderr and from error messages and codes.
 */
import { execFileSync } from 'node:child_process';
import { isAbsolute } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Attributes, Span } from '@opentelemetry/api';
import { toolFailureCode, type ToolOutcome } from '../../domain.ts';
import type { Telemetry } from '../../telemetry/recorder.ts';
import { compileJsonSchema, type InputCheck } from '../json-schema.ts';
import { redactText, secretForms, secretInputValues, type SecretForms } from '../secrets.ts';
import { ALWAYS_PASSED_ENV, pickEnv, resolveBunPath, toolEnvironment, withTraceContext } from './environment.ts';
import { classifyToolRun, fail, ToolError, type ToolOutcomeValue } from './outcome.ts';
import type { RuntimeLogger } from './process-records.ts';
import { HelperToolProcesses } from './helper-processes.ts';
import { LocalToolProcesses, TOOL_GUARD, type LocalToolProcessesOptions, type ProcessRun, type ToolProcesses } from './processes.ts';
import {
  DEFAULT_SANDBOX_PROCESSES, DEFAULT_SANDBOX_MEMORY_MB, confinementProblem, disposeSandboxHost, probeSandbox, resolveSandboxWrapper, sandboxHost,
  type SandboxHost, type SandboxReport, type ToolLimits, type ToolSandboxMode,
} from './sandbox.ts';
import { ToolSlots } from './tool-slots.ts';

export { envAllowlistProblem, resolveBunPath } from './environment.ts';
export { classifyToolRun, ToolError, type ToolErrorOrigin, type ToolRunFacts } from './outcome.ts';
export type { RuntimeLogger } from './process-records.ts';
export type { SandboxReport, ToolSandboxMode } from './sandbox.ts';

export interface ToolDefinition {
  id: string;
  description: string;
  /** Absolute path of the tool's .ts/.js entry point. */
  script: string;
  timeoutMs: number;
  config: Record<string, unknown>;
  /** Names of environment variables the tool may see (allowlist); values come from the runtime's baseEnv. */
  env: string[];
  /** Top-level input keys whose values are secret: scrubbed from stderr and error messages. */
  secretInputs?: string[];
  /** A JSON Schema every call's input must match (checked before the tool starts: TOOL_BAD_INPUT, kind `input`). */
  inputSchema?: unknown;
  /** The tool's sandbox limits (sandbox.ts); what is absent comes from the runtime's defaults. */
  sandbox?: Partial<ToolLimits>;
}

export interface ToolCall {
  tool: ToolDefinition;
  executionId: string;
  input: unknown;
  /** Overrides tool.timeoutMs for this call. */
  timeoutMs?: number;
  /** Aborting kills the tool's process group; the call resolves with kind `canceled`. */
  signal?: AbortSignal;
  /**
   * Other values the caller knows to be secret (its run's, say a caller's token that a template put inside
   * this call's secret input): scrubbed like the call's own secret inputs.
   */
  secrets?: Iterable<string>;
}

interface ToolRunInfo {
  /** Bytes the tool wrote to stdout. */
  outputBytes: number;
  exitCode: number | null;
  signal: string | null;
  durationMs: number;
  /** Captured stderr (capped, secrets scrubbed) and the total bytes the tool wrote there. */
  stderr: string;
  stderrBytes: number;
  /** Process id of the tool (its process group id too); null when it never started. */
  pid: number | null;
}

export type ToolResult = ToolOutcomeValue & ToolRunInfo;

export interface ToolRuntimeOptions {
  telemetry: Telemetry;
  /** Default: env SWITCHYARD_BUN, else the @oven/bun-<platform>-<arch> package binary, else `bun` on PATH. */
  bunPath?: string;
  /** stdout cap per call; default 10 MB. */
  outputLimitBytes?: number;
  /** stderr kept per call; default 64 KiB. */
  stderrLimitBytes?: number;
  /** Between SIGTERM and SIGKILL; default 2000 ms. */
  killGraceMs?: number;
  /** After the tool exits, how long to wait for its pipes to close (an escaped grandchild may hold them); default 1000 ms. */
  closeGraceMs?: number;
  /** Where PATH/HOME/LANG/TZ and allowlisted values come from; default process.env (read at first use of each definition). */
  baseEnv?: NodeJS.ProcessEnv;
  logger?: RuntimeLogger;
  /**
   * Sets SWITCHYARD_TOOL_FAULTS=1 in every tool's environment: the operator's switch for the sample tools'
   * fault-injection input fields (examples/tools/lib/tool.ts ignores them otherwise). Default false.
   */
  toolFaults?: boolean;
  /**
   * The directory where live tool processes are recorded (SWITCHYARD_RUNTIME_DIR), so that the next engine
   * kills those a killed engine's guard could not: done when the runtime is made (process-records.ts).
   * Default: no records. Throws when the directory cannot be made.
   */
  runtimeDir?: string;
  /**
   * Who starts the tool processes: `helper` (the default), a long-lived spawn helper process, so that the
   * engine's event loop never forks the engine (helper-processes.ts); `local`, the engine itself (a fork of the
   * engine per call, which blocks its event loop for a time that grows with its RSS). Default: env
   * SWITCHYARD_TOOL_PROCESSES, else `helper`.
   */
  processes?: ToolProcessesKind;
  /** How long past a call's timeout and grace periods the engine waits for the spawn helper before it kills it; default 5000 ms. */
  helperWatchdogMs?: number;
  /**
   * Most tool processes this runtime runs at once (SWITCHYARD_MAX_TOOL_PROCESSES); calls beyond wait for a slot in
   * arrival order, and the wait is measured (runtime_tool_slot_wait_seconds). Default 16.
   */
  maxProcesses?: number;
  /**
   * `enforce` (the default; env SWITCHYARD_TOOL_SANDBOX): every tool runs in the sandbox, and tools are refused when
   * this host cannot enforce it; `off`: tools run unconfined (the operator's explicit opt-out). See sandbox.ts.
   */
  sandbox?: ToolSandboxMode;
  /** The sandbox wrapper binary; default env SWITCHYARD_SANDBOX_WRAPPER, else build/switchyard-sandbox. */
  sandboxWrapper?: string;
  /** Defaults for a definition that sets no `sandbox.memory_mb` / `sandbox.processes`: 1024 MB and 1 (no child process). */
  sandboxMemoryMb?: number;
  sandboxProcesses?: number;
}

export const TOOL_PROCESSES_KINDS = ['helper', 'local'] as const;
export type ToolProcessesKind = (typeof TOOL_PROCESSES_KINDS)[number];

export const DEFAULT_OUTPUT_LIMIT_BYTES = 10_000_000;
export const DEFAULT_STDERR_LIMIT_BYTES = 64 * 1024;
export const DEFAULT_KILL_GRACE_MS = 2000;
export const DEFAULT_MAX_TOOL_PROCESSES = 16;
/** Longest error code put on a span: a tool's own code is its to choose. */
const MAX_ERROR_CODE_LENGTH = 128;

interface PreparedTool {
  readonly env: Record<string, string>;
  readonly error?: string;
  readonly validateInput?: (input: unknown) => InputCheck;
}

export class ToolRuntime {
  readonly #telemetry: Telemetry;
  readonly #bunPath: string;
  readonly #outputLimit: number;
  readonly #baseEnv: NodeJS.ProcessEnv;
  readonly #logger: RuntimeLogger | undefined;
  readonly #toolFaults: boolean;
  readonly #processes: ToolProcesses;
  readonly #slots: ToolSlots;
  readonly #sandbox: SandboxReport;
  readonly #sandboxHost: SandboxHost | undefined;
  readonly #defaultLimits: ToolLimits;
  readonly #prepared = new WeakMap<ToolDefinition, PreparedTool>();
  #bunVersion: string | undefined;
  #closed = false;

  constructor(options: ToolRuntimeOptions) {
    this.#telemetry = options.telemetry;
    this.#bunPath = options.bunPath ?? resolveBunPath();
    this.#outputLimit = options.outputLimitBytes ?? DEFAULT_OUTPUT_LIMIT_BYTES;
    this.#baseEnv = options.baseEnv ?? process.env;
    this.#logger = options.logger;
    this.#toolFaults = options.toolFaults ?? false;
    this.#slots = new ToolSlots(options.maxProcesses ?? DEFAULT_MAX_TOOL_PROCESSES);
    this.#sandbox = probeSandbox(options.sandbox ?? toolSandboxFromEnv(), options.sandboxWrapper ?? resolveSandboxWrapper());
    this.#sandboxHost = sandboxHost(this.#sandbox, this.#bunPath, TOOL_GUARD);
    this.#defaultLimits = {
      memoryMb: options.sandboxMemoryMb ?? DEFAULT_SANDBOX_MEMORY_MB, processes: options.sandboxProcesses ?? DEFAULT_SANDBOX_PROCESSES, network: true,
    };
    const processes: LocalToolProcessesOptions = {
      bunPath: this.#bunPath, outputLimit: this.#outputLimit, stderrLimit: options.stderrLimitBytes ?? DEFAULT_STDERR_LIMIT_BYTES,
      killGraceMs: options.killGraceMs ?? DEFAULT_KILL_GRACE_MS, closeGraceMs: options.closeGraceMs ?? 1000,
      recordsDir: options.runtimeDir, logger: options.logger, sandbox: this.#sandboxHost,
    };
    this.#processes = (options.processes ?? toolProcessesFromEnv()) === 'local'
      ? new LocalToolProcesses(processes)
      : new HelperToolProcesses({ ...processes, helperWatchdogMs: options.helperWatchdogMs });
  }

  /** Starts the spawn helper now rather than at the first call (the engine does, at start). */
  start(): void {
    this.#processes.start();
  }

  get bunPath(): string {
    return this.#bunPath;
  }

  /** What the tool sandbox enforces on this host, probed once when the runtime was made. */
  get sandbox(): SandboxReport {
    return this.#sandbox;
  }

  /** Where the calls' scratch directories are made (each removed when its call ends); undefined when unconfined. */
  get scratchRoot(): string | undefined {
    return this.#sandboxHost?.scratchRoot;
  }

  /** `bun --version`, run once and cached; 'unknown' when bun cannot be run. */
  bunVersion(): string {
    if (this.#bunVersion === undefined) {
      try {
        this.#bunVersion = execFileSync(this.#bunPath, ['--version'], {
          encoding: 'utf8', timeout: 10_000, env: pickEnv(this.#baseEnv, ALWAYS_PASSED_ENV), stdio: ['ignore', 'pipe', 'ignore'],
        }).trim() || 'unknown';
      } catch {
        this.#bunVersion = 'unknown';
      }
    }
    return this.#bunVersion;
  }

  /** Tool processes spawned and not yet fully reaped. */
  liveProcesses(): number {
    return this.#processes.live;
  }

  /** Calls waiting for a tool process slot, and slots in use. */
  slotUsage(): { waiting: number; busy: number; capacity: number } {
    return { waiting: this.#slots.waiting, busy: this.#slots.busy, capacity: this.#slots.capacity };
  }

  /** Refuses new calls (and turns away those waiting for a slot), kills every live tool process group, and resolves once all are gone. */
  async shutdown(): Promise<void> {
    this.#closed = true;
    this.#slots.close();
    await this.#processes.shutdown();
    disposeSandboxHost(this.#sandboxHost);
  }

  /**
   * Runs one tool call once a process slot is free. The wait comes before the call's span and its duration
   * metric, which measure the tool; runtime_tool_slot_wait_seconds measures the wait. A call canceled while it
   * waits leaves the queue and does nothing more: no process, no span, no tool metric.
   */
  async execute(call: ToolCall): Promise<ToolResult> {
    const waitStarted = performance.now();
    if (!(await this.#slots.acquire(call.signal))) {
      return refused(this.#closed
        ? new ToolError('canceled', 'tool runtime is shut down', { code: 'SHUTDOWN' })
        : new ToolError('canceled', 'tool call canceled while it waited for a tool process slot', { code: 'CANCELED' }), waitStarted);
    }
    try {
      this.#telemetry.record('toolSlotWait', (performance.now() - waitStarted) / 1000, { tool_id: call.tool.id });
      return await this.#executeInSpan(call);
    } finally {
      this.#slots.release();
    }
  }

  async #executeInSpan(call: ToolCall): Promise<ToolResult> {
    const tool = call.tool;
    const timeoutMs = call.timeoutMs ?? tool.timeoutMs;
    const attributes: Attributes = {
      'switchyard.tool.timeout_ms': timeoutMs,
      'switchyard.tool.bun_version': this.bunVersion(),
      'gen_ai.operation.name': 'execute_tool',
      'gen_ai.tool.name': tool.id,
    };
    return this.#telemetry.inSpan('runtimeExecuteTool', attributes, async (span) => {
      const started = performance.now();
      let result: ToolResult;
      try {
        result = await this.#run(call, timeoutMs, span, started);
      } catch (error) {
        // A bug here must still come back as a value.
        result = refused(new ToolError('unknown', `tool runtime failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error }), started);
      }
      this.#observe(call, result, span);
      return result;
    });
  }

  async #run(call: ToolCall, timeoutMs: number, span: Span, started: number): Promise<ToolResult> {
    const tool = call.tool;
    const prepared = this.#prepare(tool);
    if (prepared.error) return refused(new ToolError('start', prepared.error, { code: 'TOOL_BAD_DEFINITION' }), started);
    if (this.#closed) return refused(new ToolError('canceled', 'tool runtime is shut down', { code: 'SHUTDOWN' }), started);
    if (call.signal?.aborted) return refused(new ToolError('canceled', 'tool call canceled before it started', { code: 'CANCELED' }), started);
    const check = prepared.validateInput?.(call.input);
    if (check && !check.ok) {
      // The messages name the field and the expected type, never the value (which may be a secret).
      return refused(new ToolError('input', `tool ${tool.id}: input does not match its input_schema: ${check.problems.join('; ')}`, { code: 'TOOL_BAD_INPUT' }), started);
    }
    if (!this.#sandbox.runs_tools) {
      return refused(new ToolError('start', `tool ${tool.id}: refused: the tool sandbox cannot be enforced on this host: ${this.#sandbox.problem}`, { code: 'TOOL_SANDBOX_UNAVAILABLE' }), started);
    }
    const limits: ToolLimits = { ...this.#defaultLimits, ...tool.sandbox };
    const limitsRefused = confinementProblem(this.#sandboxHost, limits, tool.script);
    if (limitsRefused) return refused(new ToolError('start', `tool ${tool.id}: refused: ${limitsRefused}`, { code: 'TOOL_SANDBOX_UNAVAILABLE' }), started);
    if (!(timeoutMs > 0) || !Number.isFinite(timeoutMs)) {
      return refused(new ToolError('start', `tool ${tool.id}: timeout must be a positive number of ms, got ${timeoutMs}`, { code: 'TOOL_BAD_DEFINITION' }), started);
    }
    let request: string;
    try {
      request = JSON.stringify({ tool_id: tool.id, execution_id: call.executionId, input: call.input ?? null, config: tool.config ?? {}, timeout_ms: timeoutMs });
    } catch (error) {
      return refused(new ToolError('input', `tool ${tool.id}: input is not JSON-serializable`, { code: 'TOOL_BAD_INPUT', cause: error }), started);
    }
    const run = await this.#processes.run({
      script: tool.script, env: withTraceContext(prepared.env, span.spanContext()), stdin: request, timeoutMs, signal: call.signal, label: tool.id, limits,
    });
    return this.#result(run, classifyToolRun({ ...run, timeoutMs, outputLimit: this.#outputLimit }), secretValues(tool, call.input, call.secrets), started);
  }

  /** The call's result: its outcome, with what the process did, secrets scrubbed from what the tool wrote. */
  #result(run: ProcessRun, outcome: ToolOutcomeValue, secrets: SecretForms | undefined, started: number): ToolResult {
    let stderr = run.stderr.length ? scrubSecrets(run.stderr.toString('utf8'), secrets) : '';
    if (run.stderrBytes > run.stderr.length) stderr += `\n[${run.stderrBytes - run.stderr.length} more bytes of stderr discarded]`;
    const info: ToolRunInfo = {
      outputBytes: run.stdoutBytes, exitCode: run.exitCode, signal: run.signal, durationMs: performance.now() - started,
      stderr, stderrBytes: run.stderrBytes, pid: run.pid,
    };
    if (!outcome.ok && secrets && outcome.error.kind === 'tool') {
      const { error } = outcome;
      const message = scrubSecrets(error.message, secrets);
      const code = scrubSecrets(error.code, secrets);
      if (message !== error.message || code !== error.code) return { ...fail('tool', message, { code }), ...info };
    }
    return { ...outcome, ...info };
  }

  /** Validates a definition once and builds the static part of its environment. */
  #prepare(tool: ToolDefinition): PreparedTool {
    let prepared = this.#prepared.get(tool);
    if (prepared) return prepared;
    prepared = prepareTool(tool, this.#baseEnv, this.#toolFaults);
    this.#prepared.set(tool, prepared);
    return prepared;
  }

  #observe(call: ToolCall, result: ToolResult, span: Span): void {
    const toolId = call.tool.id;
    const telemetry = this.#telemetry;
    const error = result.ok ? undefined : result.error;
    const outcome: ToolOutcome = !error ? 'success' : error.kind === 'timeout' ? 'timeout' : 'error';
    try {
      if (result.exitCode !== null) span.setAttribute('process.exit.code', result.exitCode);
      if (result.signal !== null) span.setAttribute('switchyard.tool.exit_signal', result.signal);
      span.setAttribute('switchyard.tool.output_bytes', result.outputBytes);
      if (error) {
        span.setAttribute('switchyard.tool.error_code', error.code.slice(0, MAX_ERROR_CODE_LENGTH));
        telemetry.markFailed(span, error, toolFailureCode(error.kind));
      }
    } catch (failure) {
      telemetry.failure('span', failure);
    }
    telemetry.record('toolExecuteSeconds', result.durationMs / 1000, { tool_id: toolId, outcome });
    if (error) telemetry.add('toolErrors', 1, { tool_id: toolId, error_kind: error.kind });
    if (error?.kind === 'timeout') telemetry.add('toolTimeouts', 1, { tool_id: toolId });
    if (result.pid !== null) {
      telemetry.record('toolOutputBytes', result.outputBytes, { tool_id: toolId });
      if (result.signal !== null) telemetry.add('bunProcessExits', 1, { status: 'signal', code: 'none', signal: result.signal });
      else if (result.exitCode !== null) telemetry.add('bunProcessExits', 1, { status: 'exit', code: String(result.exitCode), signal: 'none' });
    }
    if (error && this.#logger) {
      try {
        this.#logger.warn({
          tool_id: toolId, execution_id: call.executionId, error_kind: error.kind, error_code: error.code, origin: error.origin,
          exit_code: result.exitCode, signal: result.signal, duration_ms: Math.round(result.durationMs), stderr_bytes: result.stderrBytes,
        }, `tool ${toolId} failed (${error.kind}): ${error.message}`);
      } catch {
        // logging must not change the outcome
      }
    }
  }
}

/** SWITCHYARD_TOOL_PROCESSES (validated by config.ts for the engine); anything but `local` is the helper. */
function toolProcessesFromEnv(): ToolProcessesKind {
  return process.env.SWITCHYARD_TOOL_PROCESSES === 'local' ? 'local' : 'helper';
}

/** SWITCHYARD_TOOL_SANDBOX (validated by config.ts for the engine); anything but `off` enforces. */
function toolSandboxFromEnv(): ToolSandboxMode {
  return process.env.SWITCHYARD_TOOL_SANDBOX === 'off' ? 'off' : 'enforce';
}

function prepareTool(tool: ToolDefinition, baseEnv: NodeJS.ProcessEnv, toolFaults: boolean): PreparedTool {
  const { env, problem } = toolEnvironment(tool.env ?? [], baseEnv, toolFaults);
  if (!isAbsolute(tool.script)) return { env, error: `tool ${tool.id}: script must be an absolute path, got ${JSON.stringify(tool.script)}` };
  if (problem) return { env, error: `tool ${tool.id}: ${problem}` };
  if (tool.inputSchema === undefined) return { env };
  const schema = compileJsonSchema(tool.inputSchema);
  if (!schema.ok) return { env, error: `tool ${tool.id}: input_schema is not a valid JSON Schema: ${schema.problems.join('; ')}` };
  return { env, validateInput: schema.validate };
}

function secretValues(tool: ToolDefinition, input: unknown, known: Iterable<string> = []): SecretForms | undefined {
  const forms = secretForms([...secretInputValues(tool.secretInputs, input), ...known]);
  return forms.pattern ? forms : undefined;
}

/** Replaces every secret (given as its forms, see secretForms) in a text. */
export function scrubSecrets(text: string, secrets: SecretForms | undefined): string {
  if (!secrets || !text) return text;
  return redactText(text, secrets);
}

/** A call refused before any process started. */
function refused(error: ToolError, started: number): ToolResult {
  return { ok: false, error, outputBytes: 0, exitCode: null, signal: null, durationMs: performance.now() - started, stderr: '', stderrBytes: 0, pid: null };
}
