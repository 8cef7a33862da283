import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { z } from 'zod';
import { mergeApiKeys, parseApiKeys, type ApiKey } from './api/auth.ts';
import { DEFAULT_SANDBOX_PROCESSES, DEFAULT_SANDBOX_MEMORY_MB, MIN_SANDBOX_MEMORY_MB, resolveSandboxWrapper, TOOL_SANDBOX_MODES, type ToolSandboxMode } from './engine/runtime/sandbox.ts';
import { isLoopback, plainHttpKeyProblem } from './loopback.ts';

export { isLoopback } from './loopback.ts';

const milliseconds = (fallback: number) => z.coerce.number().int().positive().default(fallback);

const EnvSchema = z.object({
  SWITCHYARD_HOST: z.string().default('127.0.0.1'),
  SWITCHYARD_PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  SWITCHYARD_PROJECT_DIR: z.string().default('examples'),
  SWITCHYARD_DB: z.string().min(1).default('data/switchyard.db'),
  // The PostgreSQL password from a file (a container secret), so that it is in neither the URL nor the environment.
  SWITCHYARD_DB_PASSWORD_FILE: z.string().optional(),
  SWITCHYARD_DB_POOL_MAX: z.coerce.number().int().min(1).max(1000).default(10),
  SWITCHYARD_DB_STATEMENT_TIMEOUT_MS: milliseconds(5_000),
  SWITCHYARD_DB_CONNECT_TIMEOUT_MS: milliseconds(5_000),
  SWITCHYARD_RUNTIME_DIR: z.string().optional(),
  SWITCHYARD_TOOL_PROCESSES: z.enum(['helper', 'local']).default('helper'),
  SWITCHYARD_TOOL_SANDBOX: z.enum(TOOL_SANDBOX_MODES).default('enforce'),
  SWITCHYARD_SANDBOX_WRAPPER: z.string().optional(),
  SWITCHYARD_TOOL_SANDBOX_MEMORY_MB: z.coerce.number().int().min(MIN_SANDBOX_MEMORY_MB).max(1024 * 1024).default(DEFAULT_SANDBOX_MEMORY_MB),
  SWITCHYARD_TOOL_SANDBOX_PROCESSES: z.coerce.number().int().min(1).max(100_000).default(DEFAULT_SANDBOX_PROCESSES),
  SWITCHYARD_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  SWITCHYARD_LOG_FORMAT: z.enum(['auto', 'json', 'pretty']).default('auto'),
  SWITCHYARD_INSTANCE_ID: z.string().optional(),
  SWITCHYARD_SYNC_TIMEOUT_MS: milliseconds(60_000),
  SWITCHYARD_SYNC_TIMEOUT_MAX_MS: milliseconds(300_000),
  SWITCHYARD_HEARTBEAT_MS: milliseconds(2_000),
  SWITCHYARD_STALE_AFTER_MS: milliseconds(15_000),
  SWITCHYARD_SWEEP_INTERVAL_MS: milliseconds(5_000),
  SWITCHYARD_SHUTDOWN_GRACE_MS: milliseconds(10_000),
  SWITCHYARD_TELEMETRY_FLUSH_MS: milliseconds(5_000),
  SWITCHYARD_TOOL_OUTPUT_LIMIT_BYTES: z.coerce.number().int().positive().default(10 * 1024 * 1024),
  SWITCHYARD_BODY_LIMIT: z.string().default('1mb'),
  SWITCHYARD_MAX_IN_FLIGHT_PER_KEY: z.coerce.number().int().min(0).max(1_000_000).default(64),
  SWITCHYARD_MAX_TOOL_PROCESSES: z.coerce.number().int().min(1).max(4096).default(16),
  SWITCHYARD_RETENTION_DAYS: z.coerce.number().min(0).max(36_500).default(30),
  SWITCHYARD_RETENTION_INTERVAL_MS: milliseconds(600_000),
  SWITCHYARD_RETENTION_BATCH: z.coerce.number().int().min(1).max(10_000).default(500),
  SWITCHYARD_EXECUTION_DATA_LIMIT_BYTES: z.coerce.number().int().positive().default(32 * 1024 * 1024),
  // Logged and put in error messages: the key goes in SWITCHYARD_MODEL_API_KEY(_FILE), never in the URL.
  SWITCHYARD_MODEL_BASE_URL: z.string().url().refine((url) => new URL(url).username === '' && new URL(url).password === '', 'must not carry a user or password: set SWITCHYARD_MODEL_API_KEY_FILE').optional(),
  SWITCHYARD_MODEL_API_KEY: z.string().optional(),
  SWITCHYARD_MODEL_API_KEY_FILE: z.string().optional(),
  SWITCHYARD_API_KEYS: z.string().optional(),
  SWITCHYARD_API_KEYS_FILE: z.string().optional(),
  SWITCHYARD_TOOL_FAULTS: z.enum(['0', '1', 'true', 'false', '']).default('0'),
  SWITCHYARD_REQUEST_TIMEOUT_MS: milliseconds(30_000),
  SWITCHYARD_HEADERS_TIMEOUT_MS: milliseconds(10_000),
  SWITCHYARD_KEEP_ALIVE_TIMEOUT_MS: milliseconds(5_000),
});

