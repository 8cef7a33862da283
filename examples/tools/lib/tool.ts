/**
 * Shared plumbing for the sample tools (run by Bun, one process per call):
 *   read one JSON request from stdin -> apply an injected fault, if any -> run the handler -> write one
 *   JSON response to stdout ({"result": ...} or {"error": {"message", "code"}}).
 *
 * Fault injection, through the tool's own input (stripped before the handler sees it), only when the
 * operator enabled it: the engine sets SWITCHYARD_TOOL_FAULTS=1 in the tool's environment when its own
 * SWITCHYARD_TOOL_FAULTS is 1 (compose's demo, the stack tests). Otherwise the fields are stripped and ignored.
 * A caller chooses no file path and no process count, and sizes and durations have hard bounds:
 *   {"_fault": "<name>", "_delay_ms": n, ...}
 *   slow            sleep _delay_ms (default 1000, at most 60000) then answer normally
 *   fail            answer {"error": {"code": "INJECTED_FAILURE"}} and exit 1
 *   crash           kill itself with _signal (SIGSEGV by default; SIGABRT, SIGBUS, SIGKILL, SIGTERM allowed)
 *   hang            never answer (stays alive until killed)
 *   flood           write to stdout without end (until killed by the output cap)
 *   garbage         write binary garbage to stdout, exit 0
 *   exit_early      exit 3 right after the first stdin chunk, without reading the rest of the request
 *                   (detected in the first chunk, so put "_fault" first in the input)
 *   ignore_sigterm  ignore SIGTERM and hang (only SIGKILL ends it)
 *   spawn_children  start 2 child processes that ignore SIGTERM and live forever, print "tool_pid=<pid>" and
 *                   "child_pid=<pid>" lines on stderr, then hang, or answer normally when _respond is true
 *                   (leaving the children behind)
 *   stderr_flood    write _bytes (default 1 MiB, at most 4 MiB) to stderr, then answer normally
 *   close_stdout    write half a response, close stdout, wait _delay_ms (default 50), exit 0
 *
 * Tracing: when TRACEPARENT is set and OTEL_EXPORTER_OTLP_ENDPOINT (or ..._TRACES_ENDPOINT) is allowlisted,
 * the tool posts one span `tool.<id>.run`, child of the engine's runtime.execute_tool span, as OTLP/HTTP
 * JSON. It is bounded by a short timeout and its failure is ignored: tracing never fails a tool.
 */
