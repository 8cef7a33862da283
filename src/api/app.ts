import type { z } from 'zod';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import type { Engine } from '../engine/engine.ts';
import type { SandboxReport, ToolLimits } from '../engine/runtime/sandbox.ts';
import { ConflictError, InvalidInputError, NotFoundError, TooManyExecutionsError, UnavailableError } from '../engine/errors.ts';
import { StoreUnavailableError } from '../store/errors.ts';
import type { ExecutionRecord } from '../store/store.ts';
import type { ExecutionKind } from '../domain.ts';
import type { Telemetry } from '../telemetry/recorder.ts';
import { callerOf, keylessLoopbackOnly, requireApiKey, type Authenticator } from './auth.ts';
import { setHttpRoute } from '../telemetry/instrumentations.ts';
import { jsonDepthExceeds, MAX_JSON_DEPTH, parseByteLimit } from './limits.ts';
import { openApiDocument } from './openapi.ts';
import { ProblemError, problems, sendProblem, type Problem } from './problem.ts';
import { Execution, listQuery, MAX_LIST_BYTES, parseRequest, startBody as startBodySchema, syncQuery, type RequestBounds } from './schemas.ts';

export { MAX_LIST_BYTES, MAX_LIST_LIMIT } from './schemas.ts';

export interface AppOptions {
  readonly engine: Engine;
  readonly telemetry: Telemetry;
  readonly logger: Logger;
  /** Checks every /api request's bearer key; one without keys lets every request through (loopback only, see config). */
  readonly authenticator: Authenticator;
  readonly bodyLimit: string;
  readonly syncTimeoutMs: number;
  readonly syncTimeoutMaxMs: number;
  /** Whether the engine can take work (false while shutting down). */
  readonly isReady: () => boolean;
  /** What the tool sandbox enforces on this host (served by GET /api/v1/definitions). */
  readonly toolSandbox?: SandboxReport;
}

const KIND_PATHS: Record<string, ExecutionKind> = { workflows: 'workflow', tasks: 'task', agents: 'agent' };

