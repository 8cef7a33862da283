/**
 * The Bun tool runtime: runs one tool call as `bun <script>` in its own process group.
 *
 * Interface
 * ---------
 *   const runtime = new ToolRuntime({ telemetry, bunPath?, outputLimitBytes?, stderrLimitBytes?, killGraceMs?,
 *                                     closeGraceMs?, baseEnv?, logger? });
 *   const result = await runtime.execute({ tool, executionId, input, timeoutMs?, signal? });
 *   if (result.ok) use(result.result); else report(result.error.kind, result.error.message);
 *   runtime.bunVersion(); runtime.liveProcesses(); await runtime.shutdown();
 *
 * `execute()` never throws: every failure is a value, `{ ok: false, error: ToolError }`.
 *
 * Protocol with the tool: one JSON request on stdin
 *   {"tool_id", "execution_id", "input", "config", "timeout_ms"}
 * then stdin is closed; one JSON object on stdout, `{"result": any}` or `{"error": {"message", "code"?}}`
 * (a bare string is accepted as the error message). stderr is kept up to `stderrLimitBytes` (64 KiB), the
 * rest is counted and dropped.
 *
 * Process control: the tool is spawned detached (its own session and process group). On timeout,
 * cancellation (AbortSignal), output overflow or shutdown the whole group gets SIGTERM, then SIGKILL after
 * `killGraceMs`. Whenever the tool itself exits, the group gets SIGKILL, so children the tool left behind
 * die with it (a child that calls setsid() escapes its group: that needs cgroups, out of scope here).
 *
 * Environment: PATH, HOME, LANG, TZ from `baseEnv` (default process.env), plus the names the tool allowlists,
 * plus TRACEPARENT/TRACESTATE of the `runtime.execute_tool` span, so a tool's own spans join the trace.
 * Nothing else from the engine's environment reaches the tool. An allowlist naming a loader-injection
 * variable (LD_*, DYLD_*, NODE_*, BUN_*, GLIBC_TUNABLES, GCONV_PATH, ...) is rejected with kind `start`.
 *
 * Error kinds (catalogue TOOL_ERROR_KINDS), first match wins:
 *   timeout       killed at its timeout
 *   output_limit  stdout exceeded outputLimitBytes; killed
 *   start         bad definition (env allowlist, relative script path, input_schema), input not
 *                 JSON-serializable or not matching the tool's input_schema (code TOOL_BAD_INPUT),
 *                 spawn failure (ENOENT/EACCES), runtime shut down before the call started
 *   stdout/stderr a read error on that pipe (engine side)
 *   unknown       a well-formed `{"error": ...}` response (origin 'tool': the tool's own application error,
 *                 its code kept in `error.code`); cancellation (origin 'canceled'; not counted in
 *                 runtime_tool_errors_total, since the caller asked for it); an internal runtime bug
 *   stdin         the request could not be delivered whole (EPIPE: the tool exited before reading it) and
 *                 no valid response came back. A tool that answers validly and exits 0 without reading
 *                 stdin succeeds.
 *   wait          non-zero exit, or death by a signal the runtime did not send, without a valid response
 *                 (a `{"result"}` followed by a non-zero exit is also `wait`)
 *   parse         exit 0 but stdout is not exactly one JSON object with `result` or `error`
 *
 * Telemetry per call: span `runtime.execute_tool` (tool_id, timeout_ms, bun_version, exit_code, signal,
 * output_bytes, error_kind, gen_ai.operation.name=execute_tool, gen_ai.tool.name; error.type = kind and
 * ERROR status on failure); runtime_tool_execute_seconds{tool_id,outcome}, runtime_tool_errors_total{tool_id,
 * error_kind}, runtime_tool_timeouts_total{tool_id}, runtime_bun_process_exits_total{status,code,signal},
 * runtime_tool_output_bytes{tool_id}. Inputs never go on spans or logs; values of `secretInputs` are
 * scrubbed from the captured stderr and from error messages.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { isSpanContextValid, type Attributes, type Span } from '@opentelemetry/api';
import type { ToolErrorKind, ToolOutcome } from '../../domain.ts';
import type { Telemetry } from '../../telemetry/recorder.ts';
import { compileJsonSchema, type InputCheck } from '../json-schema.ts';
import { redactText, secretForms, secretInputValues } from '../secrets.ts';

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
  /** A JSON Schema every call's input must match (checked before the tool starts: TOOL_BAD_INPUT, kind `start`). */
  inputSchema?: unknown;
}

