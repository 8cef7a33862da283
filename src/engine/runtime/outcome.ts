/**
 * How a tool call ended: its result, or a ToolError whose kind says what happened (TOOL_ERROR_KINDS in
 * src/domain.ts; the `error_kind` label of runtime_tool_errors_total and the span attribute of the same name).
 *
 * Before the tool starts (the runtime refuses the call; no process):
 *   start         a bad definition (env allowlist, relative script path, invalid input_schema, timeout;
 *                 code TOOL_BAD_DEFINITION)
 *   input         the call's input does not match the tool's input_schema, or is not JSON-serializable
 *                 (code TOOL_BAD_INPUT): the caller's input, not the tool, is at fault
 *   canceled      the call was canceled before it started (code CANCELED), or the runtime is shut down
 *                 (code SHUTDOWN)
 * After the process ran, first match wins:
 *   timeout       killed at its timeout
 *   output_limit  stdout exceeded the output limit; killed
 *   canceled      killed because the call was canceled (code CANCELED) or the runtime shut down (SHUTDOWN)
 *   wait          the spawn helper died while the tool ran (code TOOL_HELPER_DIED): the tool's process group
 *                 was killed, how it would have ended is unknown
 *   start         the process could not be spawned (ENOENT/EACCES/EMFILE)
 *   stdout/stderr a read error on that pipe (engine side)
 *   tool          the tool answered with its own error, `{"error": ...}`: its code (or TOOL_ERROR) is the
 *                 error's code, whatever the exit status
 *   wait          a `{"result"}` followed by a non-zero exit or a death by signal
 *   stdin         the request could not be delivered whole (EPIPE: the tool exited before reading it) and no
 *                 valid answer came back. A tool that answers validly and exits 0 without reading stdin succeeds
 *   wait          non-zero exit, or death by a signal the runtime did not send, without an answer
 *   parse         exit 0 but stdout is not exactly one JSON object with `result` or `error`
 *   unknown       none of those: a bug of the runtime itself
 */
import type { ToolErrorKind } from '../../domain.ts';
import type { ProcessRun } from './processes.ts';

/** Who caused a failure: the runtime or the process, the tool's own `{"error"}` answer, or a cancellation. */
export type ToolErrorOrigin = 'runtime' | 'tool' | 'canceled';

export class ToolError extends Error {
  override readonly name = 'ToolError';
  readonly kind: ToolErrorKind;
  /** Stable machine code: TOOL_TIMEOUT, TOOL_PARSE, ..., TOOL_BAD_INPUT, CANCELED, SHUTDOWN, or the tool's own code. */
  readonly code: string;
  /** Follows from the kind: `tool` for the tool's own error, `canceled` for a cancellation, else `runtime`. */
  readonly origin: ToolErrorOrigin;

  constructor(kind: ToolErrorKind, message: string, options: { code?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.kind = kind;
    this.code = options.code ?? `TOOL_${kind.toUpperCase()}`;
    this.origin = kind === 'tool' || kind === 'canceled' ? kind : 'runtime';
  }
}

/** What the classifier needs to know of a finished process, and of the call's bounds for its messages. */
export type ToolRunFacts = Pick<ProcessRun,
  'terminated' | 'overflow' | 'spawnError' | 'stdoutError' | 'stderrError' | 'stdinFailed' | 'exitCode' | 'signal' | 'stdout'> & {
  timeoutMs: number;
  outputLimit: number;
  /** ProcessRun.lost (absent: not lost). */
  lost?: Error | null;
};

export type ToolOutcomeValue = { ok: true; result: unknown } | { ok: false; error: ToolError };

/** Turns what happened into the call's outcome. Pure, so every branch is testable without a process. */
export function classifyToolRun(facts: ToolRunFacts): ToolOutcomeValue {
  switch (facts.terminated) {
    case 'timeout':
      return fail('timeout', `tool did not answer within ${facts.timeoutMs} ms; its process group was killed`);
    case 'output_limit':
      return fail('output_limit', `tool wrote more than ${facts.outputLimit} bytes to stdout; its process group was killed`);
    case 'canceled':
      return fail('canceled', 'tool call canceled; its process group was killed', { code: 'CANCELED' });
    case 'shutdown':
      return fail('canceled', 'tool runtime shut down; the tool process group was killed', { code: 'SHUTDOWN' });
    default:
      break;
  }
  if (facts.lost) return fail('wait', `tool process lost: ${facts.lost.message}`, { code: 'TOOL_HELPER_DIED', cause: facts.lost });
  if (facts.overflow) return fail('output_limit', `tool wrote more than ${facts.outputLimit} bytes to stdout; its process group was killed`);
  if (facts.spawnError) return fail('start', `could not start bun: ${facts.spawnError.message}`, { cause: facts.spawnError });
  if (facts.stdoutError) return fail('stdout', `reading the tool's stdout failed: ${facts.stdoutError.message}`, { cause: facts.stdoutError });
  if (facts.stderrError) return fail('stderr', `reading the tool's stderr failed: ${facts.stderrError.message}`, { cause: facts.stderrError });

  const exitedCleanly = facts.exitCode === 0 && facts.signal === null;
  const how = facts.signal !== null ? `was killed by ${facts.signal}` : `exited with code ${facts.exitCode}`;
  const response = parseResponse(facts.stdout);
  if (response.kind === 'error') return fail('tool', response.message, { code: response.code ?? 'TOOL_ERROR' });
  if (response.kind === 'result') {
    if (exitedCleanly) return { ok: true, result: response.result };
    return fail('wait', `tool answered but ${how}`);
  }
  if (facts.stdinFailed) return fail('stdin', `tool ${how} before reading its whole request from stdin`);
  if (!exitedCleanly) return fail('wait', `tool ${how} without a response`);
  return fail('parse', response.message);
}

/** A failed outcome. */
export function fail(kind: ToolErrorKind, message: string, options: { code?: string; cause?: unknown } = {}): { ok: false; error: ToolError } {
  return { ok: false, error: new ToolError(kind, message, options) };
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