export function createApp(options: AppOptions): express.Express {
  const { engine, telemetry, logger } = options;
  const bounds: RequestBounds = { syncTimeoutMaxMs: options.syncTimeoutMaxMs };
  const startSchema = startBodySchema(bounds);
  const syncQuerySchema = syncQuery(bounds);
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  // The http instrumentation makes each request's SERVER span and http.server.request.duration; the app
  // names the route template they carry. 'finish' comes before the 'close' on which the instrumentation ends
  // them; express keeps the matched route on the request (also when its handler threw), none for a 404.
  app.use((req, res, next) => {
    res.once('finish', () => {
      if (req.route?.path !== undefined) setHttpRoute(`${req.baseUrl}${String(req.route.path)}`);
    });
    next();
  });
  // Without keys, only this machine (and no web page elsewhere) may call, the probes included.
  app.use(keylessLoopbackOnly(options.authenticator));

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    if (!options.isReady()) return sendProblem(res, problems.unavailable('not ready'), '/readyz');
    try {
      await engine.list({ limit: 1 });
    } catch (error) {
      // The probe is open to anyone: it says ready or not, and the reason goes to the log only.
      logger.warn({ err: error }, 'not ready: the execution store cannot be read');
      return sendProblem(res, problems.unavailable('not ready'), '/readyz');
    }
    res.json({ status: 'ready' });
  });

  // Authentication first: an unauthenticated request costs a header check, never a body read.
  app.use('/api', requireApiKey(options.authenticator));

  // A declared body over the limit is refused before a byte of it is read (and the connection closed,
  // rather than drained).
  const bodyLimitBytes = parseByteLimit(options.bodyLimit);
  app.use('/api', (req, res, next) => {
    const declared = Number(req.headers['content-length']);
    if (declared > bodyLimitBytes) {
      res.setHeader('connection', 'close');
      return next(new ProblemError(problems.tooLarge(options.bodyLimit)));
    }
    next();
  });

  // JSON bodies only, on the API; an empty body means "no input".
  app.use('/api', (req, _res, next) => {
    const hasBody = Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;
    if (req.method === 'POST' && hasBody && !req.is('application/json')) {
      return next(new ProblemError(problems.unsupportedMediaType(req.headers['content-type'])));
    }
    next();
  });
  app.use('/api', express.json({
    limit: options.bodyLimit, strict: false, type: 'application/json',
    // Checked on the raw bytes before JSON.parse: deep nesting is refused in one linear pass.
    verify: (_req, _res, raw) => {
      if (jsonDepthExceeds(raw, MAX_JSON_DEPTH)) throw new ProblemError(problems.badRequest(`the body is nested deeper than ${MAX_JSON_DEPTH} levels`));
    },
  }));

  // Behind the key like the rest: this engine's document names its project's workflows and their input schemas,
  // as /definitions does. The project-independent document is docs/openapi.json.
  const document = JSON.stringify(openApiDocument({ bounds, definitions: engine.definitions }));
  app.get('/api/v1/openapi.json', (_req, res) => {
    res.type('application/json').send(document);
  });

  app.get('/api/v1/definitions', (_req, res) => {
    const d = engine.definitions;
    res.json({
      workflows: [...d.workflows.values()].map((w) => ({ id: w.id, description: w.description, tasks: w.tasks.map((t) => t.id), input_schema: w.input_schema ?? null })),
      tasks: [...d.tasks.values()].map((t) => ({ id: t.id, description: t.description ?? null })),
      agents: [...d.agents.values()].map((a) => ({ id: a.id, description: a.description, provider: a.model.provider, tools: a.tools })),
      tools: [...d.tools.values()].map((t) => ({ id: t.id, description: t.description, timeout_ms: t.timeoutMs, sandbox: presentLimits(t.sandbox) })),
      tool_sandbox: options.toolSandbox ?? null,
    });
  });

  for (const [path, kind] of Object.entries(KIND_PATHS)) {
    const base = `/api/v1/${path}/:id/executions`;
    app.post(base, async (req, res) => {
      const { input, parentExecutionId } = await startBody(req.body, startSchema, engine);
      const record = await engine.start({ kind, target: String((req.params as Record<string, string>)['id']), input, parentExecutionId, ...callerFields(res, 'api') });
      telemetry.add('httpExecStarted', 1, { kind });
      res.status(202).location(`/api/v1/executions/${record.id}`).json(presentExecution(record));
    });

    app.post(`${base}/sync`, async (req, res) => {
      const started = performance.now();
      let outcome: 'success' | 'failed' | 'timed_out' | 'canceled' | 'timeout' | 'error' = 'error';
      try {
        // `?timeout_ms=` wins over the body's.
        const queryTimeoutMs = parseRequest(syncQuerySchema, req.query).timeout_ms;
        const { input, parentExecutionId, timeoutMs: bodyTimeoutMs } = await startBody(req.body, startSchema, engine);
        const timeoutMs = queryTimeoutMs ?? bodyTimeoutMs ?? options.syncTimeoutMs;
        const { record, completed } = await engine.executeSync(
          { kind, target: String((req.params as Record<string, string>)['id']), input, parentExecutionId, ...callerFields(res, 'api_sync') }, timeoutMs,
        );
        if (!completed) {
          outcome = 'timeout';
          telemetry.add('httpExecTimeouts', 1, { kind });
          telemetry.add('httpExecErrors', 1, { kind, code: '408' });
          return sendProblem(res, problems.syncTimeout(
            `the execution was still ${record.status} after ${timeoutMs} ms; it keeps running: follow it at /api/v1/executions/${record.id}`,
            presentExecution(record),
          ), req.originalUrl);
        }
        outcome = record.status === 'paused' ? 'success' : (record.status as typeof outcome);
        res.status(200).json(presentExecution(record));
      } finally {
        telemetry.record('httpExecSyncLatency', (performance.now() - started) / 1000, { kind, outcome });
      }
    });
    app.all(base, methodNotAllowed(['POST']));
    app.all(`${base}/sync`, methodNotAllowed(['POST']));
  }

  app.get('/api/v1/executions', async (req, res) => {
    const { status, limit, include, cursor } = parseRequest(listQuery, req.query);
    const withData = include === 'io';
    const after = decodeCursor(cursor);
    const records = await engine.list({ status, limit, after, withData });
    // A page ends at `limit` executions or, with their data, at MAX_LIST_BYTES of JSON, whichever comes first.
    const page: unknown[] = [];
    let bytes = 0;
    let last: ExecutionRecord | undefined;
    for (const record of records) {
      const item = withData ? presentExecution(record) : presentSummary(record);
      const size = withData ? Buffer.byteLength(JSON.stringify(item)) : 0;
      if (withData && page.length > 0 && bytes + size > MAX_LIST_BYTES) break;
      // One execution bigger than the whole cap is listed without its data: GET /executions/:id has it.
      page.push(size > MAX_LIST_BYTES ? { ...presentSummary(record), data_omitted: true } : item);
      bytes += Math.min(size, MAX_LIST_BYTES);
      last = record;
    }
    const more = page.length < records.length || records.length === limit;
    res.json({ executions: page, next_cursor: more && last ? encodeCursor(last) : null });
  });

  app.get('/api/v1/executions/:id', async (req, res) => {
    const id = String(req.params['id']);
    const record = await engine.get(id);
    if (!record) throw new ProblemError(problems.notFound(`execution "${id}" does not exist`));
    res.json(presentExecution(record));
  });

  app.post('/api/v1/executions/:id/cancel', async (req, res) => {
    const record = await engine.cancel(String(req.params['id']));
    res.json(presentExecution(record));
  });
  app.post('/api/v1/executions/:id/resume', async (req, res) => {
    const record = await engine.resume(String(req.params['id']));
    res.status(202).json(presentExecution(record));
  });

  // A path answers a method it does not take with 405 and Allow (what Schemathesis's unsupported_method checks).
  for (const path of ['/healthz', '/readyz', '/api/v1/openapi.json', '/api/v1/definitions', '/api/v1/executions', '/api/v1/executions/:id']) {
    app.all(path, methodNotAllowed(['GET']));
  }
  app.all(['/api/v1/executions/:id/cancel', '/api/v1/executions/:id/resume'], methodNotAllowed(['POST']));

  app.use((req, _res, next) => {
    next(new ProblemError(problems.notFound(`no route for ${req.method} ${req.path}`)));
  });

  // Express 5 passes rejected async handlers here too.
  app.use((error: unknown, req: Request, res: Response, _next: NextFunction) => {
    const problem = toProblem(error, options.bodyLimit);
    if (problem.status >= 500) logger.error({ err: error, method: req.method, path: req.path }, 'request failed');
    const kind = executionKindOfPath(req.path);
    if (kind) telemetry.add('httpExecErrors', 1, { kind, code: String(problem.status) });
    if (res.headersSent) return;
    if (problem.status === 429) res.setHeader('retry-after', String(problem['retry_after_seconds']));
    sendProblem(res, problem, req.originalUrl);
  });

  return app;
}