export interface ToolCall {
  tool: ToolDefinition;
  executionId: string;
  input: unknown;
  /** Overrides tool.timeoutMs for this call. */
  timeoutMs?: number;
  /** Aborting kills the tool's process group; the call resolves with origin 'canceled'. */
  signal?: AbortSignal;
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

export type ToolResult = ({ ok: true; result: unknown } | { ok: false; error: ToolError }) & ToolRunInfo;

/** Who caused a failure: the runtime/process, the tool's own `{"error"}` answer, or a cancellation. */
export type ToolErrorOrigin = 'runtime' | 'tool' | 'canceled';

export class ToolError extends Error {
  override readonly name = 'ToolError';
  readonly kind: ToolErrorKind;
  /** Stable machine code: TOOL_TIMEOUT, TOOL_PARSE, ..., CANCELED, SHUTDOWN, or the tool's own code. */
  readonly code: string;
  readonly origin: ToolErrorOrigin;

  constructor(kind: ToolErrorKind, message: string, options: { code?: string; origin?: ToolErrorOrigin; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.kind = kind;
    this.origin = options.origin ?? 'runtime';
    this.code = options.code ?? `TOOL_${kind.toUpperCase()}`;
  }
}

/** The few logger methods the runtime uses (a pino.Logger fits). */
export interface RuntimeLogger {
  warn(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}

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
}

export const DEFAULT_OUTPUT_LIMIT_BYTES = 10_000_000;
export const DEFAULT_STDERR_LIMIT_BYTES = 64 * 1024;
export const DEFAULT_KILL_GRACE_MS = 2000;

const ALWAYS_PASSED_ENV = ['PATH', 'HOME', 'LANG', 'TZ'] as const;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Variables that make a loader, runtime or libc run code or change trust; TRACE* are set by the runtime. */
const FORBIDDEN_ENV = /^(LD_|DYLD_|NODE_|BUN_|MALLOC_|GLIBC_TUNABLES$|GCONV_PATH$|LOCPATH$|HOSTALIASES$|RES_OPTIONS$|JAVA_TOOL_OPTIONS$|_JAVA_OPTIONS$|PYTHONPATH$|PYTHONSTARTUP$|PERL5OPT$|PERL5LIB$|RUBYOPT$|TRACEPARENT$|TRACESTATE$|SWITCHYARD_TOOL_FAULTS$)/;

type TerminateReason = 'timeout' | 'output_limit' | 'canceled' | 'shutdown';

interface PreparedTool {
  readonly env: Record<string, string>;
  readonly error?: string;
  readonly validateInput?: (input: unknown) => InputCheck;
}

/**
 * Why a name may not be on a tool's env allowlist, or undefined when it may. The definition loader
 * refuses such names at start; the runtime refuses them again for definitions built elsewhere.
 */
export function envAllowlistProblem(name: string): string | undefined {
  if (!ENV_NAME.test(name)) return `${JSON.stringify(name)} is not a variable name`;
  if (FORBIDDEN_ENV.test(name)) return `${name} can inject code into the tool process (a loader, runtime or libc variable) or is managed by the runtime; remove it`;
  return undefined;
}

/** Resolves the bun binary: env SWITCHYARD_BUN, then the platform package from npm `bun`, then PATH. */
export function resolveBunPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.SWITCHYARD_BUN) return env.SWITCHYARD_BUN;
  const arch = process.arch === 'arm64' ? 'aarch64' : process.arch;
  const require = createRequire(import.meta.url);
  for (const suffix of ['', '-baseline', '-musl', '-musl-baseline']) {
    try {
      const pkg = require.resolve(`@oven/bun-${process.platform}-${arch}${suffix}/package.json`);
      const bin = join(dirname(pkg), 'bin', 'bun');
      if (existsSync(bin)) return bin;
    } catch {
      // not installed: try the next variant
    }
  }
  return 'bun';
}