import { spawn } from 'node:child_process';
import { closeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';

export interface ToolContext {
  toolId: string;
  executionId: string;
  config: Record<string, unknown>;
  timeoutMs: number;
}

/** Thrown by a handler for an expected failure: becomes {"error": {message, code}}. */
export class ToolFailure extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

export type ToolHandler = (input: Record<string, unknown>, context: ToolContext) => unknown;

interface ToolRequest {
  tool_id?: unknown;
  execution_id?: unknown;
  input?: unknown;
  config?: unknown;
  timeout_ms?: unknown;
}

const EXIT_EARLY = /"_fault"\s*:\s*"exit_early"/;
/** The operator's switch (see the header); read once. */
const FAULTS_ENABLED = process.env.SWITCHYARD_TOOL_FAULTS === '1';
const MAX_DELAY_MS = 60_000;
const MAX_STDERR_FLOOD_BYTES = 4 * 1024 * 1024;
const CHILDREN = 2;
const CRASH_SIGNALS = new Set(['SIGSEGV', 'SIGABRT', 'SIGBUS', 'SIGKILL', 'SIGTERM']);
const SPAN_EXPORT_TIMEOUT_MS = 250;

/** Runs a tool: call it once at the top level of the tool's script. */
export function runTool(handler: ToolHandler): void {
  main(handler).catch((error: unknown) => {
    respondError('TOOL_CRASHED', error instanceof Error ? error.message : String(error));
    process.exitCode = 1;
  });
}

async function main(handler: ToolHandler): Promise<void> {
  const startNs = nowNs();
  const raw = await readRequest();
  if (raw === null) process.exit(3); // exit_early: the rest of the request stays unread
  let request: ToolRequest;
  try {
    request = JSON.parse(raw) as ToolRequest;
  } catch {
    respondError('BAD_REQUEST', 'request on stdin is not valid JSON');
    process.exitCode = 2;
    return;
  }
  const context: ToolContext = {
    toolId: typeof request.tool_id === 'string' ? request.tool_id : 'unknown',
    executionId: typeof request.execution_id === 'string' ? request.execution_id : '',
    config: isRecord(request.config) ? request.config : {},
    timeoutMs: typeof request.timeout_ms === 'number' ? request.timeout_ms : 0,
  };
  const input: Record<string, unknown> = isRecord(request.input) ? { ...request.input } : {};
  // Lenient on purpose: templated workflow inputs may render "" for "no fault" and numbers as strings.
  const fault = FAULTS_ENABLED && typeof input._fault === 'string' && input._fault !== '' && input._fault !== 'none' ? input._fault : undefined;
  const requestedDelay = input._delay_ms === undefined || input._delay_ms === '' ? undefined : Number(input._delay_ms);
  const delayMs = requestedDelay === undefined || !Number.isFinite(requestedDelay) ? undefined : Math.min(Math.max(requestedDelay, 0), MAX_DELAY_MS);
  const params = { ...input };
  for (const key of Object.keys(input)) if (key.startsWith('_')) delete input[key];

  if (fault !== undefined) {
    const handled = await applyFault(fault, delayMs, params);
    if (handled) return;
  }

  let ok = true;
  try {
    const result = await handler(input, context);
    respond({ result: result ?? null });
  } catch (error) {
    ok = false;
    if (error instanceof ToolFailure) respondError(error.code, error.message);
    else respondError('TOOL_FAILED', error instanceof Error ? error.message : String(error));
    process.exitCode = 1;
  }
  await exportSpan(context.toolId, startNs, ok);
}

/** Reads all of stdin; null when the first chunk asks for exit_early (the rest is never read). */
async function readRequest(): Promise<string | null> {
  const chunks: Buffer[] = [];
  let first = true;
  for await (const chunk of process.stdin) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    if (first) {
      first = false;
      if (FAULTS_ENABLED && EXIT_EARLY.test(buffer.toString('latin1'))) return null;
    }
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Returns true when the fault replaces the normal answer. */
async function applyFault(fault: string, delayMs: number | undefined, params: Record<string, unknown>): Promise<boolean> {
  switch (fault) {
    case 'slow':
      await sleep(delayMs ?? 1000);
      return false;
    case 'fail':
      respondError('INJECTED_FAILURE', 'injected failure');
      process.exitCode = 1;
      return true;
    case 'crash':
      process.kill(process.pid, (typeof params._signal === 'string' && CRASH_SIGNALS.has(params._signal) ? params._signal : 'SIGSEGV') as NodeJS.Signals);
      await hang();
      return true;
    case 'hang':
      await hang();
      return true;
    case 'flood':
      await flood();
      return true;
    case 'garbage':
      process.stdout.write(Buffer.concat([Buffer.from([0xff, 0xfe, 0x00, 0x7b]), randomBytes(4096)]));
      return true;
    case 'ignore_sigterm':
      process.on('SIGTERM', () => {});
      await hang();
      return true;
    case 'spawn_children': {
      const lines = [`tool_pid=${process.pid}`];
      for (let i = 0; i < CHILDREN; i++) {
        const child = spawn(process.execPath, ['-e', 'process.on("SIGTERM", () => {}); setInterval(() => {}, 1 << 30);'], {
          stdio: ['ignore', 'inherit', 'inherit'],
        });
        child.unref();
        lines.push(`child_pid=${child.pid}`);
      }
      process.stderr.write(lines.join('\n') + '\n');
      if (params._respond === true) return false;
      await hang();
      return true;
    }
    case 'stderr_flood': {
      const total = typeof params._bytes === 'number' && params._bytes >= 0 ? Math.min(params._bytes, MAX_STDERR_FLOOD_BYTES) : 1 << 20;
      const block = Buffer.alloc(64 * 1024, 'e');
      for (let written = 0; written < total; written += block.length) {
        const part = total - written >= block.length ? block : block.subarray(0, total - written);
        if (!process.stderr.write(part)) await new Promise((resolve) => process.stderr.once('drain', resolve));
      }
      return false;
    }
    case 'close_stdout':
      await new Promise<void>((resolve) => process.stdout.write('{"result": {"partial": ', () => resolve()));
      closeSync(1);
      await sleep(delayMs ?? 50);
      return true;
    default:
      respondError('UNKNOWN_FAULT', `unknown _fault ${JSON.stringify(fault)}`);
      process.exitCode = 1;
      return true;
  }
}

async function flood(): Promise<never> {
  const block = Buffer.alloc(256 * 1024, 'x');
  for (;;) {
    if (!process.stdout.write(block)) await new Promise((resolve) => process.stdout.once('drain', resolve));
  }
}

function hang(): Promise<never> {
  setInterval(() => {}, 1 << 30);
  return new Promise<never>(() => {});
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function respond(body: unknown): void {
  process.stdout.write(JSON.stringify(body) + '\n');
}

function respondError(code: string, message: string): void {
  respond({ error: { code, message } });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return !!value && typeof value === 'object' && !Array.isArray(value);
}

function nowNs(): bigint {
  return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000)) * 1000n;
}

/** One OTLP/HTTP JSON span, child of TRACEPARENT; bounded and silent on failure. */
async function exportSpan(toolId: string, startNs: bigint, ok: boolean): Promise<void> {
  const parent = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(process.env.TRACEPARENT ?? '');
  const base = process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
  const url = process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? (base ? `${base.replace(/\/+$/, '')}/v1/traces` : undefined);
  if (!parent || !url || (parseInt(parent[3]!, 16) & 1) === 0) return;
  const body = {
    resourceSpans: [{
      resource: { attributes: [{ key: 'service.name', value: { stringValue: process.env.OTEL_SERVICE_NAME ?? 'switchyard-tool' } }] },
      scopeSpans: [{
        scope: { name: 'switchyard-tool' },
        spans: [{
          traceId: parent[1],
          spanId: randomBytes(8).toString('hex'),
          parentSpanId: parent[2],
          name: `tool.${toolId}.run`,
          kind: 1,
          startTimeUnixNano: startNs.toString(),
          endTimeUnixNano: nowNs().toString(),
          attributes: [
            { key: 'gen_ai.tool.name', value: { stringValue: toolId } },
            { key: 'process.pid', value: { intValue: String(process.pid) } },
          ],
          status: { code: ok ? 1 : 2 },
        }],
      }],
    }],
  };
  try {
    await fetch(url, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
      signal: AbortSignal.timeout(SPAN_EXPORT_TIMEOUT_MS),
    });
  } catch {
    // tracing is best effort: never fail or delay a tool beyond the bound
  }
}
