/**
 * error.type: one vocabulary for every span and metric the engine emits, decided here and nowhere else.
 *
 * Values are snake_case (lowercase letters, digits, `_`; at most 64), short and few: they are metric label
 * values as well as span attributes. A failure keeps its value all the way up the tree: the span where it
 * happened and every span it fails above it (a tool call, its task, its run, the sync request) carry the
 * same error.type, which is also the code stored on the failed execution.
 *
 *   tool_<kind>         a tool call failed: tool_timeout, tool_wait, tool_parse, tool_start, tool_input, ... (the
 *                       runtime's error kinds, domain.ts TOOL_ERROR_KINDS, prefixed: a bare `wait` says nothing
 *                       above the tool); tool_error when the tool reported its own error (domain.ts toolFailureCode)
 *   model_unreachable, model_http_<status>, model_protocol, model_config
 *                       a model call failed (engine/agent/openai-compatible.ts says when)
 *   timeout, canceled, shutdown, stale
 *                       the run was stopped from outside its own work (domain.ts STOP_ENDINGS codes)
 *   max_iterations, task_timeout, unknown_agent, ...
 *                       the engine's own failures: the `code` of an ExecutionFailure
 *   invalid_input, not_found, conflict, unavailable
 *                       a request the engine refused (engine/errors.ts)
 *   _OTHER              anything else (the registry's fallback value): an error that names no type of its own
 *
 * An error names its type by a snake_case `code` (ExecutionFailure, ModelError, the API's errors); a tool
 * error by its kind; a stop by its reason. Error classes are never used as values (no `InvalidInputError`).
 */
import { ERROR_TYPE_VALUE_OTHER } from '@opentelemetry/semantic-conventions';
import { STOP_ENDINGS, TOOL_ERROR_KINDS, toolFailureCode, type StopReason, type ToolErrorKind } from '../domain.ts';

export const OTHER_ERROR_TYPE = ERROR_TYPE_VALUE_OTHER;

const SNAKE_CASE = /^[a-z][a-z0-9_]{0,63}$/;

/** Whether `value` belongs to the vocabulary's shape (snake_case, or the registry's `_OTHER`). */
export function isErrorType(value: string): boolean {
  return value === OTHER_ERROR_TYPE || SNAKE_CASE.test(value);
}

/**
 * The error.type of `error`: the type it names itself, else `fallback` (a caller that knows more, such as
 * the stop reason of an aborted call), else `_OTHER`.
 */
export function errorTypeOf(error: unknown, fallback?: string): string {
  return ownErrorType(error) ?? (fallback !== undefined && isErrorType(fallback) ? fallback : OTHER_ERROR_TYPE);
}

function ownErrorType(error: unknown): string | undefined {
  if (error === null || typeof error !== 'object') return undefined;
  const { name, code, kind, reason } = error as { name?: unknown; code?: unknown; kind?: unknown; reason?: unknown };
  // A tool call's failure (engine/runtime ToolError): its kind, prefixed as the engine's task error codes are.
  if (name === 'ToolError' && typeof kind === 'string' && (TOOL_ERROR_KINDS as readonly string[]).includes(kind)) {
    return toolFailureCode(kind as ToolErrorKind);
  }
  // A run stopped from outside (engine/errors StopSignal): the code its ending is stored with.
  if (name === 'StopSignal' && typeof reason === 'string' && Object.hasOwn(STOP_ENDINGS, reason)) {
    return STOP_ENDINGS[reason as StopReason].code;
  }
  // AbortSignal.timeout() and abort() without a reason (DOMException).
  if (name === 'TimeoutError') return STOP_ENDINGS.timed_out.code;
  if (name === 'AbortError') return STOP_ENDINGS.canceled.code;
  if (typeof code === 'string' && SNAKE_CASE.test(code)) return code;
  return undefined;
}