export class ToolRuntime {
  readonly #telemetry: Telemetry;
  readonly #bunPath: string;
  readonly #outputLimit: number;
  readonly #stderrLimit: number;
  readonly #killGraceMs: number;
  readonly #closeGraceMs: number;
  readonly #baseEnv: NodeJS.ProcessEnv;
  readonly #logger: RuntimeLogger | undefined;
  readonly #toolFaults: boolean;
  readonly #live = new Set<ToolProcess>();
  readonly #prepared = new WeakMap<ToolDefinition, PreparedTool>();
  #bunVersion: string | undefined;
  #closed = false;

  constructor(options: ToolRuntimeOptions) {
    this.#telemetry = options.telemetry;
    this.#bunPath = options.bunPath ?? resolveBunPath();
    this.#outputLimit = options.outputLimitBytes ?? DEFAULT_OUTPUT_LIMIT_BYTES;
    this.#stderrLimit = options.stderrLimitBytes ?? DEFAULT_STDERR_LIMIT_BYTES;
    this.#killGraceMs = options.killGraceMs ?? DEFAULT_KILL_GRACE_MS;
    this.#closeGraceMs = options.closeGraceMs ?? 1000;
    this.#baseEnv = options.baseEnv ?? process.env;
    this.#logger = options.logger;
    this.#toolFaults = options.toolFaults ?? false;
  }

  get bunPath(): string {
    return this.#bunPath;
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
    return this.#live.size;
  }

  /** Refuses new calls, kills every live tool process group, and resolves once all are gone. */
  async shutdown(): Promise<void> {
    this.#closed = true;
    const done: Promise<ToolResult>[] = [];
    for (const run of this.#live) {
      run.terminate('shutdown');
      done.push(run.done);
    }
    await Promise.all(done);
  }