export interface Config {
  readonly host: string;
  readonly port: number;
  readonly projectDir: string;
  /** Where executions are kept: a SQLite file (the default), or a PostgreSQL database (SWITCHYARD_DB=postgres://...). */
  readonly store: StoreConfig;
  /**
   * Where live tool processes are recorded, so that an engine that starts kills those a killed engine left
   * running (engine/runtime/process-records.ts). Default: `tool-processes` next to the SQLite file (with
   * PostgreSQL: data/tool-processes).
   */
  readonly runtimeDir: string;
  /**
   * Who starts tool processes: `helper`, a long-lived spawn helper process (the engine's event loop never forks
   * the engine), or `local`, the engine itself (engine/runtime/helper-processes.ts).
   */
  readonly toolProcesses: 'helper' | 'local';
  /**
   * The tool sandbox (engine/runtime/sandbox.ts): `enforce`, or `off` (the operator's explicit opt-out: tools run
   * unconfined); the wrapper binary; the memory (MB) and process limits of a definition that sets none.
   */
  readonly toolSandbox: ToolSandboxMode;
  readonly sandboxWrapper: string;
  readonly sandboxMemoryMb: number;
  readonly sandboxProcesses: number;
  readonly logLevel: z.infer<typeof EnvSchema>['SWITCHYARD_LOG_LEVEL'];
  /** Pretty lines on a terminal, JSON otherwise (`auto`), or one of them always (logger.ts). */
  readonly logFormat: z.infer<typeof EnvSchema>['SWITCHYARD_LOG_FORMAT'];
  /** Identifies this engine process: owner of its executions' heartbeats and service.instance.id. */
  readonly instanceId: string;
  readonly syncTimeoutMs: number;
  readonly syncTimeoutMaxMs: number;
  readonly heartbeatMs: number;
  readonly staleAfterMs: number;
  readonly sweepIntervalMs: number;
  readonly shutdownGraceMs: number;
  /** At shutdown, how long the last telemetry export may take before the process exits anyway. */
  readonly telemetryFlushMs: number;
  readonly toolOutputLimitBytes: number;
  readonly bodyLimit: string;
  /** Most executions one API key (or the key-less caller) may have pending or running, across engines sharing the store; undefined: no limit (0 in the environment). */
  readonly maxInFlightPerKey: number | undefined;
  /** Most bytes of JSON one execution may store (input, task outputs and output together). */
  readonly executionDataLimitBytes: number;
  /** Most tool processes this engine runs at once; further calls wait for a slot. */
  readonly maxToolProcesses: number;
  /** Ended executions are deleted this long after their end, in batches, every interval; undefined: kept forever (0 days in the environment). */
  readonly retention: { readonly periodMs: number; readonly intervalMs: number; readonly batchSize: number } | undefined;
  readonly modelBaseUrl: string | undefined;
  readonly modelApiKey: string | undefined;
  /** The API keys callers must present; empty: no authentication (allowed on a loopback address only). */
  readonly apiKeys: readonly ApiKey[];
  /** Whether the sample tools' fault-injection input fields take effect (the demo and the stack tests enable it). */
  readonly toolFaults: boolean;
  /** Node's server timeouts: the whole request (headers and body), the headers, an idle keep-alive connection. */
  readonly requestTimeoutMs: number;
  readonly headersTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
}