/** Which execution API a path belongs to, for http_exec_errors_total; undefined outside it. */
function executionKindOfPath(path: string): ExecutionKind | 'execution' | undefined {
  const segment = /^\/api\/v1\/([a-z]+)/.exec(path)?.[1];
  if (segment === 'executions') return 'execution';
  return segment === undefined ? undefined : KIND_PATHS[segment];
}

function methodNotAllowed(allowed: string[]) {
  return (req: Request, res: Response) => {
    res.setHeader('allow', allowed.join(', '));
    throw new ProblemError(problems.methodNotAllowed(req.method, allowed));
  };
}

/**
 * The body of a start request: `{ "input": ..., "parent_execution_id": "...", "timeout_ms": n }`, everything
 * optional (src/api/schemas.ts). A parent must be an execution that exists, so the link a record keeps always
 * leads somewhere.
 */
async function startBody(body: unknown, schema: ReturnType<typeof startBodySchema>, engine: Engine): Promise<{ input: unknown; parentExecutionId: string | null; timeoutMs: number | undefined }> {
  const { input = {}, parent_execution_id: parent = null, timeout_ms: timeoutMs } = parseRequest(schema, body === undefined ? {} : body);
  if (parent !== null && !(await engine.get(parent))) {
    throw new ProblemError(problems.unknownParent(`parent_execution_id "${parent}" names no execution; start the parent first, or leave the field out`));
  }
  return { input, parentExecutionId: parent, timeoutMs };
}