  async execute(call: ToolCall): Promise<ToolResult> {
    const tool = call.tool;
    const timeoutMs = call.timeoutMs ?? tool.timeoutMs;
    const attributes: Attributes = {
      tool_id: tool.id,
      timeout_ms: timeoutMs,
      bun_version: this.bunVersion(),
      'gen_ai.operation.name': 'execute_tool',
      'gen_ai.tool.name': tool.id,
    };
    return this.#telemetry.inSpan('runtimeExecuteTool', attributes, async (span) => {
      const started = performance.now();
      let result: ToolResult;
      try {
        result = await this.#run(call, timeoutMs, span, started);
      } catch (error) {
        // A bug here must still come back as a value, with its process (if any) accounted for.
        result = notStarted(new ToolError('unknown', `tool runtime failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error }), started);
      }
      this.#observe(call, result, span);
      return result;
    });
  }

  #run(call: ToolCall, timeoutMs: number, span: Span, started: number): Promise<ToolResult> {
    const tool = call.tool;
    const prepared = this.#prepare(tool);
    if (prepared.error) return Promise.resolve(notStarted(new ToolError('start', prepared.error, { code: 'TOOL_BAD_DEFINITION' }), started));
    if (this.#closed) return Promise.resolve(notStarted(new ToolError('start', 'tool runtime is shut down', { code: 'SHUTDOWN' }), started));
    if (call.signal?.aborted) return Promise.resolve(notStarted(new ToolError('unknown', 'tool call canceled before it started', { code: 'CANCELED', origin: 'canceled' }), started));
    const check = prepared.validateInput?.(call.input);
    if (check && !check.ok) {
      // The messages name the field and the expected type, never the value (which may be a secret).
      return Promise.resolve(notStarted(new ToolError('start', `tool ${tool.id}: input does not match its input_schema: ${check.problems.join('; ')}`, { code: 'TOOL_BAD_INPUT' }), started));
    }
    if (!(timeoutMs > 0) || !Number.isFinite(timeoutMs)) {
      return Promise.resolve(notStarted(new ToolError('start', `tool ${tool.id}: timeout must be a positive number of ms, got ${timeoutMs}`, { code: 'TOOL_BAD_DEFINITION' }), started));
    }
    let request: string;
    try {
      request = JSON.stringify({ tool_id: tool.id, execution_id: call.executionId, input: call.input ?? null, config: tool.config ?? {}, timeout_ms: timeoutMs });
    } catch (error) {
      return Promise.resolve(notStarted(new ToolError('start', `tool ${tool.id}: input is not JSON-serializable`, { code: 'TOOL_BAD_INPUT', cause: error }), started));
    }
    let env = prepared.env;
    const context = span.spanContext();
    if (isSpanContextValid(context)) {
      env = { ...env, TRACEPARENT: `00-${context.traceId}-${context.spanId}-${context.traceFlags & 1 ? '01' : '00'}` };
      const traceState = context.traceState?.serialize();
      if (traceState) env.TRACESTATE = traceState;
    }
    const run = new ToolProcess({
      bunPath: this.#bunPath, script: tool.script, env, request, timeoutMs, signal: call.signal, started,
      outputLimit: this.#outputLimit, stderrLimit: this.#stderrLimit, killGraceMs: this.#killGraceMs,
      closeGraceMs: this.#closeGraceMs, secrets: secretValues(tool, call.input), onDone: (done) => this.#live.delete(done),
    });
    this.#live.add(run);
    run.start();
    return run.done;
  }

  /** Validates a definition's allowlist once and builds the static part of its environment. */
  #prepare(tool: ToolDefinition): PreparedTool {
    let prepared = this.#prepared.get(tool);
    if (prepared) return prepared;
    prepared = prepareTool(tool, this.#baseEnv);
    if (this.#toolFaults) prepared = { ...prepared, env: { ...prepared.env, SWITCHYARD_TOOL_FAULTS: '1' } };
    this.#prepared.set(tool, prepared);
    return prepared;
  }

  #observe(call: ToolCall, result: ToolResult, span: Span): void {
    const toolId = call.tool.id;
    const telemetry = this.#telemetry;
    const error = result.ok ? undefined : result.error;
    const outcome: ToolOutcome = !error ? 'success' : error.kind === 'timeout' ? 'timeout' : 'error';
    try {
      if (result.exitCode !== null) span.setAttribute('exit_code', result.exitCode);
      if (result.signal !== null) span.setAttribute('signal', result.signal);
      span.setAttribute('output_bytes', result.outputBytes);
      if (error) {
        span.setAttribute('error_kind', error.kind);
        telemetry.markFailed(span, error, error.origin === 'canceled' ? 'canceled' : error.kind);
      }
    } catch (failure) {
      telemetry.failure('span', failure);
    }
    telemetry.record('toolExecuteSeconds', result.durationMs / 1000, { tool_id: toolId, outcome });
    if (error && error.origin !== 'canceled') telemetry.add('toolErrors', 1, { tool_id: toolId, error_kind: error.kind });
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

function prepareTool(tool: ToolDefinition, baseEnv: NodeJS.ProcessEnv): PreparedTool {
  const env = pickEnv(baseEnv, ALWAYS_PASSED_ENV);
  if (!isAbsolute(tool.script)) return { env, error: `tool ${tool.id}: script must be an absolute path, got ${JSON.stringify(tool.script)}` };
  for (const name of tool.env ?? []) {
    const problem = envAllowlistProblem(name);
    if (problem) return { env, error: `tool ${tool.id}: env allowlist: ${problem}` };
    const value = baseEnv[name];
    if (value !== undefined) env[name] = value;
  }
  if (tool.inputSchema === undefined) return { env };
  const schema = compileJsonSchema(tool.inputSchema);
  if (!schema.ok) return { env, error: `tool ${tool.id}: input_schema is not a valid JSON Schema: ${schema.problems.join('; ')}` };
  return { env, validateInput: schema.validate };
}

function pickEnv(source: NodeJS.ProcessEnv, names: readonly string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of names) {
    const value = source[name];
    if (value !== undefined) env[name] = value;
  }
  return env;
}

function secretValues(tool: ToolDefinition, input: unknown): string[] | undefined {
  const values = secretInputValues(tool.secretInputs, input);
  return values.length ? secretForms(values) : undefined;
}

/** Replaces every secret (given as its forms, see secretForms) in a text. */
export function scrubSecrets(text: string, secrets: readonly string[] | undefined): string {
  if (!secrets || !text) return text;
  return redactText(text, secrets);
}

function notStarted(error: ToolError, started: number): ToolResult {
  return { ok: false, error, outputBytes: 0, exitCode: null, signal: null, durationMs: performance.now() - started, stderr: '', stderrBytes: 0, pid: null };
}

/** What happened to one tool process, as the classifier needs it. */
export interface ToolRunFacts {
  terminated: TerminateReason | null;
  /** stdout went over the cap (possibly after the process exited, while draining the pipe). */
  overflow: boolean;
  spawnError: Error | null;
  stdoutError: Error | null;
  stderrError: Error | null;
  /** The request was not delivered whole (EPIPE, or still buffered when the process went away). */
  stdinFailed: boolean;
  exitCode: number | null;
  signal: string | null;
  stdout: Buffer;
  timeoutMs: number;
  outputLimit: number;
}

/** Turns what happened into the call's outcome. Pure, so every branch is testable without a process. */
export function classifyToolRun(facts: ToolRunFacts): { ok: true; result: unknown } | { ok: false; error: ToolError } {
  switch (facts.terminated) {
    case 'timeout':
      return fail('timeout', `tool did not answer within ${facts.timeoutMs} ms; its process group was killed`);
    case 'output_limit':
      return fail('output_limit', `tool wrote more than ${facts.outputLimit} bytes to stdout; its process group was killed`);
    case 'canceled':
      return { ok: false, error: new ToolError('unknown', 'tool call canceled; its process group was killed', { code: 'CANCELED', origin: 'canceled' }) };
    case 'shutdown':
      return { ok: false, error: new ToolError('unknown', 'tool runtime shut down; the tool process group was killed', { code: 'SHUTDOWN', origin: 'canceled' }) };
    default:
      break;
  }
  if (facts.overflow) return fail('output_limit', `tool wrote more than ${facts.outputLimit} bytes to stdout; its process group was killed`);
  if (facts.spawnError) return fail('start', `could not start bun: ${facts.spawnError.message}`, facts.spawnError);
  if (facts.stdoutError) return fail('stdout', `reading the tool's stdout failed: ${facts.stdoutError.message}`, facts.stdoutError);
  if (facts.stderrError) return fail('stderr', `reading the tool's stderr failed: ${facts.stderrError.message}`, facts.stderrError);

  const exitedCleanly = facts.exitCode === 0 && facts.signal === null;
  const how = facts.signal !== null ? `was killed by ${facts.signal}` : `exited with code ${facts.exitCode}`;
  const response = parseResponse(facts.stdout);
  if (response.kind === 'error') {
    return { ok: false, error: new ToolError('unknown', response.message, { code: response.code ?? 'TOOL_ERROR', origin: 'tool' }) };
  }
  if (response.kind === 'result') {
    if (exitedCleanly) return { ok: true, result: response.result };
    return fail('wait', `tool answered but ${how}`);
  }
  if (facts.stdinFailed) return fail('stdin', `tool ${how} before reading its whole request from stdin`);
  if (!exitedCleanly) return fail('wait', `tool ${how} without a response`);
  return fail('parse', response.message);
}

function fail(kind: ToolErrorKind, message: string, cause?: unknown): { ok: false; error: ToolError } {
  return { ok: false, error: new ToolError(kind, message, { cause }) };
}

type ParsedResponse =
  | { kind: 'result'; result: unknown }
  | { kind: 'error'; message: string; code: string | undefined }
  | { kind: 'invalid'; message: string };

function parseResponse(stdout: Buffer): ParsedResponse {
  if (stdout.length === 0) return { kind: 'invalid', message: 'tool wrote no response to stdout' };
  let value: unknown;
  try {
    value = JSON.parse(stdout.toString('utf8'));
  } catch {
    // The parser's own message quotes the output, which may hold anything: keep it out of errors and spans.
    return { kind: 'invalid', message: `tool stdout is not valid JSON (${stdout.length} bytes)` };
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    return { kind: 'invalid', message: 'tool stdout is JSON but not an object with "result" or "error"' };
  }
  const hasResult = Object.hasOwn(value, 'result');
  const hasError = Object.hasOwn(value, 'error');
  if (hasResult === hasError) return { kind: 'invalid', message: 'tool response must have exactly one of "result" or "error"' };
  if (hasResult) return { kind: 'result', result: (value as { result: unknown }).result };
  const error = (value as { error: unknown }).error;
  if (typeof error === 'string') return { kind: 'error', message: error, code: undefined };
  if (error && typeof error === 'object' && typeof (error as { message?: unknown }).message === 'string') {
    const code = (error as { code?: unknown }).code;
    return { kind: 'error', message: (error as { message: string }).message, code: typeof code === 'string' && code ? code : undefined };
  }
  return { kind: 'invalid', message: 'tool "error" response must be a string or an object with a string "message"' };
}

interface ToolProcessOptions {
  bunPath: string;
  script: string;
  env: Record<string, string>;
  request: string;
  timeoutMs: number;
  signal: AbortSignal | undefined;
  started: number;
  outputLimit: number;
  stderrLimit: number;
  killGraceMs: number;
  closeGraceMs: number;
  secrets: string[] | undefined;
  onDone: (run: ToolProcess) => void;
}

/** One spawned tool: event-driven, no polling; resolves `done` exactly once. */
class ToolProcess {
  readonly done: Promise<ToolResult>;
  readonly #o: ToolProcessOptions;
  #resolve!: (result: ToolResult) => void;
  #child: ChildProcess | undefined;
  #pid: number | null = null;
  #stdout: Buffer[] = [];
  #stdoutBytes = 0;
  #stderr: Buffer[] = [];
  #stderrKept = 0;
  #stderrBytes = 0;
  #terminated: TerminateReason | null = null;
  #spawnError: Error | null = null;
  #stdoutError: Error | null = null;
  #stderrError: Error | null = null;
  #stdinError = false;
  #overflow = false;
  #exitCode: number | null = null;
  #signal: string | null = null;
  #exited = false;
  #finished = false;
  #timeoutTimer: NodeJS.Timeout | undefined;
  #graceTimer: NodeJS.Timeout | undefined;
  #closeTimer: NodeJS.Timeout | undefined;
  readonly #onAbort = (): void => this.terminate('canceled');

  constructor(options: ToolProcessOptions) {
    this.#o = options;
    this.done = new Promise((resolve) => {
      this.#resolve = resolve;
    });
  }

  start(): void {
    const o = this.#o;
    let child: ChildProcess;
    try {
      child = spawn(o.bunPath, [o.script], { cwd: dirname(o.script), env: o.env, detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
    } catch (error) {
      this.#spawnError = error instanceof Error ? error : new Error(String(error));
      this.#finish();
      return;
    }
    this.#child = child;
    this.#pid = child.pid ?? null;
    child.once('error', (error) => this.#onError(error));
    child.once('exit', (code, signal) => this.#onExit(code, signal));
    child.once('close', () => this.#finish());
    // Listeners stay attached after finishing: a late stream error must never become an uncaught exception.
    child.stdin!.on('error', () => {
      this.#stdinError = true;
    });
    child.stdout!.on('error', (error) => {
      this.#stdoutError ??= error;
    });
    child.stderr!.on('error', (error) => {
      this.#stderrError ??= error;
    });
    child.stdout!.on('data', (chunk: Buffer) => this.#onStdout(chunk));
    child.stderr!.on('data', (chunk: Buffer) => this.#onStderr(chunk));
    if (this.#pid === null) return; // spawn failed: 'error' follows on the next tick
    child.stdin!.end(o.request);
    this.#timeoutTimer = setTimeout(() => this.terminate('timeout'), o.timeoutMs);
    o.signal?.addEventListener('abort', this.#onAbort, { once: true });
  }

  /** SIGTERM to the group now, SIGKILL after the grace period. The first reason sticks. */
  terminate(reason: TerminateReason): void {
    if (this.#finished || this.#terminated || this.#exited || this.#pid === null) return;
    this.#terminated = reason;
    clearTimeout(this.#timeoutTimer);
    this.#killGroup('SIGTERM');
    this.#graceTimer = setTimeout(() => this.#killGroup('SIGKILL'), this.#o.killGraceMs);
  }

  #onStdout(chunk: Buffer): void {
    this.#stdoutBytes += chunk.length;
    if (this.#overflow) return; // keep draining so the writer is not stuck on a full pipe; drop it
    if (this.#stdoutBytes > this.#o.outputLimit) {
      this.#overflow = true;
      this.#stdout = [];
      this.terminate('output_limit');
      return;
    }
    this.#stdout.push(chunk);
  }

  #onStderr(chunk: Buffer): void {
    this.#stderrBytes += chunk.length;
    const room = this.#o.stderrLimit - this.#stderrKept;
    if (room <= 0) return;
    const kept = chunk.length <= room ? chunk : chunk.subarray(0, room);
    this.#stderr.push(kept);
    this.#stderrKept += kept.length;
  }

  #onError(error: Error): void {
    if (this.#pid === null) {
      // spawn failed (ENOENT, EACCES, EMFILE): there is no process and 'exit' will not come.
      this.#spawnError = error;
      this.#finish();
    }
    // Otherwise a failed kill(): the process is already gone, 'exit'/'close' carry on.
  }

  #onExit(code: number | null, signal: NodeJS.Signals | null): void {
    this.#exited = true;
    this.#exitCode = code;
    this.#signal = signal;
    clearTimeout(this.#timeoutTimer);
    clearTimeout(this.#graceTimer);
    // Whatever the tool left running in its group dies with it (and releases the pipes it inherited).
    this.#killGroup('SIGKILL');
    // A process that escaped the group could hold the pipes open forever: stop waiting for 'close' then.
    this.#closeTimer = setTimeout(() => this.#finish(), this.#o.closeGraceMs);
  }

  #killGroup(signal: NodeJS.Signals): void {
    const pid = this.#pid;
    if (pid === null) return;
    try {
      process.kill(-pid, signal);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ESRCH' && !this.#exited) {
        try {
          this.#child?.kill(signal);
        } catch {
          // nothing more to do
        }
      }
    }
  }

  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    clearTimeout(this.#timeoutTimer);
    clearTimeout(this.#graceTimer);
    clearTimeout(this.#closeTimer);
    this.#o.signal?.removeEventListener('abort', this.#onAbort);
    const child = this.#child;
    let stdinFailed = this.#stdinError;
    if (child) {
      // Still buffered when the process is gone: the tool never read its whole request.
      if (child.stdin && !child.stdin.writableFinished) stdinFailed = true;
      child.stdin?.destroy();
      child.stdout?.destroy();
      child.stderr?.destroy();
    }
    const stdout = this.#stdout.length === 1 ? this.#stdout[0]! : Buffer.concat(this.#stdout);
    this.#stdout = [];
    const outcome = classifyToolRun({
      terminated: this.#terminated, overflow: this.#overflow, spawnError: this.#spawnError, stdoutError: this.#stdoutError, stderrError: this.#stderrError,
      stdinFailed, exitCode: this.#exitCode, signal: this.#signal, stdout, timeoutMs: this.#o.timeoutMs,
      outputLimit: this.#o.outputLimit,
    });
    const secrets = this.#o.secrets;
    let stderr = this.#stderr.length ? scrubSecrets(Buffer.concat(this.#stderr).toString('utf8'), secrets) : '';
    if (this.#stderrBytes > this.#stderrKept) stderr += `\n[${this.#stderrBytes - this.#stderrKept} more bytes of stderr discarded]`;
    this.#stderr = [];
    const info: ToolRunInfo = {
      outputBytes: this.#stdoutBytes, exitCode: this.#exitCode, signal: this.#signal,
      durationMs: performance.now() - this.#o.started, stderr, stderrBytes: this.#stderrBytes, pid: this.#pid,
    };
    let result: ToolResult;
    if (outcome.ok) {
      result = { ok: true, result: outcome.result, ...info };
    } else {
      let error = outcome.error;
      if (secrets && error.origin === 'tool') {
        const message = scrubSecrets(error.message, secrets);
        if (message !== error.message) error = new ToolError(error.kind, message, { code: error.code, origin: error.origin });
      }
      result = { ok: false, error, ...info };
    }
    this.#o.onDone(this);
    this.#resolve(result);
  }
}