export type StoreConfig =
  | { readonly kind: 'sqlite'; readonly path: string }
  | {
    readonly kind: 'postgres';
    /** The URL as given, password included: pass it to the driver only; log `redactUrl(url)`. */
    readonly url: string;
    /** From SWITCHYARD_DB_PASSWORD_FILE: replaces the URL's password (and a pgpass file's). */
    readonly password?: string;
    readonly poolMax: number;
    readonly statementTimeoutMs: number;
    readonly connectTimeoutMs: number;
  };

/** `postgres://` or `postgresql://` (any case) selects PostgreSQL; anything else is a SQLite file path. */
export function isPostgresUrl(value: string): boolean {
  return /^postgres(?:ql)?:\/\//i.test(value);
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Reads the engine's configuration from the environment, once, and says exactly what is wrong. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(`invalid configuration: ${problems.join('; ')}`);
  }
  const e = parsed.data;
  if (e.SWITCHYARD_STALE_AFTER_MS <= e.SWITCHYARD_HEARTBEAT_MS * 2) {
    throw new ConfigError('invalid configuration: SWITCHYARD_STALE_AFTER_MS must exceed twice SWITCHYARD_HEARTBEAT_MS, or live runs would be swept');
  }
  if (e.SWITCHYARD_HEADERS_TIMEOUT_MS > e.SWITCHYARD_REQUEST_TIMEOUT_MS) {
    throw new ConfigError('invalid configuration: SWITCHYARD_HEADERS_TIMEOUT_MS must not exceed SWITCHYARD_REQUEST_TIMEOUT_MS');
  }
  if (e.SWITCHYARD_MODEL_API_KEY && e.SWITCHYARD_MODEL_API_KEY_FILE) {
    throw new ConfigError('invalid configuration: set SWITCHYARD_MODEL_API_KEY or SWITCHYARD_MODEL_API_KEY_FILE, not both');
  }
  const modelApiKey = e.SWITCHYARD_MODEL_API_KEY_FILE
    ? readSecretFile(e.SWITCHYARD_MODEL_API_KEY_FILE, 'SWITCHYARD_MODEL_API_KEY_FILE').trim()
    : e.SWITCHYARD_MODEL_API_KEY || undefined;
  const keyOverPlainHttp = modelApiKey && e.SWITCHYARD_MODEL_BASE_URL ? plainHttpKeyProblem(e.SWITCHYARD_MODEL_BASE_URL) : undefined;
  if (keyOverPlainHttp) throw new ConfigError(`invalid configuration: SWITCHYARD_MODEL_BASE_URL: ${keyOverPlainHttp}`);
  // An empty value counts as unset (compose's `${VAR:-}` gives one).
  const apiKeys = readApiKeys(e.SWITCHYARD_API_KEYS || undefined, e.SWITCHYARD_API_KEYS_FILE || undefined);
  if (apiKeys.length === 0 && !isLoopback(e.SWITCHYARD_HOST)) {
    throw new ConfigError(`invalid configuration: SWITCHYARD_HOST=${e.SWITCHYARD_HOST} is not a loopback address and no API keys are configured; `
      + 'set SWITCHYARD_API_KEYS_FILE or SWITCHYARD_API_KEYS (see README, Authentication), or listen on 127.0.0.1');
  }
  const store = storeConfig(e);
  return {
    host: e.SWITCHYARD_HOST,
    port: e.SWITCHYARD_PORT,
    projectDir: resolve(e.SWITCHYARD_PROJECT_DIR),
    store,
    // An empty value counts as unset (compose's `${VAR:-}` gives one).
    runtimeDir: resolve(e.SWITCHYARD_RUNTIME_DIR || join(store.kind === 'sqlite' && store.path !== ':memory:' ? dirname(store.path) : 'data', 'tool-processes')),
    toolProcesses: e.SWITCHYARD_TOOL_PROCESSES,
    toolSandbox: e.SWITCHYARD_TOOL_SANDBOX,
    sandboxWrapper: resolve(resolveSandboxWrapper({ SWITCHYARD_SANDBOX_WRAPPER: e.SWITCHYARD_SANDBOX_WRAPPER })),
    sandboxMemoryMb: e.SWITCHYARD_TOOL_SANDBOX_MEMORY_MB,
    sandboxProcesses: e.SWITCHYARD_TOOL_SANDBOX_PROCESSES,
    logLevel: e.SWITCHYARD_LOG_LEVEL,
    logFormat: e.SWITCHYARD_LOG_FORMAT,
    instanceId: e.SWITCHYARD_INSTANCE_ID ?? randomUUID(),
    syncTimeoutMs: Math.min(e.SWITCHYARD_SYNC_TIMEOUT_MS, e.SWITCHYARD_SYNC_TIMEOUT_MAX_MS),
    syncTimeoutMaxMs: e.SWITCHYARD_SYNC_TIMEOUT_MAX_MS,
    heartbeatMs: e.SWITCHYARD_HEARTBEAT_MS,
    staleAfterMs: e.SWITCHYARD_STALE_AFTER_MS,
    sweepIntervalMs: e.SWITCHYARD_SWEEP_INTERVAL_MS,
    shutdownGraceMs: e.SWITCHYARD_SHUTDOWN_GRACE_MS,
    telemetryFlushMs: e.SWITCHYARD_TELEMETRY_FLUSH_MS,
    toolOutputLimitBytes: e.SWITCHYARD_TOOL_OUTPUT_LIMIT_BYTES,
    bodyLimit: e.SWITCHYARD_BODY_LIMIT,
    maxInFlightPerKey: e.SWITCHYARD_MAX_IN_FLIGHT_PER_KEY === 0 ? undefined : e.SWITCHYARD_MAX_IN_FLIGHT_PER_KEY,
    maxToolProcesses: e.SWITCHYARD_MAX_TOOL_PROCESSES,
    executionDataLimitBytes: e.SWITCHYARD_EXECUTION_DATA_LIMIT_BYTES,
    retention: e.SWITCHYARD_RETENTION_DAYS === 0 ? undefined : {
      periodMs: Math.round(e.SWITCHYARD_RETENTION_DAYS * 86_400_000), intervalMs: e.SWITCHYARD_RETENTION_INTERVAL_MS, batchSize: e.SWITCHYARD_RETENTION_BATCH,
    },
    modelBaseUrl: e.SWITCHYARD_MODEL_BASE_URL,
    modelApiKey,
    apiKeys,
    toolFaults: e.SWITCHYARD_TOOL_FAULTS === '1' || e.SWITCHYARD_TOOL_FAULTS === 'true',
    requestTimeoutMs: e.SWITCHYARD_REQUEST_TIMEOUT_MS,
    headersTimeoutMs: e.SWITCHYARD_HEADERS_TIMEOUT_MS,
    keepAliveTimeoutMs: e.SWITCHYARD_KEEP_ALIVE_TIMEOUT_MS,
  };
}