/**
 * Who started a run: the key's id, and the trigger label. The load generator's key says `loadgen`, so
 * dashboards can tell its traffic from real callers; no header a caller sets can claim that label.
 */
function callerFields(res: Response, fallback: 'api' | 'api_sync'): { trigger: 'api' | 'api_sync' | 'loadgen'; callerKeyId: string | null } {
  const caller = callerOf(res);
  return { trigger: caller.trigger ?? fallback, callerKeyId: caller.keyId };
}

/** Opaque to callers: where the previous page ended (created_at and id of its last execution). */
function encodeCursor(record: ExecutionRecord): string {
  return Buffer.from(JSON.stringify([record.createdAt, record.id])).toString('base64url');
}

function decodeCursor(cursor: string | undefined): { createdAt: number; id: string } | undefined {
  if (cursor === undefined) return undefined;
  try {
    const [createdAt, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown[];
    if (typeof createdAt === 'number' && Number.isSafeInteger(createdAt) && typeof id === 'string' && id.length <= 64) return { createdAt, id };
  } catch {
    // reported below
  }
  throw new ProblemError(problems.badRequest('cursor is not one this API returned as next_cursor'));
}

function toProblem(error: unknown, bodyLimit: string): Problem {
  if (error instanceof ProblemError) return error.problem;
  if (error instanceof NotFoundError) return problems.notFound(error.message);
  if (error instanceof InvalidInputError) return problems.invalidInput(error.message, error.problems);
  if (error instanceof ConflictError) return problems.conflict(error.message, { execution: presentExecution(error.record) });
  if (error instanceof UnavailableError) return problems.unavailable(error.message);
  if (error instanceof TooManyExecutionsError) return problems.tooManyExecutions(error.message, error.retryAfterSeconds);
  // node:sqlite's errors and PostgreSQL's (connection, timeout, refusal): the store, not the request, is what failed.
  if (error instanceof StoreUnavailableError || (error as { code?: unknown } | null)?.code === 'ERR_SQLITE_ERROR') {
    return problems.unavailable(`the execution store cannot be used: ${(error as Error).message}`);
  }
  const type = (error as { type?: string } | null)?.type;
  if (type === 'entity.parse.failed') return problems.malformedJson(`the body is not valid JSON: ${(error as Error).message}`);
  if (type === 'entity.too.large') return problems.tooLarge(bodyLimit);
  if (type === 'encoding.unsupported' || type === 'charset.unsupported') return problems.unsupportedMediaType((error as Error).message);
  const status = (error as { status?: number } | null)?.status;
  if (typeof status === 'number' && status >= 400 && status < 500) return problems.badRequest((error as Error).message);
  return problems.internal();
}

/** A list item: the execution without its input and output (`?include=io` adds them). */
/** A definition's own sandbox settings, as written in its YAML (the runtime's defaults fill the rest). */
function presentLimits(limits: Partial<ToolLimits> | undefined) {
  return { memory_mb: limits?.memoryMb ?? null, processes: limits?.processes ?? null, network: limits?.network ?? null };
}

export function presentSummary(record: ExecutionRecord) {
  const { input: _input, output: _output, ...summary } = presentExecution(record);
  return summary;
}

export function presentExecution(record: ExecutionRecord): z.output<typeof Execution> {
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  return {
    id: record.id,
    kind: record.kind,
    target: record.target,
    status: record.status,
    trigger: record.trigger,
    input: record.input,
    output: record.output,
    error: record.error,
    created_at: new Date(record.createdAt).toISOString(),
    started_at: iso(record.startedAt),
    ended_at: iso(record.endedAt),
    heartbeat_at: new Date(record.heartbeatAt).toISOString(),
    duration_ms: record.startedAt !== null && record.endedAt !== null ? record.endedAt - record.startedAt : null,
    trace_id: record.traceId,
    parent_execution_id: record.parentExecutionId,
    caller_key_id: record.callerKeyId,
    diagnostics: {
      last_started_task: record.lastStartedTask,
      last_completed_task: record.lastCompletedTask,
      last_completed_success: record.lastCompletedSuccess,
      finalization_path: record.finalizationPath,
      previous_status: record.previousStatus,
      completion_failure: record.completionFailure,
    },
  };
}