function storeConfig(e: z.infer<typeof EnvSchema>): StoreConfig {
  const db = e.SWITCHYARD_DB;
  if (!isPostgresUrl(db)) return { kind: 'sqlite', path: db === ':memory:' ? db : resolve(db) };
  try {
    // Only a shape check: the value itself (it holds a password) is never repeated in the error.
    if (!new URL(db).hostname && !new URL(db).searchParams.has('host')) throw new Error('no host');
  } catch {
    throw new ConfigError('invalid configuration: SWITCHYARD_DB looks like a PostgreSQL URL but is not one: '
      + 'postgres://USER:PASSWORD@HOST:PORT/DATABASE (percent-encode special characters in the password)');
  }
  const passwordFile = e.SWITCHYARD_DB_PASSWORD_FILE || undefined;
  return {
    kind: 'postgres', url: db, poolMax: e.SWITCHYARD_DB_POOL_MAX,
    ...(passwordFile === undefined ? {} : { password: readSecretFile(passwordFile, 'SWITCHYARD_DB_PASSWORD_FILE').trim() }),
    statementTimeoutMs: e.SWITCHYARD_DB_STATEMENT_TIMEOUT_MS, connectTimeoutMs: e.SWITCHYARD_DB_CONNECT_TIMEOUT_MS,
  };
}

function readSecretFile(path: string, variable: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`invalid configuration: ${variable}: cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}

/** The keys of the file and of the variable together (either or both may be set). */
function readApiKeys(inline: string | undefined, file: string | undefined): ApiKey[] {
  try {
    return mergeApiKeys(
      file === undefined ? [] : parseApiKeys(readSecretFile(file, 'SWITCHYARD_API_KEYS_FILE'), file),
      inline === undefined ? [] : parseApiKeys(inline, 'SWITCHYARD_API_KEYS', /[,\r\n]/),
    );
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError(`invalid configuration: ${(error as Error).message}`);
  }
}

